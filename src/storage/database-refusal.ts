/**
 * node-postgres's refusal when the server answers the SSLRequest with "no", and OpenSSL's
 * certificate-verification codes (`DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`,
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE`…), which Node sets as the code of a failed handshake.
 */
const NO_SERVER_TLS = 'The server does not support SSL connections';
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_)|CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY|DECRYPT)/;

/**
 * SQLSTATE class 28 (invalid authorization: a wrong password, a user pg_hba.conf refuses) and
 * 3D000 (invalid catalog name: no such database).
 */
const REFUSED_SQLSTATE = /^(28|3D000$)/;

/**
 * SQLSTATE 42501 (insufficient privilege): the role connects but may not create the schema.
 * PostgreSQL 15 took CREATE on schema `public` from PUBLIC, so a role given a database it does not
 * own gets this on every migration (red-team 2026-12u F2: `serve` retried it for ever, `migrate`
 * called it an internal error).
 */
const PRIVILEGE_SQLSTATE = '42501';

/**
 * How a database that answered turned the connection down, when the same `DATABASE_URL` would be
 * turned down again on every retry: `tls` (a TLS handshake the URL asks for and the server cannot
 * give: no TLS there, an untrusted or mismatched certificate), `refused` (credentials, no such
 * database) or `privilege` (the role may not create the schema). Undefined for anything else, an outage included: a server that is down or starting
 * is waited for, a setting to fix is reported (README, "Exit codes": 78). Looks through `cause`.
 */
export function databaseRefusal(error: unknown): 'tls' | 'refused' | 'privilege' | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth += 1) {
    const code = 'code' in current && typeof current.code === 'string' ? current.code : undefined;
    if (current.message === NO_SERVER_TLS || (code !== undefined && TLS_CODE.test(code))) return 'tls';
    if (code !== undefined && REFUSED_SQLSTATE.test(code)) return 'refused';
    // Not "permission denied for database": that is CONNECT revoked, how an administrator drains a
    // database for a restore or an upgrade, and it ends (review 2026-12-06 D1).
    if (code === PRIVILEGE_SQLSTATE && !/permission denied for database/i.test(current.message))
      return 'privilege';
    current = current.cause;
  }
  return undefined;
}

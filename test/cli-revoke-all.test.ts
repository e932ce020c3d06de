import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { decodeProtectedHeader, importJWK, type JWK, SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { createSigningKeySealer, sealContext } from '../src/tokens/signing-key-material.js';
import { createServiceClient, run } from './support/run-cli.js';
import { type ServerProcess, useServerProcesses } from './support/server-process.js';

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-revoke-all-'));
  temporary.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const password = 'correct horse battery';

const post = async (url: string, path: string, form: Record<string, string>) => {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};
const signUpAndIn = async (url: string, email: string) => {
  const registered = await fetch(`${url}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  expect(registered.status).toBe(201);
  return login(url, email);
};
const login = async (url: string, email: string) => {
  const { status, body } = await post(url, '/token', { grant_type: 'password', username: email, password });
  expect(status, JSON.stringify(body)).toBe(200);
  return { access: String(body.access_token), refresh: String(body.refresh_token) };
};
const me = async (url: string, token: string) => {
  const response = await fetch(`${url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

// Red-team finding: restoring a backup brought back a signing key revoked as compromised and the
// sessions ended since; the README's remedies did not end them. `revoke-all` is the step after it.
describe('gatehouse revoke-all (compiled, real processes)', { timeout: 120_000 }, () => {
  const serve = useServerProcesses();
  const stop = async (server: ServerProcess) => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  };
  const refresh = (url: string, token: string) =>
    post(url, '/token', { grant_type: 'refresh_token', refresh_token: token });
  const jwksKids = async (url: string) => {
    const { keys } = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    return keys.map((key) => key.kid);
  };
  /** The documented restore: servers stopped, the copy over the database, its -wal/-shm gone. */
  const restore = (backup: string, dir: string) => {
    copyFileSync(backup, join(dir, 'gatehouse.db'));
    rmSync(join(dir, 'gatehouse.db-wal'), { force: true });
    rmSync(join(dir, 'gatehouse.db-shm'), { force: true });
  };

  it('after a restore, ends the tokens issued before and the keys the backup held, even one revoked as compromised', async () => {
    const dir = tempDir();
    const env = { DATA_DIR: dir, JWT_ALG: 'ES256' };
    const before = await serve(env);
    const thief = await signUpAndIn(before.url, 'owner@example.com');
    const leakedKid = decodeProtectedHeader(thief.access).kid ?? '';
    const backup = join(tempDir(), 'b.db');
    expect((await run(['backup', backup], env)).code).toBe(0);
    // The leaked key, as the thief holds it (from the backup's row, opened with the secret).
    const secret = Buffer.from(readFileSync(join(dir, 'secret.key'), 'utf8').trim(), 'base64url');
    const copy = new SQLite(backup, { readonly: true });
    const row = copy.prepare('SELECT private_key FROM signing_keys WHERE kid = ?').get(leakedKid) as {
      private_key: string;
    };
    copy.close();
    const opened = createSigningKeySealer(secret).open(row.private_key, sealContext('ES256', leakedKid));
    const leakedKey = await importJWK(JSON.parse(opened ?? '{}') as JWK, 'ES256');
    // The operator withdraws the compromised key, then restores the backup, which still holds it.
    const revoked = await run(['rotate-keys', `--revoke=${leakedKid}`], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    await stop(before);
    restore(backup, dir);

    const result = await run(['revoke-all'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`^Revoked 1 signing key \\(ES256 ${leakedKid}\\); signing from now on: ES256 \\S+\\.\n`),
    );
    expect(result.stdout).toMatch(
      /^Ended 1 session: every user signs in again; no access token issued before \S+Z is accepted\.$/m,
    );

    const after = await serve(env);
    expect(await jwksKids(after.url)).not.toContain(leakedKid);
    expect(await me(after.url, thief.access)).toMatchObject({ status: 401, body: { code: 'INVALID_TOKEN' } });
    expect(await refresh(after.url, thief.refresh)).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({
      sub: crypto.randomUUID(),
      sid: crypto.randomUUID(),
      scope: 'me',
      client_id: 'gatehouse',
      jti: crypto.randomUUID(),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: leakedKid })
      .setIssuer(String(decodeJwtClaim(thief.access, 'iss')))
      .setAudience(decodeJwtClaim(thief.access, 'aud') as string)
      .setIssuedAt(now)
      .setExpirationTime(now + 86_400)
      .sign(leakedKey);
    expect(await me(after.url, forged)).toMatchObject({ status: 401, body: { code: 'INVALID_TOKEN' } });
    // Everyone signs in again, under the fresh key.
    const fresh = await login(after.url, 'owner@example.com');
    expect(await me(after.url, fresh.access)).toMatchObject({ status: 200 });
    const freshKid = decodeProtectedHeader(fresh.access).kid;
    expect(freshKid).not.toBe(leakedKid);
    expect(await jwksKids(after.url)).toContain(freshKid);
    expect((await refresh(after.url, fresh.refresh)).status).toBe(200);
  });

  it('under HS256 ends the sessions (their access tokens too) and revokes the ID-token keys', async () => {
    const dir = tempDir();
    const env = { DATA_DIR: dir };
    // The ES256 ID-token keys, provisioned as a first ID token would.
    expect((await run(['rotate-keys'], env)).code).toBe(0);
    const before = await serve(env);
    const idKids = await jwksKids(before.url);
    expect(idKids.length).toBeGreaterThan(0);
    const thief = await signUpAndIn(before.url, 'owner@example.com');
    await stop(before);

    const result = await run(['revoke-all'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /^Revoked 2 signing keys \(ES256 \S+, ES256 \S+\); signing from now on: ES256 \S+\.$/m,
    );
    expect(result.stdout).toMatch(/^Ended 1 session:/m);
    const after = await serve(env);
    const kidsAfter = await jwksKids(after.url);
    for (const kid of idKids) expect(kidsAfter).not.toContain(kid);
    expect(await me(after.url, thief.access)).toMatchObject({ status: 401, body: { code: 'INVALID_TOKEN' } });
    expect(await refresh(after.url, thief.refresh)).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    const fresh = await login(after.url, 'owner@example.com');
    expect((await me(after.url, fresh.access)).status).toBe(200);
  });
  // Red-team 2026-12n, left open from R1: under HS256 the key is SECRET_KEY, which no backup holds,
  // so tokens the restored database cannot name (a session opened after the backup, a client's
  // token) verified until they expired. The cut-off refuses them by their `iat`.
  it('under HS256 ends access tokens the restored database never knew and client tokens, and audits it once', async () => {
    const dir = tempDir();
    const env = { DATA_DIR: dir };
    const { basic } = await createServiceClient(env, 'me');
    const clientPost = async (url: string, path: string, form: Record<string, string>) => {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
        body: new URLSearchParams(form).toString(),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const before = await serve(env);
    await signUpAndIn(before.url, 'owner@example.com');
    const backup = join(tempDir(), 'b.db');
    expect((await run(['backup', backup], env)).code).toBe(0);
    // After the backup: a sign-in and a client token the restored database will know nothing of.
    const unknown = await login(before.url, 'owner@example.com');
    const clientToken = String(
      (await clientPost(before.url, '/token', { grant_type: 'client_credentials', scope: 'me' }))
        .access_token,
    );
    await stop(before);
    restore(backup, dir);

    const result = await run(['revoke-all'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Ended 1 session:/m);
    const after = await serve(env);
    expect(await me(after.url, unknown.access)).toMatchObject({
      status: 401,
      body: { code: 'INVALID_TOKEN' },
    });
    expect(await clientPost(after.url, '/introspect', { token: clientToken })).toEqual({ active: false });
    const fresh = await login(after.url, 'owner@example.com');
    expect((await me(after.url, fresh.access)).status).toBe(200);
    const newClientToken = String(
      (await clientPost(after.url, '/token', { grant_type: 'client_credentials', scope: 'me' })).access_token,
    );
    expect(await clientPost(after.url, '/introspect', { token: newClientToken })).toMatchObject({
      active: true,
    });
    await stop(after);
    const database = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
    const entries = database
      .prepare("SELECT actor_id, details FROM audit_events WHERE event = 'all_revoked'")
      .all() as { actor_id: string | null; details: string }[];
    database.close();
    expect(entries).toHaveLength(1);
    expect(entries[0]?.actor_id).toBeNull();
    expect(JSON.parse(entries[0]?.details ?? '{}')).toMatchObject({ sessions: 1, signing_keys: 0 });
  });
});

// Red-team 2026-12r R4: revoke-all run with a new SECRET_KEY while an instance still ran on the
// leaked one. That instance never re-read the secret's fingerprint, and under HS256 its key is the
// secret: a token forged with it (a fresh `iat`, any session id) passed the cut-off and the
// revocation list until the instance was restarted.
describe('gatehouse revoke-all replacing SECRET_KEY under a running instance', { timeout: 120_000 }, () => {
  const serve = useServerProcesses();
  it('the instance still on the replaced secret refuses every token and reports not ready', async () => {
    const dir = tempDir();
    const leaked = randomBytes(32).toString('base64url');
    const replacement = randomBytes(32).toString('base64url');
    const running = await serve({ DATA_DIR: dir, SECRET_KEY: leaked, REVOCATION_RELOAD_INTERVAL: '1' });
    const { access } = await signUpAndIn(running.url, 'owner@example.com');
    /** What the holder of the leaked secret mints: a fresh `iat`, a session nobody revoked. */
    const forge = () => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        sub: String(decodeJwtClaim(access, 'sub')),
        sid: crypto.randomUUID(),
        scope: 'me',
        client_id: 'gatehouse',
        jti: crypto.randomUUID(),
      })
        .setProtectedHeader(decodeProtectedHeader(access) as { alg: string })
        .setIssuer(String(decodeJwtClaim(access, 'iss')))
        .setAudience(decodeJwtClaim(access, 'aud') as string)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(new TextEncoder().encode(leaked));
    };
    expect((await me(running.url, await forge())).status).toBe(200);

    // A SECRET_KEY other than the instances' is taken as a replacement only when said so: a
    // mistyped one would otherwise take every running instance out.
    const refused = await run(['revoke-all'], { DATA_DIR: dir, SECRET_KEY: replacement });
    expect(refused.code).toBe(78);
    expect(refused.stderr).toMatch(
      /^gatehouse: revoke-all: SECRET_KEY is not the secret this database's instances use: to replace it \(it leaked\), run again with --new-secret/,
    );
    expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    const result = await run(['revoke-all', '--new-secret'], { DATA_DIR: dir, SECRET_KEY: replacement });
    expect(result.code, result.stderr).toBe(0);
    // Learned at the instance's next reload (every second here).
    const readiness = async () => {
      const response = await fetch(`${running.url}/readyz`);
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    await expect.poll(async () => (await readiness()).status, { timeout: 15_000, interval: 200 }).toBe(503);
    expect((await readiness()).body).toMatchObject({ status: 'not ready', secret_key: 'superseded' });
    // Gatehouse's routes fail closed before any token is read (the guards' infinite cut-off, for an
    // app's own routes, is test/sessions/revocation-list.test.ts's).
    expect(await me(running.url, await forge())).toMatchObject({
      status: 503,
      body: { code: 'SERVICE_UNAVAILABLE' },
    });
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);

    // Restarted with the new secret, it serves again.
    const after = await serve({ DATA_DIR: dir, SECRET_KEY: replacement });
    await login(after.url, 'owner@example.com');
    expect((await fetch(`${after.url}/readyz`)).status).toBe(200);
    after.child.kill('SIGTERM');
    expect(await after.exited).toBe(0);
  });
});

describe('gatehouse revoke-all: bad input, one line and a sysexits code', { timeout: 60_000 }, () => {
  it('refuses arguments (64), a missing database without creating one (66), an unreachable one (69), a bad setting (78)', async () => {
    const dir = tempDir();
    for (const args of [
      ['revoke-all', 'now'],
      ['revoke-all', '--yes'],
    ]) {
      const result = await run(args, { DATA_DIR: dir });
      expect(result.code).toBe(64);
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    // The servers' secret, as an operator passes it (the cases below are about other mistakes).
    const SECRET_KEY = randomBytes(32).toString('base64url');
    const missing = await run(['revoke-all'], { DATA_DIR: dir, SECRET_KEY });
    expect(missing.code).toBe(66);
    expect(missing.stderr).toMatch(
      /^gatehouse: no database at \S+gatehouse\.db: check DATABASE_URL and DATA_DIR/,
    );
    expect(existsSync(join(dir, 'gatehouse.db'))).toBe(false);
    const unreachable = await run(['revoke-all'], {
      DATA_DIR: dir,
      SECRET_KEY,
      DATABASE_URL: 'postgres://gatehouse:hunter2@127.0.0.1:1/none',
    });
    expect(unreachable.code).toBe(69);
    expect(unreachable.stderr).toMatch(
      /^gatehouse: cannot reach the database at postgres:\/\/gatehouse:\*\*\*@127\.0\.0\.1:1\/none [^\n]*\n$/,
    );
    const badSetting = await run(['revoke-all'], { DATA_DIR: dir, SECRET_KEY, JWT_ALG: 'none' });
    expect(badSetting.code).toBe(78);
    expect(badSetting.stderr).toContain('JWT_ALG');
    // No SECRET_KEY and no secret kept in DATA_DIR (a host without the servers' secret): revoke-all
    // would seal the fresh keys under a secret it made up and make every instance use it.
    expect((await run(['migrate'], { DATA_DIR: dir, SECRET_KEY })).code).toBe(0);
    const noSecret = await run(['revoke-all'], { DATA_DIR: dir });
    expect(noSecret.code).toBe(78);
    expect(noSecret.stderr).toMatch(
      /^gatehouse: revoke-all: SECRET_KEY is not set and DATA_DIR holds no secret\.key/,
    );
    expect(existsSync(join(dir, 'secret.key'))).toBe(false);
  });
});

/** A claim of a JWT we issued ourselves (read only to forge a look-alike). */
function decodeJwtClaim(token: string, claim: string): unknown {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  return payload[claim];
}

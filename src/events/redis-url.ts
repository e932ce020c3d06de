/**
 * What ioredis needs to reach the Redis a `REDIS_URL` names: the URL itself for `redis://` and
 * `rediss://` (ioredis parses those), or the socket path, database and credentials of a Unix-socket
 * URL, which ioredis cannot parse (it takes a bare path, without credentials).
 */
export type RedisTarget =
  | { readonly kind: 'tcp'; readonly url: string }
  | {
      readonly kind: 'unix';
      /** Absolute path of the socket file. */
      readonly path: string;
      /** `SELECT`ed database. @default 0 */
      readonly db?: number;
      readonly username?: string;
      readonly password?: string;
    };

/** The schemes a `REDIS_URL` may use (the settings schema's pattern is built from it). */
export const REDIS_URL_PATTERN = '^(rediss?|(redis\\+)?unix)://';

/** Query parameters a Unix-socket URL may carry (redis-py's and go-redis's spelling). */
const UNIX_PARAMETERS = new Set(['db', 'password', 'username']);

/** Highest database index accepted; Redis's default `databases` is 16, some deployments raise it. */
const MAX_DB = 1_000_000;

/**
 * Reads a `REDIS_URL`. The Unix-socket forms are `unix:///run/redis/redis.sock` and
 * `redis+unix:///run/redis/redis.sock`, with optional `?db=N&username=U&password=P` (percent-encoded):
 * a socket URL has no host, so its credentials go in the query, as redis-py and go-redis read them.
 *
 * Returns a problem (one line, never echoing the URL, which may hold a password) instead of throwing,
 * so the settings check can list it with the others.
 */
export function parseRedisUrl(
  url: string,
): { ok: true; target: RedisTarget } | { ok: false; problem: string } {
  if (/^rediss?:\/\//.test(url)) return { ok: true, target: { kind: 'tcp', url } };
  if (!/^(redis\+)?unix:\/\//.test(url)) {
    return { ok: false, problem: 'must start with redis://, rediss://, unix:// or redis+unix://' };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, problem: 'is not a valid URL' };
  }
  if (parsed.host !== '' || parsed.username !== '' || parsed.password !== '') {
    return {
      ok: false,
      problem:
        'a Unix-socket URL names no host: write unix:///path/to/redis.sock (three slashes), credentials as ?username=&password=',
    };
  }
  const path = decodeURIComponent(parsed.pathname);
  if (!path.startsWith('/') || path.length < 2 || path.includes('\0')) {
    return { ok: false, problem: 'a Unix-socket URL needs the absolute path of the socket file' };
  }
  for (const key of parsed.searchParams.keys()) {
    if (!UNIX_PARAMETERS.has(key)) {
      return {
        ok: false,
        problem: `unknown parameter ${JSON.stringify(key)}: only db, username and password`,
      };
    }
  }
  const dbText = parsed.searchParams.get('db');
  let db: number | undefined;
  if (dbText !== null) {
    db = /^\d{1,7}$/.test(dbText) ? Number(dbText) : Number.NaN;
    if (!Number.isInteger(db) || db > MAX_DB) {
      return { ok: false, problem: 'db must be a database number (0, 1, …)' };
    }
  }
  const username = parsed.searchParams.get('username');
  const password = parsed.searchParams.get('password');
  return {
    ok: true,
    target: {
      kind: 'unix',
      path,
      ...(db === undefined ? {} : { db }),
      ...(username === null ? {} : { username }),
      ...(password === null ? {} : { password }),
    },
  };
}

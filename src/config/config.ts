/**
 * Signing algorithms Gatehouse can be configured with. Only the configured one is ever accepted.
 * RS256 is there because RFC 9068 §4 requires every implementation to support it.
 */
export type JwtAlgorithm = 'HS256' | 'EdDSA' | 'ES256' | 'RS256';

/** How access tokens are represented. */
export type TokenStrategy = 'jwt' | 'database';

/** The complete, validated settings of one Gatehouse instance. */
export interface GatehouseConfig {
  /** Interface to listen on. @default '127.0.0.1' */
  host: string;
  /** TCP port. @default 8000 */
  port: number;
  /** Where the SQLite file and generated secrets live. @default './data' */
  dataDir: string;
  /** `sqlite:<path>`, `sqlite::memory:` or `postgres://…`. @default `sqlite:<dataDir>/gatehouse.db` */
  databaseUrl: string;
  /** HMAC secret (≥ 32 bytes) for HS256 tokens and CSRF signing. */
  secretKey: Uint8Array;
  /**
   * The secret `secretKey` replaced (≥ 32 bytes), while rotating it: HS256 tokens signed under it
   * still verify until they expire, and stored signing keys sealed under it are re-sealed under
   * `secretKey` at start-up. Remove it once the longest token lifetime has passed. @default undefined
   */
  secretKeyPrevious: Uint8Array | undefined;
  /** Access token lifetime in seconds. @default 900 */
  accessTokenTtl: number;
  /** A refresh token dies after this many idle seconds. @default 604800 (7 days) */
  refreshIdleTtl: number;
  /** A session (and every token of it) dies this many seconds after login. @default 2592000 (30 days) */
  sessionAbsoluteTtl: number;
  /** `jwt` (self-contained access tokens) or `database` (opaque, looked up per request). @default 'jwt' */
  tokenStrategy: TokenStrategy;
  /** JWT signing algorithm. @default 'HS256' */
  jwtAlgorithm: JwtAlgorithm;
  /** `iss` claim of issued tokens, checked on verify (RFC 8414 metadata's `issuer`). @default publicUrl */
  issuer: string;
  /** `aud` claim of access tokens, checked on verify. @default 'gatehouse-api' */
  audience: string;
  /** Trust `X-Forwarded-For` (true, a hop count, or a list of proxy addresses). @default false */
  trustProxy: boolean | number | string[];
  /** Exact origins allowed to make credentialed cross-origin requests. @default [] */
  corsOrigins: string[];
  /** Set `Secure` on cookies; false only for plain-HTTP development. @default true */
  cookieSecure: boolean;
  /** Redis for multi-instance fan-out and shared counters. @default undefined */
  redisUrl: string | undefined;
  /** pino log level. @default 'info' */
  logLevel: string;
  /** Largest accepted request body in bytes. @default 65536 */
  bodyLimit: number;
  /** Failed logins per account within the window before 429. @default 5 */
  loginMaxFailuresPerAccount: number;
  /** Failed logins per client IP within the window before 429. @default 50 */
  loginMaxFailuresPerIp: number;
  /** Length of the failed-login window in seconds. @default 900 */
  loginFailureWindow: number;
  /** Account registrations per client IP per hour. @default 20 */
  registrationsPerHour: number;
  /** Password hashes computed at once; more wait in line. @default 2 */
  passwordHashConcurrency: number;
  /** Lifetime of a Dicery room token in seconds (≤ 12 h). @default 43200 */
  roomTokenTtl: number;
  /** Room joins per client IP per minute. @default 20 */
  roomJoinsPerMinute: number;
  /** Rolls per player per minute (each is a write plus a broadcast to the room). @default 60 */
  roomRollsPerMinute: number;
  /** Concurrent event streams per player. @default 3 */
  maxStreamsPerPlayer: number;
  /**
   * Seconds between heartbeat comments on room event streams, which keep proxies from closing idle
   * streams; also how often open streams are re-checked against the database. @default 15
   */
  roomHeartbeatInterval: number;

  // Faults and timeouts (issue 9): every database call and the shutdown are bounded in time.
  /**
   * Milliseconds to wait for a database connection (a new one, or a free one from the pool) before
   * the request fails with 503 `DATABASE_UNAVAILABLE`. @default 5000
   */
  databaseConnectTimeoutMs: number;
  /**
   * Milliseconds one SQL statement may run: PostgreSQL's `statement_timeout` (the client gives up
   * 1 s later when the server does not answer at all, e.g. frozen or partitioned) and SQLite's
   * `busy_timeout`. An idle transaction is ended after twice this. @default 5000
   */
  databaseStatementTimeoutMs: number;
  /**
   * Milliseconds `gatehouse serve` lets in-flight requests finish after SIGTERM/SIGINT before it
   * closes the remaining connections (idle keep-alive sockets and event streams close at once).
   * @default 5000
   */
  shutdownGracePeriodMs: number;
  // Redis timeouts and limiter bounds (issue 9: Redis is an accelerator; issue 8: bounded state).
  /** A Redis command with no answer after this many ms fails, and local state answers. @default 2000 */
  redisCommandTimeoutMs: number;
  /** A Redis connection attempt is abandoned after this many ms (and retried). @default 3000 */
  redisConnectTimeoutMs: number;
  /** Redis reconnects back off exponentially up to this many ms apart, forever. @default 2000 */
  redisMaxReconnectDelayMs: number;
  /** Most keys the in-memory rate-limit counters hold; the least recently used go first. @default 100000 */
  rateLimitMaxKeys: number;
  /**
   * Seconds between incremental re-reads of recent revocations from the database: the bound on
   * how late a revocation whose broadcast was lost (or sent while Redis was down) reaches this
   * instance. @default 5
   */
  revocationReloadInterval: number;
  /**
   * Seconds each revocation reload reaches back before the previous one began, so a revocation
   * that committed late with an earlier `revoked_at` is still read. Must cover the database
   * statement timeout plus the clock skew between instances. @default 60
   */
  revocationReloadOverlap: number;
  /**
   * Seconds during which presenting a just-spent refresh token returns the same successor instead
   * of revoking the session (a retry whose response was lost); 0 = strict rotation. @default 10
   */
  refreshReuseInterval: number;
  /** Rooms an account may create per hour (counted per attempt, shared across instances). @default 20 */
  roomsPerHourPerAccount: number;
  /** Rooms that may be created per client IP per hour, whatever the account. @default 60 */
  roomsPerHourPerIp: number;
  /** Rooms one host may have open at once; beyond it, creating answers 409 until one is closed. @default 20 */
  maxOpenRoomsPerHost: number;
  /** Concurrent host event streams per account, across all of its rooms (counted per instance). @default 10 */
  maxStreamsPerAccount: number;
  /** Concurrent event streams per client IP, across all rooms (counted per instance). @default 50 */
  maxStreamsPerIp: number;
  /** Rolls per client IP per minute, across players and rooms (joins would multiply the per-player limit). @default 300 */
  roomRollsPerMinutePerIp: number;
  /** Players present in one room at once; a join beyond it answers 409 `ROOM_FULL`. @default 100 */
  maxPlayersPerRoom: number;
  // Lockout that cannot be aimed at a victim (issue 8; OWASP device cookies). One block for easy merges.
  /** Lifetime of a device token (the "this client has signed in here before" proof) in seconds. @default 7776000 (90 days) */
  deviceTokenTtl: number;
  /** Failed logins per trusted device within the window before that device is treated as untrusted. @default 5 */
  loginMaxFailuresPerDevice: number;
  /** Failed logins from untrusted clients server-wide within the window before untrusted logins get 429. @default 10000 */
  loginMaxFailuresGlobal: number;
  /**
   * Successful logins per account per LOGIN_FAILURE_WINDOW, from any client: bounds the hashes and
   * sessions one account's holder can make (only a right password counts). @default 60
   */
  loginMaxSuccessesPerAccount: number;
  /** Password-hash slots, beyond `passwordHashConcurrency`, kept for logins from trusted devices. @default 1 */
  passwordHashReservedSlots: number;
  /** Audit entries and failed-login tallies older than this many seconds are deleted hourly. @default 7776000 (90 days) */
  auditRetention: number;
  // Input hygiene (issue 8): password rules.
  /**
   * Shortest accepted password in characters (code points, after NFKC); 8–64. NIST SP 800-63B-4
   * §3.1.1.2 asks 15 where the password is the only factor, and never below 8. @default 15
   */
  passwordMinLength: number;
  // OAuth (issue 11): one block for easy merges.
  /**
   * The server's external origin (`https://auth.example.com`, no path), as clients reach it: the
   * default issuer, the OpenAPI `servers` entry and every absolute link derive from it, never from
   * a request's `Host` header (which a client chooses). @default 'http://127.0.0.1:8000'
   * (`http://127.0.0.1:<PORT>` when read from the environment)
   */
  publicUrl: string;
  // Metrics (issue 10): off by default, and never on the public listener.
  /** Port of the separate Prometheus `/metrics` listener; undefined turns metrics off. @default undefined */
  metricsPort: number | undefined;
  /** Interface the metrics listener binds to (keep it private: it reveals traffic). @default '127.0.0.1' */
  metricsHost: string;
}

/** Defaults for every setting except the secret. */
export const defaultConfig: Omit<GatehouseConfig, 'secretKey' | 'databaseUrl'> = {
  secretKeyPrevious: undefined,
  host: '127.0.0.1',
  port: 8000,
  dataDir: './data',
  accessTokenTtl: 900,
  refreshIdleTtl: 7 * 24 * 3600,
  sessionAbsoluteTtl: 30 * 24 * 3600,
  tokenStrategy: 'jwt',
  jwtAlgorithm: 'HS256',
  issuer: 'http://127.0.0.1:8000',
  audience: 'gatehouse-api',
  trustProxy: false,
  corsOrigins: [],
  cookieSecure: true,
  redisUrl: undefined,
  logLevel: 'info',
  bodyLimit: 64 * 1024,
  loginMaxFailuresPerAccount: 5,
  loginMaxFailuresPerIp: 50,
  loginFailureWindow: 900,
  registrationsPerHour: 20,
  passwordHashConcurrency: 2,
  roomTokenTtl: 12 * 3600,
  roomJoinsPerMinute: 20,
  roomRollsPerMinute: 60,
  maxStreamsPerPlayer: 3,
  roomHeartbeatInterval: 15,
  databaseConnectTimeoutMs: 5000,
  databaseStatementTimeoutMs: 5000,
  shutdownGracePeriodMs: 5000,
  redisCommandTimeoutMs: 2000,
  redisConnectTimeoutMs: 3000,
  redisMaxReconnectDelayMs: 2000,
  rateLimitMaxKeys: 100_000,
  revocationReloadInterval: 5,
  revocationReloadOverlap: 60,
  refreshReuseInterval: 10,
  roomsPerHourPerAccount: 20,
  roomsPerHourPerIp: 60,
  maxOpenRoomsPerHost: 20,
  maxStreamsPerAccount: 10,
  maxStreamsPerIp: 50,
  roomRollsPerMinutePerIp: 300,
  maxPlayersPerRoom: 100,
  deviceTokenTtl: 90 * 86400,
  loginMaxFailuresPerDevice: 5,
  loginMaxFailuresGlobal: 10_000,
  loginMaxSuccessesPerAccount: 60,
  passwordHashReservedSlots: 1,
  auditRetention: 90 * 86400,
  passwordMinLength: 15,
  publicUrl: 'http://127.0.0.1:8000',
  metricsPort: undefined,
  metricsHost: '127.0.0.1',
};

/** The shortest secret accepted: 256 bits, as RFC 7518 §3.2 requires for HS256 keys. */
export const MIN_SECRET_BYTES = 32;

/** Signing algorithms Gatehouse can be configured with. Only the configured one is ever accepted. */
export type JwtAlgorithm = 'HS256' | 'EdDSA' | 'ES256';

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
  /** `iss` claim of issued tokens, checked on verify. @default 'gatehouse' */
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
  // Input hygiene (issue 8): password rules.
  /**
   * Shortest accepted password in characters (code points, after NFKC); 8–64. NIST SP 800-63B-4
   * §3.1.1.2 asks 15 where the password is the only factor, and never below 8. @default 15
   */
  passwordMinLength: number;
}

/** Defaults for every setting except the secret. */
export const defaultConfig: Omit<GatehouseConfig, 'secretKey' | 'databaseUrl'> = {
  host: '127.0.0.1',
  port: 8000,
  dataDir: './data',
  accessTokenTtl: 900,
  refreshIdleTtl: 7 * 24 * 3600,
  sessionAbsoluteTtl: 30 * 24 * 3600,
  tokenStrategy: 'jwt',
  jwtAlgorithm: 'HS256',
  issuer: 'gatehouse',
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
  passwordMinLength: 15,
};

/** The shortest secret accepted: 256 bits, as RFC 7518 §3.2 requires for HS256 keys. */
export const MIN_SECRET_BYTES = 32;

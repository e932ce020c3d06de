/**
 * Every error Gatehouse raises on purpose, with a stable code and the HTTP status it maps to.
 * One file, like fastify's `errors.js`, so codes stay unique and discoverable.
 */

/** Stable error codes: part of the public contract, never renamed. */
export const ErrorCodes = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  BAD_REQUEST: 400,
  WEAK_PASSWORD: 400,
  INVALID_CURRENT_PASSWORD: 400,
  INVALID_CREDENTIALS: 400,
  UNAUTHENTICATED: 401,
  INVALID_TOKEN: 401,
  FORBIDDEN: 403,
  ACCOUNT_DISABLED: 403,
  INSUFFICIENT_SCOPE: 403,
  CSRF_TOKEN_MISSING: 403,
  CSRF_TOKEN_INVALID: 403,
  CROSS_SITE_REQUEST: 403,
  NOT_ROOM_MEMBER: 403,
  NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  CLOTHING_NOT_FOUND: 404,
  ROOM_NOT_FOUND: 404,
  PLAYER_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  EMAIL_TAKEN: 409,
  PLAYER_NAME_TAKEN: 409,
  LAST_SUPER_ADMIN: 409,
  TOO_MANY_OPEN_ROOMS: 409,
  ROOM_FULL: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INVALID_DICE_NOTATION: 422,
  TOO_MANY_REQUESTS: 429,
  TOO_MANY_LOGIN_ATTEMPTS: 429,
  TOO_MANY_STREAMS: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
  /** The database did not answer in time or is down; the client should retry (`Retry-After`). */
  DATABASE_UNAVAILABLE: 503,
} as const;

/** One of the stable error codes in {@link ErrorCodes}. */
export type ErrorCode = keyof typeof ErrorCodes;

/** A problem detail about one input field (RFC 9457 extension member `errors`). */
export interface FieldError {
  /** JSON pointer-ish name of the field, e.g. `email` or `body/role`. */
  field: string;
  /** Human-readable reason. */
  message: string;
}

/** Options for {@link GatehouseError}. */
export interface GatehouseErrorOptions {
  /** Per-field details, rendered as the problem's `errors` member. */
  errors?: FieldError[];
  /** Extra HTTP headers the adapter must send (e.g. `Retry-After`, `WWW-Authenticate`). */
  headers?: Record<string, string>;
  /** Extra problem members (e.g. `position` for a dice notation error). */
  extra?: Record<string, unknown>;
  /** The underlying error, kept for logs and never sent to clients. */
  cause?: unknown;
}

/**
 * An expected failure with a stable code. The HTTP layer renders it as
 * `application/problem+json` (RFC 9457); the core never deals with HTTP itself.
 */
export class GatehouseError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** HTTP status the code maps to. */
  readonly statusCode: number;
  /** Per-field details. */
  readonly errors: FieldError[] | undefined;
  /** Headers the HTTP adapter must add. */
  readonly headers: Record<string, string>;
  /** Extra problem members. */
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: GatehouseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.statusCode = ErrorCodes[code];
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
  }
}

/** Statuses of the OAuth error codes that are not 400 (RFC 6749 §5.2 makes 400 the rule). */
const OAUTH_ERROR_STATUS: Partial<Record<OAuthTokenError['error'], number>> = {
  invalid_client: 401,
  temporarily_unavailable: 429,
  // `server_error` is registered for the authorization endpoint (RFC 6749 §4.1.2.1, §11.4); an
  // OAuth client parsing a token-endpoint 500 finds a registered code rather than no `error`.
  server_error: 500,
};

/**
 * An OAuth 2.0 token endpoint error (RFC 6749 §5.2). Rendered as the RFC's JSON shape
 * (`error`, `error_description`) rather than problem+json, because OAuth clients parse it.
 */
export class OAuthTokenError extends Error {
  /**
   * RFC 6749 §5.2 error code, or `temporarily_unavailable` for a throttled login (see
   * {@link OAuthTokenError.throttled}).
   */
  readonly error:
    | 'invalid_request'
    | 'invalid_client'
    | 'invalid_grant'
    | 'unauthorized_client'
    | 'unsupported_grant_type'
    | 'invalid_scope'
    | 'temporarily_unavailable'
    | 'server_error';
  /**
   * HTTP status: 400 for all of these but `invalid_client` (401), `temporarily_unavailable` (429)
   * and `server_error` (500).
   */
  readonly statusCode: number;
  /** Extra HTTP headers (e.g. `Retry-After`). */
  readonly headers: Record<string, string>;
  /** Our stable code, sent beside `error` when set, so clients can tell our reasons apart. */
  readonly code: ErrorCode | undefined;

  constructor(
    error: OAuthTokenError['error'],
    description: string,
    options: { headers?: Record<string, string>; code?: ErrorCode } = {},
  ) {
    super(description);
    this.name = 'OAuthTokenError';
    this.error = error;
    this.statusCode = OAUTH_ERROR_STATUS[error] ?? 400;
    this.headers = options.headers ?? {};
    this.code = options.code;
  }

  /**
   * A 429 for a login refused by throttling, with `Retry-After`. RFC 6749 §5.2 defines no code for
   * it, so the `error` is `temporarily_unavailable`: registered in the IANA OAuth Extensions Error
   * registry (RFC 6749 §4.1.2.1, §11.4), meaning "try again later", and what oauthlib (behind
   * requests-oauthlib) maps to TemporarilyUnavailableError; Authlib raises on any `error` member.
   * Not `invalid_grant`: that claims the credentials are wrong, which would tell a user with the
   * right password to change it (and clients may drop stored credentials on it). Not `slow_down`:
   * RFC 8628 §3.5 defines it for device-code polling, where clients add 5 s to their interval.
   */
  static throttled(code: ErrorCode, description: string, retryAfterSeconds: number): OAuthTokenError {
    return new OAuthTokenError('temporarily_unavailable', description, {
      code,
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  }
}

/** Startup misconfiguration: names the setting and what it accepts. */
export class ConfigError extends Error {
  /** Every problem found, one line each. */
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

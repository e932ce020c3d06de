/**
 * Every error the core raises on purpose, with a stable code: codes and messages only, no HTTP.
 * One file, like fastify's `errors.js`, so codes stay unique and discoverable. The Fastify adapter
 * (`src/http/error-status.ts`) alone maps codes to statuses and semantic fields
 * (`retryAfterSeconds`, `challenge`) to headers; apps (Dicery, the catalogue) own their codes and
 * register their statuses with the adapter.
 */

/** Stable error codes of the core and the adapter: part of the public contract, never renamed. */
export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'INVALID_JSON',
  'BAD_REQUEST',
  /**
   * Answers of the HTTP layer, before any route (`handleClientError`, `refuseExpectation`): the
   * request took longer than the request or headers timeout (408); its request-target alone
   * overflowed the header limit (414, RFC 9112 §3); its header fields did (431, RFC 6585 §5); an
   * `Expect` other than `100-continue` (417, RFC 9110 §10.1.1); a method Node's parser does not
   * know (501, RFC 9110 §9.1). Anything else the parser refuses is `BAD_REQUEST`.
   */
  'REQUEST_TIMEOUT',
  'URI_TOO_LONG',
  'HEADERS_TOO_LARGE',
  'EXPECTATION_FAILED',
  'NOT_IMPLEMENTED',
  'WEAK_PASSWORD',
  'INVALID_CURRENT_PASSWORD',
  'INVALID_CREDENTIALS',
  'UNAUTHENTICATED',
  'INVALID_TOKEN',
  'FORBIDDEN',
  'ACCOUNT_DISABLED',
  'INSUFFICIENT_SCOPE',
  /**
   * An OAuth app's token (authorization code flow) on a route that manages the account's sign-in
   * methods, sessions or apps, which take the person's own sign-in only (red-team 2026-12c H2).
   */
  'FIRST_PARTY_ONLY',
  'CSRF_TOKEN_MISSING',
  'CSRF_TOKEN_INVALID',
  'CROSS_SITE_REQUEST',
  /**
   * An `OPTIONS` from an allowed origin without `Access-Control-Request-Method`: not a CORS
   * preflight (Fetch standard, "CORS-preflight request"), so it is refused rather than answered.
   */
  'CORS_PREFLIGHT_INVALID',
  'NOT_FOUND',
  'USER_NOT_FOUND',
  /** No registered OAuth client has this id (issue 15). */
  'CLIENT_NOT_FOUND',
  'SESSION_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  /**
   * An embedding app's own error with status 409, 410 or 422 (its `statusCode`), kept as that status
   * with a generic detail: the status is the app's answer, the message may hold internals.
   */
  'CONFLICT',
  'GONE',
  'UNPROCESSABLE_CONTENT',
  'EMAIL_TAKEN',
  'LAST_SUPER_ADMIN',
  /** The installation holds `MAX_OAUTH_CLIENTS` clients already. */
  'TOO_MANY_CLIENTS',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'TOO_MANY_REQUESTS',
  'TOO_MANY_LOGIN_ATTEMPTS',
  'INTERNAL_ERROR',
  'SERVICE_UNAVAILABLE',
  /** The database did not answer in time or is down; the client should retry. */
  'DATABASE_UNAVAILABLE',
  /**
   * PostgreSQL ended the request's transaction because it conflicted with a concurrent one (a
   * deadlock, 40P01, or a serialization failure, 40001); nothing of it was written, and the same
   * request may be retried at once.
   */
  'TRANSACTION_CONFLICT',
  /**
   * Something the request writes for (an account, a room, an app) was deleted by a concurrent
   * request after it was read: a foreign key found its row gone (23503). Nothing was written;
   * the same request now finds it missing.
   */
  'CONCURRENT_DELETION',
  /**
   * An external issuer's keys could not be fetched (down, hanging, or answering nonsense) and none
   * are cached, so its token cannot be checked now (resource-server mode).
   */
  'EXTERNAL_ISSUER_UNAVAILABLE',
  /**
   * An external token's `kid` is not among its issuer's keys held here, and the keys may not be
   * fetched again yet (`jwksCooldown`): it may be a key the issuer has just published, so 503 with
   * `Retry-After` rather than 401 (resource-server mode).
   */
  'EXTERNAL_KEY_UNKNOWN',
  /** REQUIRE_VERIFIED_EMAIL: the password was right but the account's address is not confirmed. */
  'EMAIL_NOT_VERIFIED',
  /** A mailed link's token is unknown, used, expired, or for another purpose or address (alike). */
  'INVALID_LINK_TOKEN',
  /**
   * A verification link followed without a session of the account, with neither the account's
   * current password nor a new one: the mailbox is proven, not that the clicker chose the
   * password (red-team 2026-12d I9). The link stays usable.
   */
  'VERIFICATION_NEEDS_PASSWORD',
  /**
   * An email-change link followed without a session of the account and without its current
   * password: the new address's owner may not be the account's (red-team 2026-12d I9). The link
   * stays usable.
   */
  'EMAIL_CHANGE_NEEDS_PASSWORD',
  /** A new password offered with a verification link of an address already confirmed: use a reset. */
  'EMAIL_ALREADY_VERIFIED',
  /** A second-factor code (TOTP or recovery code) is missing, wrong, expired or already used. */
  'INVALID_OTP',
  /**
   * A right password for an account with a second factor (`/token`: `error=mfa_required` with an
   * `mfa_token`; not an error of the client's, but the first of two steps).
   */
  'MFA_REQUIRED',
  /** The `mfa_token` of a browser sign-in is forged, expired, used or out of tries. */
  'MFA_TOKEN_INVALID',
  /**
   * A sensitive change from a session whose last authentication is older than STEP_UP_MAX_AGE
   * (RFC 9470 `insufficient_user_authentication`): re-authenticate, then retry.
   */
  'STEP_UP_REQUIRED',
  /** TOTP enrolment asked for while a confirmed authenticator exists. */
  'MFA_ALREADY_ENABLED',
  /** TOTP confirmation without a pending enrolment. */
  'MFA_ENROLMENT_NOT_STARTED',
  /** A second-factor operation on an account that has none. */
  'MFA_NOT_ENABLED',
  /**
   * The account's run of wrong second-factor codes reached MFA_MAX_CONSECUTIVE_FAILURES (NIST SP
   * 800-63B §5.2.2): codes from new clients and signed-in sessions are refused, unchecked, until a
   * second factor is accepted elsewhere (a passkey, a device that signed in before) or the
   * password is reset.
   */
  'SECOND_FACTOR_LOCKED',
  /**
   * A passkey ceremony failed: the `passkey_token` is forged, expired, used or for another
   * ceremony, or the authenticator's answer does not verify (WebAuthn §7), alike.
   */
  'PASSKEY_INVALID',
  /** No passkey with this id on the account. */
  'PASSKEY_NOT_FOUND',
  /** The account already holds MAX_PASSKEYS_PER_ACCOUNT passkeys. */
  'PASSKEY_LIMIT_REACHED',
  /** This credential is already registered (on this or another account). */
  'PASSKEY_ALREADY_REGISTERED',
] as const;

/** One of the core's stable error codes in {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A problem detail about one input field (RFC 9457 extension member `errors`). */
export interface FieldError {
  /** JSON pointer-ish name of the field, e.g. `email` or `body/role`. */
  field: string;
  /** Human-readable reason. */
  message: string;
}

/**
 * Which credentials a refused request should present, and why (the parameters of an RFC 9110
 * §11.6.1 challenge; RFC 6750 §3 for `Bearer`). The adapter renders it as `WWW-Authenticate`.
 */
export interface AuthChallenge {
  /** The authentication scheme asked for. */
  scheme: 'Bearer' | 'Basic';
  /** RFC 6750 §3.1 error code, when the request sent credentials that failed. */
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'insufficient_user_authentication';
  /** Human-readable reason (RFC 6750 `error_description`). */
  description?: string;
  /** The scopes the resource needs (RFC 6750 `scope`). */
  scope?: readonly string[];
  /** RFC 9470 §3 `max_age`: the most seconds since the user's last authentication that will do. */
  maxAge?: number;
}

/** Options for {@link GatehouseError}. */
export interface GatehouseErrorOptions {
  /** Per-field details, rendered as the problem's `errors` member. */
  errors?: FieldError[];
  /** Seconds the caller should wait before retrying (the adapter sends `Retry-After`). */
  retryAfterSeconds?: number;
  /** The credentials the caller should present (the adapter sends `WWW-Authenticate`). */
  challenge?: AuthChallenge;
  /** Extra problem members (e.g. `position` for a dice notation error). */
  extra?: Record<string, unknown>;
  /** The underlying error, kept for logs and never sent to clients. */
  cause?: unknown;
}

/**
 * An expected failure with a stable code. The HTTP adapter renders it as
 * `application/problem+json` (RFC 9457); the core never deals with HTTP itself.
 *
 * Apps raise their own codes with the type parameter (`new GatehouseError<DiceryErrorCode>(...)`)
 * and register each code's status with the adapter (`app.gatehouseErrors.register`).
 */
export class GatehouseError<Code extends string = ErrorCode> extends Error {
  /** Stable machine-readable code. */
  readonly code: Code;
  /** Per-field details. */
  readonly errors: FieldError[] | undefined;
  /** Seconds to wait before retrying, when retrying later can succeed. */
  readonly retryAfterSeconds: number | undefined;
  /** The credentials the caller should present. */
  readonly challenge: AuthChallenge | undefined;
  /** Extra problem members. */
  readonly extra: Record<string, unknown>;

  constructor(code: Code, message: string, options: GatehouseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.errors = options.errors;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.challenge = options.challenge;
    this.extra = options.extra ?? {};
  }
}

/** The RFC 6749 §5.2 error codes (plus the registry's `temporarily_unavailable`, `server_error`). */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'temporarily_unavailable'
  | 'server_error'
  /**
   * The password was right but the account has a second factor: the answer carries an
   * `mfa_token` for the `mfa-otp` grant (modelled on Auth0's MFA API; not an RFC 6749 code).
   */
  | 'mfa_required';

/** Options for {@link OAuthTokenError}. */
export interface OAuthTokenErrorOptions {
  /** Our stable code, sent beside `error`. */
  code?: string;
  /** Seconds to wait before retrying (the adapter sends `Retry-After`). */
  retryAfterSeconds?: number;
  /**
   * The scheme the client tried to authenticate with: RFC 6749 §5.2 requires a challenge in that
   * scheme on `invalid_client` when the client used the `Authorization` header.
   */
  challenge?: AuthChallenge;
  /** Extra members of the error body (the `mfa_token` of `mfa_required`). Never secrets of others. */
  extra?: Record<string, string>;
}

/**
 * `text` in the characters RFC 6749 allows in an `error_description` (§4.1.2.1, §5.2: printable
 * ASCII without `"` and `\`; RFC 6750 §3 the same for `WWW-Authenticate`). Typographic quotes and
 * dashes become their ASCII look-alikes, a `"` a `'`, anything else `?`: a client's own input
 * echoed in a description (an unsupported grant type) then breaks neither the RFC's parsers nor
 * a challenge header's quoting (an outside tester's finding).
 */
export function oauthErrorText(text: string): string {
  return text
    .replace(/[\u2018\u2019"\u201C\u201D]/g, "'")
    .replace(/[\u2010-\u2014]/g, '-')
    .replace(/\u2026/g, '...')
    .replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '?');
}

/**
 * An OAuth 2.0 token endpoint error (RFC 6749 §5.2). Rendered as the RFC's JSON shape
 * (`error`, `error_description`) rather than problem+json, because OAuth clients parse it.
 */
export class OAuthTokenError extends Error {
  /**
   * RFC 6749 §5.2 error code, or `temporarily_unavailable` for a throttled login (see
   * {@link OAuthTokenError.throttled}).
   */
  readonly error: OAuthErrorCode;
  /** Seconds to wait before retrying. */
  readonly retryAfterSeconds: number | undefined;
  /** The challenge to answer with (see {@link OAuthTokenErrorOptions.challenge}). */
  readonly challenge: AuthChallenge | undefined;
  /** Our stable code, sent beside `error` when set, so clients can tell our reasons apart. */
  readonly code: string | undefined;
  /** Extra members of the error body. */
  readonly extra: Record<string, string>;

  constructor(error: OAuthErrorCode, description: string, options: OAuthTokenErrorOptions = {}) {
    super(description);
    this.name = 'OAuthTokenError';
    this.error = error;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.challenge = options.challenge;
    this.code = options.code;
    this.extra = options.extra ?? {};
  }

  /**
   * A login refused by throttling, with the seconds to wait. RFC 6749 §5.2 defines no code for
   * it, so the `error` is `temporarily_unavailable`: registered in the IANA OAuth Extensions Error
   * registry (RFC 6749 §4.1.2.1, §11.4), meaning "try again later", and what oauthlib (behind
   * requests-oauthlib) maps to TemporarilyUnavailableError; Authlib raises on any `error` member.
   * Not `invalid_grant`: that claims the credentials are wrong, which would tell a user with the
   * right password to change it (and clients may drop stored credentials on it). Not `slow_down`:
   * RFC 8628 §3.5 defines it for device-code polling, where clients add 5 s to their interval.
   */
  static throttled(code: ErrorCode, description: string, retryAfterSeconds: number): OAuthTokenError {
    return new OAuthTokenError('temporarily_unavailable', description, { code, retryAfterSeconds });
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

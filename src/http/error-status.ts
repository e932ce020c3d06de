import { ConfigError, type ErrorCode } from '../errors.js';

/**
 * HTTP statuses of the core's error codes: the adapter alone knows them (the core raises codes,
 * `src/errors.ts`). Apps add theirs with {@link ErrorStatusRegistry.register}.
 */
export const CORE_ERROR_STATUSES: Readonly<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  BAD_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  URI_TOO_LONG: 414,
  HEADERS_TOO_LARGE: 431,
  EXPECTATION_FAILED: 417,
  NOT_IMPLEMENTED: 501,
  WEAK_PASSWORD: 400,
  INVALID_CURRENT_PASSWORD: 400,
  INVALID_CREDENTIALS: 400,
  UNAUTHENTICATED: 401,
  INVALID_TOKEN: 401,
  FORBIDDEN: 403,
  ACCOUNT_DISABLED: 403,
  INSUFFICIENT_SCOPE: 403,
  FIRST_PARTY_ONLY: 403,
  CONFLICT: 409,
  GONE: 410,
  UNPROCESSABLE_CONTENT: 422,
  CSRF_TOKEN_MISSING: 403,
  CSRF_TOKEN_INVALID: 403,
  CROSS_SITE_REQUEST: 403,
  CORS_PREFLIGHT_INVALID: 400,
  NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  CLIENT_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  EMAIL_TAKEN: 409,
  LAST_SUPER_ADMIN: 409,
  TOO_MANY_CLIENTS: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
  TOO_MANY_LOGIN_ATTEMPTS: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
  DATABASE_UNAVAILABLE: 503,
  TRANSACTION_CONFLICT: 503,
  CONCURRENT_DELETION: 409,
  EXTERNAL_ISSUER_UNAVAILABLE: 503,
  EXTERNAL_KEY_UNKNOWN: 503,
  EMAIL_NOT_VERIFIED: 403,
  INVALID_LINK_TOKEN: 400,
  VERIFICATION_NEEDS_PASSWORD: 400,
  EMAIL_CHANGE_NEEDS_PASSWORD: 400,
  EMAIL_ALREADY_VERIFIED: 409,
  INVALID_OTP: 400,
  MFA_REQUIRED: 400,
  STEP_UP_REQUIRED: 401,
  MFA_TOKEN_INVALID: 400,
  MFA_ALREADY_ENABLED: 409,
  MFA_ENROLMENT_NOT_STARTED: 409,
  MFA_NOT_ENABLED: 409,
  // Not 429: waiting does not lift it; a new password (or another factor) does.
  SECOND_FACTOR_LOCKED: 403,
  PASSKEY_INVALID: 400,
  PASSKEY_NOT_FOUND: 404,
  PASSKEY_LIMIT_REACHED: 409,
  PASSKEY_ALREADY_REGISTERED: 409,
};

/**
 * The status an error code answers with, by code: `{ CLOTHING_NOT_FOUND: 404 }`. Typed by the app's
 * own code union, so a code the app forgets fails its type check:
 * `register<DiceryErrorCode>({ ... })`.
 */
export type ErrorStatuses<Code extends string> = Readonly<Record<Code, number>>;

/** Codes → statuses known to one Fastify instance (`app.gatehouseErrors`). */
export interface ErrorStatusRegistry {
  /**
   * Adds an app's codes. Codes are UPPER_SNAKE, statuses 400-599. Registering a code again with
   * the same status is a no-op (two instances of an app plugin, or a core code with the core's
   * status); with another status it throws a `ConfigError` at registration, naming the code.
   */
  register<Code extends string>(statuses: ErrorStatuses<Code>): void;
  /** The status of `code`, undefined when no one registered it. */
  statusOf(code: string): number | undefined;
  /** Every code and its status, core codes first. */
  entries(): [code: string, status: number][];
}

const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * Every code's status as any registry of this process knows it (the core's, then each app's as it
 * registers: the first status a code got). For an error rendered by another handler than
 * Gatehouse's, which has no registry to ask: see {@link processStatusOf}.
 */
const processStatuses = new Map<string, number>(Object.entries(CORE_ERROR_STATUSES));

/** The status of `code` as any registry of this process knows it; undefined when none does. */
export function processStatusOf(code: string): number | undefined {
  return processStatuses.get(code);
}

/** A registry holding the core's codes; apps add theirs. */
export function createErrorStatusRegistry(): ErrorStatusRegistry {
  const statuses = new Map<string, number>(Object.entries(CORE_ERROR_STATUSES));
  const core = new Set(statuses.keys());
  return {
    register(added) {
      const problems: string[] = [];
      const accepted: [string, number][] = [];
      for (const [code, status] of Object.entries<number>(added)) {
        const known = statuses.get(code);
        if (!CODE.test(code)) problems.push(`error code ${JSON.stringify(code)} must be UPPER_SNAKE_CASE`);
        else if (!Number.isInteger(status) || status < 400 || status > 599)
          problems.push(`error code ${code}: status ${status} must be an integer from 400 to 599`);
        // A core code with the core's own status changes nothing: an app that registered a
        // generic name (`CONFLICT: 409`) before the core took it keeps starting.
        else if (core.has(code) && known !== status)
          problems.push(`error code ${code} belongs to the core (status ${known}); pick another name`);
        else if (known !== undefined && known !== status)
          problems.push(`error code ${code} is already registered with status ${known}`);
        else accepted.push([code, status]);
      }
      if (problems.length > 0) throw new ConfigError(problems);
      for (const [code, status] of accepted) {
        statuses.set(code, status);
        if (!processStatuses.has(code)) processStatuses.set(code, status);
      }
    },
    statusOf: (code) => statuses.get(code),
    entries: () => [...statuses],
  };
}

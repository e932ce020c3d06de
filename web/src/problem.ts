/**
 * Turning API failures into messages people can act on. Pure functions, no DOM, so they are unit
 * tested directly.
 *
 * The API answers errors as RFC 9457 `application/problem+json`: `{ type, title, status, detail,
 * code, errors?: [{ field, message }] }`, plus extension members such as `position` for a dice
 * notation error.
 */

/** A problem about one input field. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** A failed API call, normalized whatever the server (or the network) sent. */
export interface Problem {
  /** HTTP status, or 0 when the server could not be reached. */
  status: number;
  /** Stable error code from the server (`EMAIL_TAKEN`…), or `NETWORK_ERROR` / `HTTP_<status>`. */
  code: string;
  /** Human-readable explanation, from the problem's `detail` when there is one. */
  detail: string;
  /** Per-field problems (`errors[]`), possibly empty. */
  errors: FieldProblem[];
  /** 0-based index into the submitted dice notation where it stopped making sense. */
  position?: number;
  /** Seconds to wait before trying again (from `Retry-After`), for 429 answers. */
  retryAfterSeconds?: number;
}

const FALLBACK_DETAILS: Record<number, string> = {
  400: 'The request was not accepted. Check the form and try again.',
  401: 'Please log in first.',
  403: 'You are not allowed to do that.',
  404: 'Not found.',
  409: 'That conflicts with something that already exists.',
  413: 'That is too much data to send.',
  422: 'The server could not process that input.',
  429: 'Too many attempts. Please wait a moment and try again.',
};

/** The problem for a request that never got an answer (offline, DNS, server down). */
export function networkProblem(): Problem {
  return {
    status: 0,
    code: 'NETWORK_ERROR',
    detail: 'Could not reach the server. Check your connection and try again.',
    errors: [],
  };
}

/**
 * Builds a {@link Problem} from an error response.
 *
 * @param status - HTTP status of the response.
 * @param body - Parsed JSON body, or undefined when there was none (or it was not JSON).
 * @param retryAfter - The `Retry-After` header, if any.
 * @param now - Current time in epoch ms, for HTTP-date `Retry-After` values.
 */
export function toProblem(
  status: number,
  body: unknown,
  retryAfter: string | null = null,
  now = Date.now(),
): Problem {
  const record = isRecord(body) ? body : {};
  const detail = nonEmptyString(record.detail) ?? nonEmptyString(record.title) ?? fallbackDetail(status);
  const code = nonEmptyString(record.code) ?? `HTTP_${status}`;
  const problem: Problem = { status, code, detail, errors: fieldProblems(record.errors) };
  if (typeof record.position === 'number' && Number.isInteger(record.position) && record.position >= 0) {
    problem.position = record.position;
  }
  const wait = parseRetryAfter(retryAfter, now);
  if (wait !== undefined) problem.retryAfterSeconds = wait;
  return problem;
}

/**
 * The sentence to show for a problem: its `detail` as a sentence (capital first, full stop last;
 * schema errors arrive as "email is not a valid address"), plus how long to wait when
 * rate-limited, replacing a vague "try again later".
 */
export function problemMessage(problem: Problem): string {
  const wait = problem.retryAfterSeconds;
  if (problem.status === 429 && wait !== undefined && wait > 0) {
    const detail = problem.detail.replace(/[\s;,.]*(please\s+)?try again later[.!]?$/i, '');
    return `${asSentence(detail === '' ? 'Too many attempts' : detail)} Try again in ${formatWait(wait)}.`;
  }
  return asSentence(forPeople(problem.detail));
}

/**
 * A message the API words for programs, as a person reads it: a leading wire field name
 * (`full_name must be…`) spelled as words, and the pointer to the API's documentation dropped
 * (web review 2026-12-06 W4: "Full_name must be at most 200 characters.").
 */
function forPeople(text: string): string {
  return text
    .replace(/^[a-z]+(?:_[a-z0-9]+)+\b/, (name) => name.replaceAll('_', ' '))
    .replace(/\s*\(see its description at \/docs\)/, '');
}

/**
 * Text for a field error shown under its input. Schema errors are fragments ("is required"), so
 * they get the field's label in front; full sentences from the server are shown as they are.
 */
export function fieldErrorText(label: string, message: string): string {
  const first = message.charAt(0);
  return first !== '' && first === first.toLowerCase() && first !== first.toUpperCase()
    ? `${label} ${message}`
    : message;
}

/**
 * Seconds from a `Retry-After` value (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), rounded up;
 * undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number.parseInt(trimmed, 10);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** "45 seconds", "1 minute", "3 minutes". */
export function formatWait(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

function fallbackDetail(status: number): string {
  if (status >= 500) return 'The server had a problem. Please try again in a moment.';
  return FALLBACK_DETAILS[status] ?? `The request failed (HTTP ${status}).`;
}

function fieldProblems(value: unknown): FieldProblem[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item): FieldProblem[] => {
    if (!isRecord(item)) return [];
    const field = nonEmptyString(item.field);
    const message = nonEmptyString(item.message);
    return field !== undefined && message !== undefined ? [{ field, message }] : [];
  });
}

function asSentence(text: string): string {
  const trimmed = text.trim();
  const capitalized = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capitalized) ? capitalized : `${capitalized}.`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

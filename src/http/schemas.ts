import { type TSchema, Type } from 'typebox';
import type { PublicUser } from '../accounts/public-user.js';
import { ROLES } from '../accounts/roles.js';

/** RFC 9457 problem details, as every error response is documented. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable machine-readable error code' }),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', description: 'application/problem+json (RFC 9457)' },
);

/** A user as the API shows it. */
export const PublicUserSchema = Type.Object(
  {
    id: Type.String({ description: 'Opaque user id' }),
    email: Type.String({ format: 'email' }),
    full_name: Type.Union([Type.String(), Type.Null()]),
    role: Type.Union(ROLES.map((role) => Type.Literal(role))),
    is_active: Type.Boolean(),
    email_verified: Type.Boolean({
      description: 'The owner followed a verification, reset or email-change link mailed to `email`',
    }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'PublicUser' },
);

/** Reference to the shared problem schema, for `response` maps. */
export const problemRef = Type.Unsafe<unknown>({ $ref: 'Problem#' });

/** Reference to the shared user schema ({@link PublicUserSchema}, typed as what `toPublicUser` makes). */
export const publicUserRef = Type.Unsafe<PublicUser>({ $ref: 'PublicUser#' });

/** Standard error responses, for documentation. */
/**
 * The OpenAPI note of every route that changes an account's second factors (see
 * `StepUpPolicy.requireFactorChangeAuthentication`).
 */
export const FACTOR_CHANGE_NOTE =
  ' Once the account holds a second factor (an authenticator app or a passkey), only a session that proved ' +
  'one may change its factors (`amr` has `mfa`: a sign-in with a code or a passkey, or `POST /auth/reauthenticate` ' +
  'with one); a session signed in with the password alone gets 401 `STEP_UP_REQUIRED` (NIST SP 800-63B §6.1.2.1).';

export const errorResponses = {
  400: problemRef,
  401: problemRef,
  403: problemRef,
} as const;

/**
 * Declares, in the OpenAPI document, that a response carries `Location`: for a 201 the created
 * resource (RFC 9110 §10.2.2, §15.3.2), which the handler sets. `headers` is where
 * @fastify/swagger reads a response's headers from; the serializer ignores it, so the route's
 * validation and type stay `schema`'s.
 */
export function declareLocation<T extends TSchema>(schema: T, description: string): T {
  return { ...schema, headers: { Location: { type: 'string', format: 'uri-reference', description } } };
}

/** Pagination query parameters shared by list routes. */
export const PageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
};

/** A page of `item`s, as every list route answers: `{ items, total, limit, offset }`. */
export function pageOf<T extends TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    total: Type.Integer({ description: 'Matching entries in all pages' }),
    limit: Type.Integer(),
    offset: Type.Integer(),
  });
}

/**
 * An id path or query parameter: every id Gatehouse issues is a `crypto.randomUUID()` (RFC 9562),
 * so anything else can be refused by the schema before a storage call. PostgreSQL rejects a NUL
 * byte in `text` with an error (SQLite just finds no row), so letting arbitrary strings reach a
 * query made the same input a 500 on one engine and a 404 on the other.
 */
export function IdParam(description: string) {
  return Type.String({ format: 'uuid', description });
}

/**
 * Free text in a query string (a search prefix): no C0 control characters or DEL. NUL cannot be
 * stored in or compared with PostgreSQL `text`, and no legitimate search contains a control.
 */
export function QueryText(options: { maxLength: number; description?: string }) {
  return Type.String({ ...options, pattern: '^[^\\u0000-\\u001F\\u007F]*$' });
}

/**
 * A response without a body (a 204, or RFC 7009's 200 to `/revoke`): documented as JSON `null`,
 * as before, and typed `void` so the type provider lets the handler `send()` nothing.
 */
export function NoBody(options: { description?: string } = {}) {
  return Type.Unsafe<void>(Type.Null(options));
}

import type { Role } from './roles.js';

/** Every OAuth 2.0 scope Gatehouse knows, with the description shown in Swagger UI's Authorize dialog. */
export const SCOPES = {
  me: 'Read and change your own account and sessions',
  'clothes:read': 'Browse the clothes catalogue',
  'clothes:write': 'Create, change and delete clothes (admins)',
  'users:read': 'List and view user accounts (admins)',
  'users:write': 'Change, disable and delete user accounts (admins)',
  'rooms:host': 'Create and host Dicery rooms',
  'audit:read': 'Read the audit log (super admins)',
  'clients:read': 'List and view registered OAuth clients (admins)',
  'clients:write': 'Register and remove OAuth clients (admins)',
} as const satisfies Record<string, string>;

/** One of the declared scopes. */
export type Scope = keyof typeof SCOPES;

/** All declared scope names. */
export const ALL_SCOPES = Object.keys(SCOPES) as Scope[];

/**
 * Which scopes each role may be granted. Unlike seed 001's tutorial, a client never gets a
 * scope just by asking for it: the request is intersected with this policy.
 */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  user: ['me', 'clothes:read', 'rooms:host'],
  admin: [
    'me',
    'clothes:read',
    'clothes:write',
    'users:read',
    'users:write',
    'rooms:host',
    'clients:read',
    'clients:write',
  ],
  super_admin: ALL_SCOPES,
};

/** True when `value` is a declared scope. */
export function isScope(value: string): value is Scope {
  return Object.hasOwn(SCOPES, value);
}

/** Outcome of {@link grantScopes}. */
export type ScopeGrant = { ok: true; scopes: Scope[] } | { ok: false; rejected: string[] };

/**
 * Decides the scopes of a new token: the requested ones when the role allows all of them, the
 * role's full set when none are requested (RFC 6749 §3.3 lets the server pick a default).
 */
export function grantScopes(role: Role, requested: readonly string[]): ScopeGrant {
  const allowed = ROLE_SCOPES[role];
  if (requested.length === 0) return { ok: true, scopes: [...allowed] };
  const rejected = requested.filter((scope) => !isScope(scope) || !allowed.includes(scope));
  if (rejected.length > 0) return { ok: false, rejected };
  return { ok: true, scopes: [...new Set(requested as Scope[])] };
}

/**
 * Parses an RFC 6749 §3.3 `scope` string: space-delimited, case-sensitive tokens of
 * `%x21 / %x23-5B / %x5D-7E`. Returns undefined when the syntax is wrong.
 */
export function parseScopeParameter(value: string): string[] | undefined {
  if (value === '') return [];
  const parts = value.split(' ');
  if (parts.some((part) => !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(part))) return undefined;
  return parts;
}

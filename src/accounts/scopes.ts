import { ROLES, type Role } from './roles.js';

/** The OpenID Connect Core §5.4 scopes a client may ask for, besides Gatehouse's own {@link SCOPES}. */
export const OIDC_SCOPES = {
  openid: 'Sign you in with your Gatehouse account (OpenID Connect)',
  profile: 'See your name',
  email: 'See your email address',
} as const satisfies Record<string, string>;

/**
 * The core's own OAuth 2.0 scopes, with the description shown in Swagger UI's Authorize dialog.
 * Apps add theirs through {@link createScopePolicy} (`createGatehouse`'s `scopes` option).
 */
export const SCOPES = {
  me: 'Read and change your own account and sessions',
  'users:read': 'List and view user accounts (admins)',
  'users:write': 'Change, disable and delete user accounts (admins)',
  'audit:read': 'Read the audit log (super admins)',
  'clients:read': 'List and view registered OAuth clients (admins)',
  'clients:write': 'Register and remove OAuth clients (admins)',
} as const satisfies Record<string, string>;

/** One of the core's scopes. */
export type Scope = keyof typeof SCOPES;

/** The core's scope names. */
export const ALL_SCOPES = Object.keys(SCOPES) as Scope[];

/**
 * Which scopes each role may be granted. Unlike seed 001's tutorial, a client never gets a
 * scope just by asking for it: the request is intersected with this policy.
 */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  user: ['me'],
  admin: ['me', 'users:read', 'users:write', 'clients:read', 'clients:write'],
  super_admin: ALL_SCOPES,
};

/** True when `value` is one of the core's scopes. */
export function isScope(value: string): value is Scope {
  return Object.hasOwn(SCOPES, value);
}

/** Outcome of {@link grantScopes} and {@link ScopePolicy.grant}. */
export type ScopeGrant = { ok: true; scopes: Scope[] } | { ok: false; rejected: string[] };

/**
 * Decides the scopes of a new token from the core's scopes alone: the requested ones when the
 * role allows all of them, the role's full set when none are requested (RFC 6749 §3.3 lets the
 * server pick a default). A server with apps uses its {@link ScopePolicy} instead.
 */
export function grantScopes(role: Role, requested: readonly string[]): ScopeGrant {
  const granted = defaultPolicy.grant(role, requested);
  return granted as ScopeGrant;
}

/** A scope an app adds: what Swagger UI's Authorize dialog says, and which roles may hold it. */
export interface ScopeDefinition {
  /** One line, shown to people choosing scopes. */
  readonly description: string;
  /** Roles whose tokens may carry the scope; a role not listed never gets it. */
  readonly roles: readonly Role[];
}

/** Scopes an app registers, by name (`clothes:write`); see {@link createScopePolicy}. */
export type ScopeDefinitions = Readonly<Record<string, ScopeDefinition>>;

/**
 * The scopes of one server: the core's ({@link SCOPES}) and its apps'. Built once by the
 * composition root; the token endpoint, cookie sessions, refresh, client registration, the
 * OAuth metadata and the OpenAPI document all read it, so an app's scope works everywhere or
 * nowhere.
 */
export interface ScopePolicy {
  /** Every scope with its description, the core's first. */
  readonly descriptions: Readonly<Record<string, string>>;
  /** True when `name` is a scope of this server. */
  isKnown(name: string): boolean;
  /** The scopes `role` may hold (a token's default scope when none is asked for). */
  forRole(role: Role): readonly string[];
  /** Like {@link grantScopes}, over every scope of this server. */
  grant(
    role: Role,
    requested: readonly string[],
  ): { ok: true; scopes: string[] } | { ok: false; rejected: string[] };
}

/** RFC 6749 §3.3 `scope-token`: `1*( %x21 / %x23-5B / %x5D-7E )`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Builds the {@link ScopePolicy} of a server whose apps add `extra` scopes. Super admins get every
 * scope; other roles get the app scopes that list them.
 *
 * @throws TypeError naming the scope when a name is not an RFC 6749 §3.3 scope token, clashes
 *   with a core scope, has no description, or lists an unknown role: a misconfigured app fails
 *   at start-up, not at the first token request.
 */
export function createScopePolicy(extra: ScopeDefinitions = {}): ScopePolicy {
  const descriptions: Record<string, string> = { ...SCOPES };
  const byRole = new Map<Role, string[]>(ROLES.map((role) => [role, [...ROLE_SCOPES[role]]]));
  for (const [name, definition] of Object.entries(extra)) {
    if (!SCOPE_TOKEN.test(name)) {
      throw new TypeError(
        `Scope ${JSON.stringify(name)} is not an RFC 6749 scope token (no spaces, quotes or backslashes)`,
      );
    }
    if (Object.hasOwn(SCOPES, name))
      throw new TypeError(`Scope ${name} is one of Gatehouse's own; pick another name`);
    if (typeof definition.description !== 'string' || definition.description.trim() === '') {
      throw new TypeError(`Scope ${name} needs a description`);
    }
    const unknown = definition.roles.filter((role) => !ROLES.includes(role));
    if (unknown.length > 0) {
      throw new TypeError(
        `Scope ${name} lists unknown roles: ${unknown.join(', ')} (roles: ${ROLES.join(', ')})`,
      );
    }
    descriptions[name] = definition.description;
    for (const role of ROLES) {
      if (role === 'super_admin' || definition.roles.includes(role)) byRole.get(role)?.push(name);
    }
  }
  const isKnown = (name: string) => Object.hasOwn(descriptions, name);
  const forRole = (role: Role): readonly string[] => byRole.get(role) ?? [];
  return {
    descriptions,
    isKnown,
    forRole,
    grant(role, requested) {
      const allowed = forRole(role);
      if (requested.length === 0) return { ok: true, scopes: [...allowed] };
      const rejected = requested.filter((scope) => !isKnown(scope) || !allowed.includes(scope));
      if (rejected.length > 0) return { ok: false, rejected };
      return { ok: true, scopes: [...new Set(requested)] };
    },
  };
}

const defaultPolicy = createScopePolicy();

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

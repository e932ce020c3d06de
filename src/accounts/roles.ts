/** Account roles, lowest first. */
export const ROLES = ['user', 'admin', 'super_admin'] as const;

/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** True when `value` names a role. */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** True when `role` is `minimum` or above it (`user` < `admin` < `super_admin`). */
export function roleAtLeast(role: Role, minimum: Role): boolean {
  // Fails closed: a `minimum` that is no role (a misspelt one from JavaScript or a setting) ranked
  // -1, below every role, and so let everyone through (red-team 2026-12o O9).
  const needed = ROLES.indexOf(minimum);
  return needed >= 0 && ROLES.indexOf(role) >= needed;
}

/**
 * The role whose scopes a sign-in gets (REQUIRE_MFA_FOR_ROLES, issue 13): an account with a listed
 * role gets only the `user` role's scopes unless the sign-in proved several factors (`amr` has
 * `mfa`: a password and a TOTP or recovery code, or a passkey). Its admin routes all need an
 * admin scope, so the role is inert until the account signs in with a second factor, while the
 * routes to set one up (`me` scope) stay open.
 */
export function effectiveRole(role: Role, amr: readonly string[], requireMfaForRoles: readonly Role[]): Role {
  return requireMfaForRoles.includes(role) && !amr.includes('mfa') ? 'user' : role;
}

import type { UserRecord } from '../storage/user-store.js';
import type { Role } from './roles.js';

/** The user as the API shows it: never a hash. */
export interface PublicUser {
  id: string;
  email: string;
  full_name: string | null;
  role: Role;
  is_active: boolean;
  /** The owner followed a link mailed to `email`. */
  email_verified: boolean;
  created_at: string;
}

/**
 * A stored user without its password hash: what the user cache holds and `request.auth.user` is.
 * The hash never leaves the account service's login check, so code handed a signed-in user (an
 * embedding app's handler, a log line that serializes it) cannot leak it.
 */
export type AccountUser = Omit<UserRecord, 'passwordHash'>;

/** Drops the password hash from a stored user (see {@link AccountUser}). */
export function withoutHash(user: UserRecord): AccountUser {
  const { passwordHash: _hash, ...rest } = user;
  return rest;
}

/** Projects a stored user onto its public shape. */
export function toPublicUser(user: AccountUser): PublicUser {
  return {
    id: user.id,
    email: user.email,
    full_name: user.fullName,
    role: user.role,
    is_active: user.isActive,
    email_verified: user.emailVerified,
    created_at: new Date(user.createdAt).toISOString(),
  };
}

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
 * embedding app's handler, a log line that serializes it) cannot leak it. The credentials version
 * (the sign-ins' bookkeeping, red-team 2026-12d I3) stays inside the core too.
 */
export type AccountUser = Omit<UserRecord, 'passwordHash' | 'credentialsVersion'>;

/** Drops the password hash (and the credentials version) from a stored user (see {@link AccountUser}). */
export function withoutHash(user: UserRecord): AccountUser {
  const { passwordHash: _hash, credentialsVersion: _version, ...rest } = user;
  return rest;
}

/**
 * Public views already made, by the user object they were made from. The user cache hands out the
 * same object for up to 30 s, so `GET /users/me` builds its view (a `Date` and its ISO string
 * included) once per cache fill instead of per request. Weak keys: an entry goes with its user.
 */
const publicViews = new WeakMap<AccountUser, Readonly<PublicUser>>();

/**
 * Projects a stored user onto its public shape. The result is frozen and may be shared between
 * calls with the same user object: copy it to change it.
 */
export function toPublicUser(user: AccountUser): Readonly<PublicUser> {
  let view = publicViews.get(user);
  if (view === undefined) {
    view = Object.freeze({
      id: user.id,
      email: user.email,
      full_name: user.fullName,
      role: user.role,
      is_active: user.isActive,
      email_verified: user.emailVerified,
      created_at: new Date(user.createdAt).toISOString(),
    });
    publicViews.set(user, view);
  }
  return view;
}

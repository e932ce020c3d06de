import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { EventBus } from '../events/event-bus.js';
import type { PasswordHasher } from '../passwords/password-hasher.js';
import { createPasswordPolicy, type PasswordPolicy } from '../passwords/password-policy.js';
import type { SessionManager } from '../sessions/session-manager.js';
import type { UserRecord, UserStore } from '../storage/user-store.js';
import { describeDisplayTextRejection, normalizeDisplayText } from '../text/display-text.js';
import type { LoginThrottle } from './login-throttle.js';
import { normalizeEmail } from './normalize-email.js';
import type { Role } from './roles.js';
import type { UserCache } from './user-cache.js';

/** Input of {@link AccountService.register}. */
export interface Registration {
  email: string;
  password: string;
  fullName?: string | null | undefined;
  role?: Role;
}

/** Outcome of a password login. */
export type PasswordLogin =
  | { ok: true; user: UserRecord }
  | { ok: false; reason: 'invalid_credentials' | 'disabled'; userId?: string }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number };

/** Changes a user may make to their own account. */
export interface ProfileChange {
  fullName?: string | null | undefined;
  password?: string | undefined;
  currentPassword?: string | undefined;
}

/** Registration, login and self-service account changes. */
export interface AccountService {
  /** Creates an account; throws EMAIL_TAKEN, WEAK_PASSWORD or VALIDATION_FAILED. */
  register(input: Registration): Promise<UserRecord>;
  /**
   * Checks an email and password in constant-ish time: unknown emails verify a dummy hash, and
   * "disabled" is only revealed once the password was right.
   */
  loginWithPassword(email: string, password: string, ip: string): Promise<PasswordLogin>;
  /** Changes name and/or password; a password change ends every other session of the user. */
  updateProfile(
    user: UserRecord,
    change: ProfileChange,
    currentSessionId: string,
    ip: string,
  ): Promise<UserRecord>;
  /** Applies a change made on behalf of the user and tells every instance. */
  applyUserChange(id: string, patch: Parameters<UserStore['updateUser']>[1]): Promise<UserRecord | undefined>;
}

/** Dependencies of {@link createAccountService}. */
export interface AccountServiceDeps {
  users: UserStore;
  userCache: UserCache;
  hasher: PasswordHasher;
  sessions: SessionManager;
  throttle: LoginThrottle;
  bus: EventBus;
  clock: () => number;
  /** Rules for new passwords. @default createPasswordPolicy() (15 characters minimum) */
  passwordPolicy?: PasswordPolicy;
}

/** Most code points in a `full_name`. */
export const FULL_NAME_MAX_LENGTH = 200;

/**
 * Applies the shared display-text rule ({@link normalizeDisplayText}) to a `full_name`; empty
 * (or only spaces) becomes null, since the name is optional.
 */
export function normalizeFullName(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined) return null;
  const result = normalizeDisplayText(raw, FULL_NAME_MAX_LENGTH);
  if (result.ok) return result.text;
  if (result.reason === 'empty') return null;
  const message = describeDisplayTextRejection(result.reason, FULL_NAME_MAX_LENGTH);
  throw new GatehouseError('VALIDATION_FAILED', `full_name ${message}`, {
    errors: [{ field: 'full_name', message }],
  });
}

function checkedPassword(policy: PasswordPolicy, raw: string, field: string, email: string): string {
  const check = policy.check(raw, { email });
  if (!check.ok)
    throw new GatehouseError('WEAK_PASSWORD', check.reason, { errors: [{ field, message: check.reason }] });
  return check.password;
}

/** Creates the {@link AccountService}. */
export function createAccountService(deps: AccountServiceDeps): AccountService {
  const { users, hasher, clock } = deps;
  const passwordPolicy = deps.passwordPolicy ?? createPasswordPolicy();

  const applyUserChange: AccountService['applyUserChange'] = async (id, patch) => {
    const updated = await users.updateUser(id, patch, clock());
    deps.userCache.evict(id);
    await deps.bus.publish({ type: 'user_changed', userId: id });
    return updated;
  };

  return {
    async register(input) {
      const email = normalizeEmail(input.email);
      if (email === undefined) {
        throw new GatehouseError('VALIDATION_FAILED', 'email is not a valid address', {
          errors: [{ field: 'email', message: 'must be a valid email address' }],
        });
      }
      const fullName = normalizeFullName(input.fullName);
      const password = checkedPassword(passwordPolicy, input.password, 'password', email.display);
      const now = clock();
      const user: UserRecord = {
        id: randomUUID(),
        email: email.display,
        emailKey: email.key,
        fullName,
        passwordHash: await hasher.hash(password),
        role: input.role ?? 'user',
        isActive: true,
        createdAt: now,
        updatedAt: now,
      };
      // The unique index decides races: of 50 concurrent sign-ups exactly one row is written.
      const inserted = await users.insertUser(user);
      if (!inserted.ok) throw new GatehouseError('EMAIL_TAKEN', 'An account with this email already exists.');
      return user;
    },

    async loginWithPassword(rawEmail, rawPassword, ip) {
      const email = normalizeEmail(rawEmail);
      const accountKey = email?.key ?? rawEmail.normalize('NFKC').trim().toLowerCase();
      const throttle = await deps.throttle.attempt(accountKey, ip);
      if (!throttle.allowed)
        return { ok: false, reason: 'throttled', retryAfterSeconds: throttle.retryAfterSeconds };
      const password = rawPassword.normalize('NFKC');
      const user = email === undefined ? undefined : await users.findUserByEmailKey(email.key);
      if (user === undefined) {
        // Same work as a real check, so timing does not reveal which emails have accounts.
        await hasher.verifyDummy(password);
        return { ok: false, reason: 'invalid_credentials' };
      }
      if (!(await hasher.verify(user.passwordHash, password))) {
        return { ok: false, reason: 'invalid_credentials', userId: user.id };
      }
      await deps.throttle.succeeded(accountKey, ip);
      if (!user.isActive) return { ok: false, reason: 'disabled', userId: user.id };
      if (hasher.needsRehash(user.passwordHash)) {
        // Upgrade hashes made with older parameters while we hold the plaintext.
        await applyUserChange(user.id, { passwordHash: await hasher.hash(password) });
      }
      return { ok: true, user };
    },

    async updateProfile(user, change, currentSessionId, ip) {
      const patch: Parameters<UserStore['updateUser']>[1] = {};
      if (change.fullName !== undefined) patch.fullName = normalizeFullName(change.fullName);
      if (change.password !== undefined) {
        const current = change.currentPassword?.normalize('NFKC');
        // Guessing the current password is guessing the password: same limits as a login, so a
        // stolen short-lived token cannot be turned into a permanent takeover by brute force.
        const throttle = await deps.throttle.attempt(user.emailKey, ip);
        if (!throttle.allowed) {
          throw new GatehouseError('TOO_MANY_LOGIN_ATTEMPTS', 'Too many wrong passwords; try again later.', {
            headers: { 'retry-after': String(throttle.retryAfterSeconds) },
          });
        }
        if (current === undefined || !(await hasher.verify(user.passwordHash, current))) {
          throw new GatehouseError('INVALID_CURRENT_PASSWORD', 'current_password is missing or wrong.', {
            errors: [{ field: 'current_password', message: 'must be your current password' }],
          });
        }
        await deps.throttle.succeeded(user.emailKey, ip);
        patch.passwordHash = await hasher.hash(
          checkedPassword(passwordPolicy, change.password, 'password', user.email),
        );
        // OWASP Session Management: a new password ends every other session. Revoke before the
        // cache-eviction broadcast, so a failing broadcast can never leave those sessions alive.
        await deps.sessions.revokeUserSessions(user.id, currentSessionId);
      }
      const updated = await applyUserChange(user.id, patch);
      if (updated === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      return updated;
    },

    applyUserChange,
  };
}

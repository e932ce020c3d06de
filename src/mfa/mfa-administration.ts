import { type AdminActor, assertMayManageUser } from '../accounts/user-admin-service.js';
import { GatehouseError } from '../errors.js';
import type { ClientInfo } from '../sessions/session-manager.js';
import type { StepUpPolicy } from '../sessions/step-up.js';
import type { UserStore } from '../storage/user-store.js';
import type { MfaService, MfaStatus } from './mfa-service.js';

/** Administrators' view of other people's second factors (issue 13). */
export interface MfaAdministration {
  /**
   * Whether `userId` has second factors. Any admin may read it (as the account itself); throws
   * FORBIDDEN unless `actor` is an active admin, USER_NOT_FOUND.
   */
  status(actor: AdminActor | undefined, userId: string): Promise<MfaStatus>;
  /**
   * Removes every second factor of the account (authenticator, recovery codes, passkeys) for
   * someone who lost them, and ends every session of the account, in one transaction under the
   * account's row lock (audited there, `mfa_reset`); its owner is mailed (`second_factor_removed`,
   * by `MfaService.reset`). Only who may manage the account may (admins manage plain users; super
   * admins everyone): FORBIDDEN otherwise, USER_NOT_FOUND. False when it had nothing to remove (the
   * sessions still end). The actor must have signed in within
   * `STEP_UP_MAX_AGE` on `actorSessionId`, with its second factor when its own account holds one
   * (STEP_UP_REQUIRED otherwise, `StepUpPolicy.requireFactorChangeAuthentication`): a password
   * alone never removes a factor, not even someone else's, so a passkey-only admin's stolen
   * password cannot strip the accounts it manages; and an old token (a leaked cookie session lasts
   * 30 days) cannot either, even a password-only admin's (OWASP ASVS 5 V7.5.3).
   */
  reset(
    actor: AdminActor | undefined,
    userId: string,
    client: ClientInfo,
    actorSessionId: string,
  ): Promise<boolean>;
}

/** Dependencies of {@link createMfaAdministration}. */
export interface MfaAdministrationDeps {
  users: Pick<UserStore, 'findUserById'>;
  mfa: Pick<MfaService, 'status' | 'reset'>;
  stepUp: Pick<StepUpPolicy, 'requireFactorChangeAuthentication'>;
}

/** Creates the {@link MfaAdministration}. */
export function createMfaAdministration(deps: MfaAdministrationDeps): MfaAdministration {
  const target = async (userId: string) => {
    const user = await deps.users.findUserById(userId);
    if (user === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
    return user;
  };
  return {
    async status(actor, userId) {
      if (actor === undefined || !actor.isActive || actor.role === 'user') {
        throw new GatehouseError('FORBIDDEN', 'Only admins can view other accounts.');
      }
      return deps.mfa.status((await target(userId)).id);
    },

    async reset(actor, userId, client, actorSessionId) {
      const user = await target(userId);
      assertMayManageUser(actor, user);
      // One's own factors only through the self-service routes, which ask for a code or a recent
      // sign-in: else a stolen super_admin token (with the password) strips its owner's second
      // factor, as account deletion refuses for the same reason (red-team 2026-12-04).
      if (actor?.id === user.id) {
        throw new GatehouseError(
          'FORBIDDEN',
          'Turn off your own second factors at /users/me/mfa, which asks for a current code.',
        );
      }
      // Like a change to one's own factors: a recent sign-in always (red-team 2026-12h M1: a
      // password-only admin's stale token, refused at its own enrolment, removed anyone's factors),
      // with the actor's second factor when it holds one.
      await deps.stepUp.requireFactorChangeAuthentication(actorSessionId);
      // The factors and every session of the account go in one transaction (whoever held the lost
      // factor, or a session opened with it, is out at once, everywhere); the owner's
      // `second_factor_removed` notice is sent by `MfaService.reset` itself.
      const { removed } = await deps.mfa.reset(user.id, {
        actorId: actor?.id ?? null,
        targetId: user.id,
        ip: client.ip,
        userAgent: client.userAgent,
      });
      return removed;
    },
  };
}

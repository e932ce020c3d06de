import { GatehouseError } from '../errors.js';
import type { SessionStore } from '../storage/session-store.js';

/**
 * Step-up for sensitive changes (OWASP ASVS 5 V6, issue 13): a change needs an authentication
 * within `STEP_UP_MAX_AGE`, whatever token the client holds. Other modules' routes (email change,
 * account deletion) call {@link StepUpPolicy.requireRecentAuthentication} before their change.
 */
export interface StepUpPolicy {
  /**
   * Resolves when the session `sessionId` authenticated (logged in or re-authenticated) within
   * `STEP_UP_MAX_AGE`; otherwise throws STEP_UP_REQUIRED, which the adapter answers 401 with
   * `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=…` (RFC 9470 §3).
   * Reads the session row (not the token's `auth_time`), so a re-authentication counts at once,
   * on every instance, without new tokens.
   */
  requireRecentAuthentication(sessionId: string): Promise<void>;
  /** `STEP_UP_MAX_AGE` in seconds. */
  readonly maxAgeSeconds: number;
}

/** Dependencies of {@link createStepUpPolicy}. */
export interface StepUpPolicyDeps {
  sessions: Pick<SessionStore, 'findSession'>;
  maxAgeSeconds: number;
  clock: () => number;
}

/** Creates the {@link StepUpPolicy}. */
export function createStepUpPolicy(deps: StepUpPolicyDeps): StepUpPolicy {
  const { maxAgeSeconds, clock } = deps;
  return {
    maxAgeSeconds,
    async requireRecentAuthentication(sessionId) {
      const session = await deps.sessions.findSession(sessionId);
      const authTime = session === undefined ? undefined : (session.authTime ?? session.createdAt);
      if (authTime !== undefined && clock() - authTime <= maxAgeSeconds * 1000) return;
      const description = 'Re-authenticate at POST /auth/reauthenticate, then retry.';
      throw new GatehouseError('STEP_UP_REQUIRED', `This change needs a recent sign-in. ${description}`, {
        challenge: {
          scheme: 'Bearer',
          error: 'insufficient_user_authentication',
          description: 'A more recent authentication is required',
          maxAge: maxAgeSeconds,
        },
      });
    },
  };
}

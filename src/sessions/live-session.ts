import { GatehouseError } from '../errors.js';
import type { SessionStore } from '../storage/session-store.js';

/**
 * Throws INVALID_TOKEN (401) unless session `sessionId` of `userId` is still live at `now`. Called
 * inside a write that session authorized, after the account's row lock: the guard checked the
 * session when the request arrived, and "log out everywhere", a password change or reset, or an
 * admin's disable may have committed since; each takes the account's lock, so the read here sees
 * it (red-team 2026-12t: an app's code, a passkey or an authenticator written for a session the
 * owner had just ended outlived the owner's remedy).
 */
export async function assertSessionLive(
  sessions: Pick<SessionStore, 'isSessionLive'>,
  sessionId: string,
  userId: string,
  now: number,
): Promise<void> {
  if (!(await sessions.isSessionLive(sessionId, userId, now))) {
    throw new GatehouseError('INVALID_TOKEN', 'This session has ended: sign in again.');
  }
}

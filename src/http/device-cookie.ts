import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookiePolicy } from './cookies.js';

/** What {@link renewDeviceCookie} needs. */
export interface DeviceCookieRenewal {
  readonly cookies: CookiePolicy;
  /** `DEVICE_TOKEN_TTL`, in seconds. */
  readonly ttlSeconds: number;
  /** How the request was signed in (`UserAuthContext.transport`). */
  readonly transport: 'bearer' | 'cookie';
  /** A device token for the account as it now stands (`SelfService.deviceTokenFor`). */
  readonly issue: () => Promise<string | undefined>;
}

/**
 * Sets a new device cookie on a browser that just ended every session of its account or changed a
 * credential: that ended every device token of the account, this browser's included, and a browser
 * without one is the first that a stranger's failed logins lock out (red-team 2026-12-06 RTL1: the
 * owner's own remedy handed the stranger the owner's devices). Only for a browser, one signed in
 * by its session cookie or carrying a device cookie: a bearer client gets its `device_token` from
 * its next password grant.
 */
export async function renewDeviceCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  renewal: DeviceCookieRenewal,
): Promise<void> {
  const { cookies } = renewal;
  if (renewal.transport !== 'cookie' && request.cookies[cookies.deviceName] === undefined) return;
  const token = await renewal.issue();
  if (token !== undefined) reply.setCookie(cookies.deviceName, token, cookies.device(renewal.ttlSeconds));
}

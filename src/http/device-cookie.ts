import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SelfService } from '../accounts/self-service.js';
import type { CookiePolicy } from './cookies.js';

/** What {@link renewDeviceCookie} and {@link keepingDeviceCookie} need. */
export interface DeviceCookieRenewal {
  readonly cookies: CookiePolicy;
  /** `DEVICE_TOKEN_TTL`, in seconds. */
  readonly ttlSeconds: number;
  /** The account the request acts on. */
  readonly userId: string;
  readonly selfService: Pick<SelfService, 'deviceTokenFor' | 'holdsDeviceToken'>;
}

/**
 * Sets a new device cookie on a browser that just changed a credential it proved it knows (its
 * password): that ended every device token of the account, this browser's included, and a browser
 * without one is the first that a stranger's failed logins lock out (red-team 2026-12-06 RTL1: the
 * owner's own remedy handed the stranger the owner's devices). Only for a browser, one signed in
 * by its session cookie or carrying a device cookie: a bearer client gets its `device_token` from
 * its next password grant.
 */
export async function renewDeviceCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  renewal: DeviceCookieRenewal & { readonly transport: 'bearer' | 'cookie' },
): Promise<void> {
  const { cookies } = renewal;
  if (renewal.transport !== 'cookie' && request.cookies[cookies.deviceName] === undefined) return;
  await setRenewedCookie(request, reply, renewal);
}

/**
 * Runs `change` (one that ends every device token of the account: "log out everywhere", a factor's
 * removal) and gives the browser a new device cookie when it held a valid one before: a session
 * alone, perhaps a stolen one, must not become 90 days of device trust (the review of RTL1).
 */
export async function keepingDeviceCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  renewal: DeviceCookieRenewal,
  change: () => Promise<unknown>,
): Promise<void> {
  const { cookies, selfService, userId } = renewal;
  const held = await selfService.holdsDeviceToken(userId, request.cookies[cookies.deviceName]);
  await change();
  if (held) await setRenewedCookie(request, reply, renewal);
}

/**
 * Sets the account's new device cookie. The change it follows has committed, so a failure to read
 * the account (the database gone meanwhile) must not turn its answer into a 5xx (a retried removal
 * would then answer 404): the cookie is left out and the failure logged.
 */
async function setRenewedCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  { cookies, selfService, userId, ttlSeconds }: DeviceCookieRenewal,
): Promise<void> {
  let token: string | undefined;
  try {
    token = await selfService.deviceTokenFor(userId);
  } catch (error) {
    request.log.warn({ err: error }, 'device cookie not renewed after a credential change');
    return;
  }
  if (token !== undefined) reply.setCookie(cookies.deviceName, token, cookies.device(ttlSeconds));
}

import type { CounterStore } from '../accounts/counter-store.js';
import { addressBucket } from '../lib/address-bucket.js';
import type { AddressAdmission } from './client-credentials.js';

/**
 * Rate limits of the introspection endpoint (RFC 7662 §4: the server should guard it against
 * token scanning and overload) and, with separate counters, of the revocation endpoint (RFC 7009
 * §2: a client may be made to authenticate, and a revocation is a write), over the counter store
 * (Redis when configured, so they hold across instances).
 *
 * Two counters, so that neither can be aimed at someone else:
 * - per client, counted only after the client authenticated (`INTROSPECTIONS_PER_MINUTE`):
 *   nobody else can spend a resource server's allowance;
 * - per client address (IPv6: its /64), counting only failed client authentications
 *   (`INTROSPECTION_FAILURES_PER_IP`), and checked before any authentication, so a
 *   blocked address costs no look-up: a resource server's own heavy traffic never fills it, and
 *   only someone failing from the same address (one NAT) can block it there.
 */
export interface ClientEndpointLimits {
  /** Whether `ip` may try to authenticate now. Reads only. */
  admitAddress(ip: string): Promise<AddressAdmission>;
  /** Counts a failed client authentication from `ip`. */
  recordAuthenticationFailure(ip: string): Promise<void>;
  /** Counts one introspection or revocation by an authenticated client; refused beyond its allowance. */
  admitClient(clientId: string): Promise<AddressAdmission>;
}

/** Settings of {@link createClientEndpointLimits}. */
export interface ClientEndpointLimitSettings {
  /** Introspections per authenticated client per minute. */
  perClientPerMinute: number;
  /** Failed client authentications per address per minute. */
  failuresPerIpPerMinute: number;
  /**
   * Whose counters: each endpoint has its own, so heavy revocation never blocks introspection.
   * @default 'introspect'
   */
  endpoint?: 'introspect' | 'revoke';
}

const CLIENT_REFUSALS = {
  introspect: 'Too many introspection requests for this client; cache the answers.',
  revoke: 'Too many revocation requests for this client.',
} as const;

const MINUTE_MS = 60_000;

/** Creates {@link ClientEndpointLimits}. */
export function createClientEndpointLimits(
  counters: Pick<CounterStore, 'increment' | 'peek'>,
  settings: ClientEndpointLimitSettings,
  clock: () => number,
): ClientEndpointLimits {
  const endpoint = settings.endpoint ?? 'introspect';
  const ipKey = (ip: string) => `oauth:${endpoint}:fail:${addressBucket(ip)}`;
  const refuse = (resetAt: number, description: string): AddressAdmission => ({
    ok: false,
    description,
    retryAfterSeconds: Math.max(1, Math.ceil((resetAt - clock()) / 1000)),
  });
  return {
    async admitAddress(ip) {
      const window = await counters.peek(ipKey(ip));
      return window !== undefined && window.count >= settings.failuresPerIpPerMinute
        ? refuse(window.resetAt, 'Too many failed client authentications from this address.')
        : { ok: true };
    },
    async recordAuthenticationFailure(ip) {
      await counters.increment(ipKey(ip), MINUTE_MS);
    },
    async admitClient(clientId) {
      // Client ids are printable ASCII of at most 255 characters (checked when authenticating).
      const window = await counters.increment(`oauth:${endpoint}:client:${clientId}`, MINUTE_MS);
      return window.count > settings.perClientPerMinute
        ? refuse(window.resetAt, CLIENT_REFUSALS[endpoint])
        : { ok: true };
    },
  };
}

import { decodeJwt } from 'jose';
import type { CounterStore } from '../accounts/counter-store.js';
import { GatehouseError } from '../errors.js';
import { addressBucket } from '../lib/address-bucket.js';
import type { Keyring } from '../tokens/keyring.js';
import { ID_TOKEN_TYP } from './authorization-server.js';

/**
 * Failed `id_token_hint`s one client address (an IPv4 address or IPv6 /64) may send per minute,
 * at `/authorize` and `/oauth/logout` together; its IPv6 /48 gets four times that. Anyone may send
 * a hint, and one that names our key costs an ES256 verification (≈ 0.2 ms on these machines, a
 * request's worth): forged hints are otherwise an unlimited way to spend it. Only failures count
 * (charged before the verification, so concurrent tries cannot slip past, and given back when the
 * hint verifies): an app's silent renewals behind one NAT never reach it.
 */
export const ID_TOKEN_HINT_FAILURES_PER_MINUTE = 20;
const NETWORK_FACTOR = 4;
const MINUTE_MS = 60_000;

/** What a verified `id_token_hint` says: whose session, with which client. */
export interface IdTokenHint {
  /** The ID token's `sub`. */
  userId: string;
  /** Its `sid`: the session the client's tokens belong to (the one its code exchange started). */
  sessionId: string;
  /** Its `aud`: the client it was issued to. */
  clientId: string;
}

/** Dependencies of {@link createIdTokenHintVerifier}. */
export interface IdTokenHintVerifierDeps {
  /** The ID-token keyrings (`core.idTokenKeys`): the one a hint's header names verifies it. */
  idTokenKeys: { keyringFor(token: string): Promise<Pick<Keyring, 'verify'> | undefined> };
  /**
   * How long after its `exp` a hint is still accepted (seconds): SESSION_ABSOLUTE_TTL, since the
   * session an older hint names has ended anyway.
   */
  expiredHintGraceSeconds: number;
  /**
   * Where failed hints are counted per address ({@link ID_TOKEN_HINT_FAILURES_PER_MINUTE}).
   * @default none: not limited (a verifier called without an address is not limited either)
   */
  counters?: Pick<CounterStore, 'increment' | 'decrement'>;
  clock: () => number;
}

/** Verifies an `id_token_hint` sent from `ip` (see {@link createIdTokenHintVerifier}). */
export type IdTokenHintVerifier = (token: string, ip?: string) => Promise<IdTokenHint | undefined>;

/**
 * Verifies an `id_token_hint` (OIDC Core §3.1.2.1 at `/authorize`, RP-Initiated Logout 1.0 §2 at
 * `/oauth/logout`): it must be one of our ID tokens, signed by a key of the ID-token keyring
 * (current, or retired but still published), our `iss`, `typ` `JWT`, an `aud`, a `sub` and a
 * `sid`; it may have expired (a hint outlives the token's use), up to `expiredHintGraceSeconds`.
 * Resolves undefined for any token that is not; rejects only when the keyring cannot be loaded
 * (a database outage is not the hint's fault: the caller answers 503), and with TOO_MANY_REQUESTS
 * when `ip` has sent too many hints that failed ({@link ID_TOKEN_HINT_FAILURES_PER_MINUTE}).
 */
export function createIdTokenHintVerifier(deps: IdTokenHintVerifierDeps): IdTokenHintVerifier {
  const { counters } = deps;
  /** Charges one failure to `ip`'s address and network; undefined when there is nothing to charge. */
  const charge = async (ip: string | undefined) => {
    if (counters === undefined || ip === undefined) return undefined;
    const keys = [`oauth:hint:ip:${addressBucket(ip)}`];
    const network = addressBucket(ip, 48);
    // An IPv4 address is its own network.
    if (network !== addressBucket(ip)) keys.push(`oauth:hint:net:${network}`);
    for (const [index, key] of keys.entries()) {
      const window = await counters.increment(key, MINUTE_MS);
      const max = ID_TOKEN_HINT_FAILURES_PER_MINUTE * (index === 0 ? 1 : NETWORK_FACTOR);
      if (window.count > max) {
        throw new GatehouseError('TOO_MANY_REQUESTS', 'Too many invalid id_token_hints from this address.', {
          retryAfterSeconds: Math.max(1, Math.ceil((window.resetAt - deps.clock()) / 1000)),
        });
      }
    }
    return keys;
  };
  const verify = async (token: string): Promise<IdTokenHint | undefined> => {
    let audience: unknown;
    try {
      // Read unverified only to learn which audience to demand; verify() checks it with the rest.
      audience = decodeJwt(token).aud;
    } catch {
      return undefined;
    }
    if (typeof audience !== 'string') return undefined; // ours always carry one client id
    // Outside the try: a database outage while the keyring first loads propagates (503), where
    // verification itself is in memory.
    const keyring = await deps.idTokenKeys.keyringFor(token);
    if (keyring === undefined) return undefined; // no algorithm of ours
    try {
      const claims = (await keyring.verify(token, {
        typ: ID_TOKEN_TYP,
        audience,
        requiredClaims: ['sub', 'sid'],
        now: deps.clock(),
        expiredGraceSeconds: deps.expiredHintGraceSeconds,
      })) as Record<string, unknown>;
      const { sub, sid } = claims;
      if (typeof sub !== 'string' || typeof sid !== 'string') return undefined;
      return { userId: sub, sessionId: sid, clientId: audience };
    } catch {
      // A bad signature, an unknown or withdrawn key, another issuer, audience or token type.
      return undefined;
    }
  };
  const refund = async (charged: Awaited<ReturnType<typeof charge>>) => {
    if (charged !== undefined) for (const key of charged) await counters?.decrement(key);
  };
  return async (token, ip) => {
    const charged = await charge(ip);
    let hint: Awaited<ReturnType<typeof verify>>;
    try {
      hint = await verify(token);
    } catch (error) {
      // The hint was never judged (the ID-token keys could not be read: a database outage, a
      // 503): not a failure of the client's. Kept, a short outage left every valid hint from an
      // office's address refused with 429 for the rest of the minute (red-team 2026-12l S3).
      await refund(charged).catch(() => {});
      throw error;
    }
    // Only failures count: a hint that verified gives its charge back.
    if (hint !== undefined) await refund(charged);
    return hint;
  };
}

/**
 * The states of a key set, derived from timestamps alone, so every instance that has read the
 * same rows agrees on which key signs at any instant, with no writer flipping states and no
 * restart (issue 11 item 3).
 *
 * - **next**: `activatesAt` lies ahead. Published in the JWKS, not signing yet.
 * - **current**: the activated, unrevoked key with the highest generation. The one that signs.
 * - **retired**: an older activated key. Still published and verifying until every token it can
 *   have signed has expired (`retiredAt` + retention), then **expired** and purged.
 * - **revoked**: withdrawn at once: neither published nor verifying.
 */
export type SigningKeyState = 'next' | 'current' | 'retired' | 'expired' | 'revoked';

/** What the states are computed from (a stored key has more). Times are epoch ms. */
export interface KeyTimeline {
  kid: string;
  generation: number;
  activatesAt: number;
  revokedAt: number | null;
}

/** A key's state at one instant; `retiredAt` for retired and expired keys. */
export interface KeyStatus {
  state: SigningKeyState;
  retiredAt?: number;
}

/**
 * The state of every key at `now`. A key retires when a newer generation activates (a revoked
 * newer key counts: the older one stopped signing then all the same), and expires `retentionMs`
 * after that.
 */
export function signingKeyStates(
  keys: readonly KeyTimeline[],
  now: number,
  retentionMs: number,
): Map<string, KeyStatus> {
  const byNewest = [...keys].sort((a, b) => b.generation - a.generation);
  const states = new Map<string, KeyStatus>();
  let current: string | undefined;
  // Earliest activation among newer generations seen so far (walking from the newest down).
  let supersededAt: number | undefined;
  for (const key of byNewest) {
    const activated = key.activatesAt <= now;
    if (key.revokedAt !== null) {
      states.set(key.kid, { state: 'revoked' });
    } else if (!activated) {
      states.set(key.kid, { state: 'next' });
    } else if (current === undefined) {
      current = key.kid;
      states.set(key.kid, { state: 'current' });
    } else {
      // An activated key older than the current one: a newer activated key exists, so this is set.
      const retiredAt = supersededAt ?? now;
      states.set(key.kid, { state: retiredAt + retentionMs <= now ? 'expired' : 'retired', retiredAt });
    }
    if (activated) supersededAt = Math.min(supersededAt ?? key.activatesAt, key.activatesAt);
  }
  return states;
}

/** The kid of the key that signs at `now`, or undefined when no activated key is left. */
export function currentKid(keys: readonly KeyTimeline[], now: number): string | undefined {
  let best: KeyTimeline | undefined;
  for (const key of keys) {
    if (key.revokedAt !== null || key.activatesAt > now) continue;
    if (best === undefined || key.generation > best.generation) best = key;
  }
  return best?.kid;
}

/** True for the states whose key is published in the JWKS and verifies tokens. */
export function isPublished(state: SigningKeyState): boolean {
  return state === 'next' || state === 'current' || state === 'retired';
}

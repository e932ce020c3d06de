/** One limit on how many slots may be held at once under a key. */
export interface ConcurrencyCap {
  /** What the slots are counted under (`account:…`, `net:…`, `total`): caps sharing a key share a count. */
  readonly key: string;
  /** Most slots held at once under `key`. */
  readonly max: number;
}

/**
 * Outcome of {@link ConcurrencyCaps.tryAcquire}: a held slot and its release, or the first cap
 * that was full (in the order given, so a caller names its most specific cap first).
 */
export type SlotResult<C extends ConcurrencyCap = ConcurrencyCap> =
  | { ok: true; release: () => void }
  | { ok: false; cap: C };

/**
 * Counts work held open at once (an export streaming its body, a long-lived response) under
 * several keys together, refusing at once when any of them is full instead of queueing: a
 * request that cannot start now is answered 429/503 with `Retry-After`, never parked holding its
 * socket.
 *
 * A slot is taken under every cap or none, and its release is idempotent, so a release wired to
 * several endings (completion, client abort, error) frees it exactly once. Entries exist only
 * while a slot is held under their key, so the map is bounded by the slots held (at most the
 * largest cap's `max` times the caps per slot). In memory and per instance: N instances hold N
 * times the figures, like the event-stream caps.
 */
export interface ConcurrencyCaps {
  /** Takes one slot under every cap in `caps`, or none when one is full (answered, not awaited). */
  tryAcquire<C extends ConcurrencyCap>(caps: readonly C[]): SlotResult<C>;
  /** Slots held under `key` now. */
  held(key: string): number;
  /** Keys with a slot held (for tests and metrics). */
  readonly size: number;
}

/** Creates an empty {@link ConcurrencyCaps}. */
export function createConcurrencyCaps(): ConcurrencyCaps {
  const counts = new Map<string, number>();
  return {
    get size() {
      return counts.size;
    },
    held: (key) => counts.get(key) ?? 0,
    tryAcquire(caps) {
      // Checked before anything is counted, and with no await in between, so two requests cannot
      // both see the last free slot and a refusal leaves no state behind.
      const full = caps.find((cap) => (counts.get(cap.key) ?? 0) >= cap.max);
      if (full !== undefined) return { ok: false, cap: full };
      // A key named twice counts twice, as two caps over the same thing would.
      for (const cap of caps) counts.set(cap.key, (counts.get(cap.key) ?? 0) + 1);
      let released = false;
      return {
        ok: true,
        release() {
          if (released) return;
          released = true;
          for (const cap of caps) {
            const next = (counts.get(cap.key) ?? 0) - 1;
            if (next > 0) counts.set(cap.key, next);
            else counts.delete(cap.key);
          }
        },
      };
    },
  };
}

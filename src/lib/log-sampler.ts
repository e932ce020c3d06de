/**
 * Lets one line of a kind through per interval and counts the ones it holds back, so a line that
 * every request of a flood would write (a 503 during an outage: ≈ 1 800 lines in 8 s at 400
 * requests a second, an outside tester's count) becomes one line per interval that says how many
 * it stands for. The state is two numbers per kind, and the kinds are the caller's constants.
 */
export interface LogSampler {
  /**
   * Whether to write this line now: undefined to hold it back (it is counted), or how many lines
   * of `kind` were held back since the last one written (0 for the first).
   */
  take(kind: string): number | undefined;
}

/** Creates a {@link LogSampler} letting one line per `everyMs` through for each kind. */
export function createLogSampler(everyMs: number, clock: () => number = Date.now): LogSampler {
  const kinds = new Map<string, { writtenAt: number; held: number }>();
  return {
    take(kind) {
      const now = clock();
      const state = kinds.get(kind);
      if (state === undefined) {
        kinds.set(kind, { writtenAt: now, held: 0 });
        return 0;
      }
      if (now - state.writtenAt < everyMs) {
        state.held += 1;
        return undefined;
      }
      const held = state.held;
      state.writtenAt = now;
      state.held = 0;
      return held;
    },
  };
}

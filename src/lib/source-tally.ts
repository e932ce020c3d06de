/**
 * How many queued items each source (a client's address bucket, a recipient) holds, so a full
 * queue can make room by dropping from the source that holds the most instead of refusing
 * everyone who comes after a flood. Entries exist only while their count is above zero, so the
 * map is bounded by the queue it describes.
 */
export interface SourceTally {
  /** Items `source` holds now. */
  count(source: string): number;
  add(source: string): void;
  remove(source: string): void;
  /**
   * The source a full queue should drop from to admit one item of `newcomer`: the one holding the
   * most, when it holds at least `margin` more than `newcomer` does (so a flood from one source,
   * or from many, never crowds out a source with nothing queued). Undefined when none does: then
   * the newcomer's item is the one dropped. A margin of 2 keeps places from changing hands between
   * sources of one item each, and keeps the source that gave way from taking the place back at
   * once (it then holds as many as the newcomer). @default margin 1
   */
  evictionCandidate(newcomer: string, margin?: number): string | undefined;
}

/** Creates an empty {@link SourceTally}. */
export function createSourceTally(): SourceTally {
  const counts = new Map<string, number>();
  return {
    count: (source) => counts.get(source) ?? 0,
    add(source) {
      counts.set(source, (counts.get(source) ?? 0) + 1);
    },
    remove(source) {
      const next = (counts.get(source) ?? 0) - 1;
      if (next > 0) counts.set(source, next);
      else counts.delete(source);
    },
    evictionCandidate(newcomer, margin = 1) {
      // O(sources) ≤ O(queue bound), and only when the queue is full.
      let heaviest: string | undefined;
      let most = (counts.get(newcomer) ?? 0) + margin - 1;
      for (const [source, count] of counts) {
        if (count > most) {
          heaviest = source;
          most = count;
        }
      }
      return heaviest;
    },
  };
}

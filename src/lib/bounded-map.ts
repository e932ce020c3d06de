/**
 * A Map that holds at most `maxEntries`: adding a new key beyond that evicts the oldest insertion.
 * Used for the caches on the request hot path (verified tokens, users), which must never grow
 * without bound however many distinct tokens arrive.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    super();
    this.#maxEntries = maxEntries;
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.#maxEntries) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

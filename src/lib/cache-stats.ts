/** Lookups of an in-memory cache since start (monotonic counters, for metrics). */
export interface CacheStats {
  /** Answered from memory. */
  hits: number;
  /** Went to the store (or the signature check) because the entry was missing or too old. */
  misses: number;
}

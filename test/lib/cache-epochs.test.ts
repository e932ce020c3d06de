import { describe, expect, it } from 'vitest';
import { createCacheEpochs } from '../../src/lib/cache-epochs.js';

describe('createCacheEpochs', () => {
  it('serves an ended epoch as stale only within the grace of its own end, however often the bus drops after', () => {
    const epochs = createCacheEpochs(30_000);
    const first = epochs.current();
    expect(epochs.servesStale(first, 0)).toBe(true);
    epochs.expireAll(1_000);
    const second = epochs.current();
    expect(second).not.toBe(first);
    // A re-subscribe every 5 s: each keeps its own epoch's entries, never older ones.
    for (let at = 6_000; at <= 26_000; at += 5_000) epochs.expireAll(at);
    expect(epochs.servesStale(first, 30_999)).toBe(true);
    expect(epochs.servesStale(first, 31_000)).toBe(false);
    expect(epochs.servesStale(second, 35_999)).toBe(true);
    expect(epochs.servesStale(second, 36_000)).toBe(false);
    expect(epochs.servesStale(epochs.current(), 10_000_000)).toBe(true);
    // A clock stepped back counts as elapsed: the safe side.
    expect(epochs.servesStale(second, 500)).toBe(false);
  });

  it('remembers at most maxRemembered ended epochs: the oldest then serve no more', () => {
    const epochs = createCacheEpochs(30_000, 3);
    const first = epochs.current();
    for (let at = 1; at <= 4; at++) epochs.expireAll(at);
    expect(epochs.servesStale(first, 10)).toBe(false);
    expect(epochs.servesStale(first + 1, 10)).toBe(true);
    expect(epochs.servesStale(first + 3, 10)).toBe(true);
  });
});

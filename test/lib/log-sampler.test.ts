import { describe, expect, it } from 'vitest';
import { createLogSampler } from '../../src/lib/log-sampler.js';

describe('createLogSampler', () => {
  it('lets one line per interval through for each kind and counts the ones it held back', () => {
    let now = 1_000;
    const sampler = createLogSampler(10_000, () => now);
    expect(sampler.take('a')).toBe(0);
    expect(sampler.take('a')).toBeUndefined();
    expect(sampler.take('a')).toBeUndefined();
    // Another kind has its own interval.
    expect(sampler.take('b')).toBe(0);
    now += 9_999;
    expect(sampler.take('a')).toBeUndefined();
    now += 1;
    expect(sampler.take('a')).toBe(3);
    // The count starts again after a line is written.
    now += 10_000;
    expect(sampler.take('a')).toBe(0);
    expect(sampler.take('b')).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { fillRandom, randomBase64url } from '../../src/lib/random-pool.js';

describe('random pool', () => {
  it('never hands out the same bytes twice, across refills and draws that do not fit what is left', () => {
    // 40 does not divide the pool's 2 KiB: every refill drops a remainder, and a draw that used
    // it anyway would overlap the next one or come out with a zeroed tail.
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i += 1) {
      const draw = new Uint8Array(40);
      fillRandom(draw);
      expect(draw.subarray(32).some((byte) => byte !== 0)).toBe(true);
      seen.add(Buffer.from(draw).toString('hex'));
    }
    expect(seen.size).toBe(1000);
  });

  it('fills only the range asked for, for pooled and direct (large) draws', () => {
    for (const length of [16, 300]) {
      const target = new Uint8Array(length + 8);
      fillRandom(target, 4, length);
      expect([...target.subarray(0, 4), ...target.subarray(4 + length)]).toEqual(Array(8).fill(0));
      expect(target.subarray(4, 4 + length).some((byte) => byte !== 0)).toBe(true);
    }
  });

  it('refuses a range outside the target or a negative or fractional one', () => {
    expect(() => fillRandom(new Uint8Array(8), 4, 8)).toThrow(RangeError);
    expect(() => fillRandom(new Uint8Array(8), -1, 2)).toThrow(RangeError);
    expect(() => fillRandom(new Uint8Array(8), 0, 1.5)).toThrow(RangeError);
  });

  it('encodes base64url without padding, each call fresh', () => {
    const token = randomBase64url(32);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(randomBase64url(32)).not.toBe(token);
  });
});

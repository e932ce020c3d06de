import { describe, expect, it } from 'vitest';
import { currentKid, type KeyTimeline, signingKeyStates } from '../../src/tokens/signing-key-set.js';

const HOUR = 3600_000;
const key = (kid: string, generation: number, activatesAt: number, revokedAt: number | null = null) =>
  ({ kid, generation, activatesAt, revokedAt }) satisfies KeyTimeline;

describe('signingKeyStates', () => {
  const keys = [key('k1', 1, 0), key('k2', 2, 10 * HOUR), key('k3', 3, 20 * HOUR)];
  const at = (now: number) =>
    Object.fromEntries([...signingKeyStates(keys, now, 5 * HOUR)].map(([kid, s]) => [kid, s.state]));

  it('moves every key through next, current, retired and expired by time alone', () => {
    expect(at(1)).toEqual({ k1: 'current', k2: 'next', k3: 'next' });
    expect(at(10 * HOUR)).toEqual({ k1: 'retired', k2: 'current', k3: 'next' });
    expect(at(15 * HOUR - 1)).toEqual({ k1: 'retired', k2: 'current', k3: 'next' });
    expect(at(15 * HOUR)).toEqual({ k1: 'expired', k2: 'current', k3: 'next' });
    expect(at(20 * HOUR)).toEqual({ k1: 'expired', k2: 'retired', k3: 'current' });
    expect(signingKeyStates(keys, 20 * HOUR, 5 * HOUR).get('k2')).toEqual({
      state: 'retired',
      retiredAt: 20 * HOUR,
    });
  });

  it('never has two current keys: the highest activated generation signs, whatever the activation order', () => {
    const early = [key('a', 1, 5), key('b', 2, 3)];
    expect(currentKid(early, 10)).toBe('b');
    const states = signingKeyStates(early, 10, HOUR);
    expect([...states.values()].filter((s) => s.state === 'current')).toHaveLength(1);
    expect(states.get('a')).toEqual({ state: 'retired', retiredAt: 3 });
  });

  it('drops a revoked key at once; an older key retired by it keeps its real retirement time', () => {
    const revoked = [key('k1', 1, 0), key('k2', 2, 10, 50), key('k3', 3, 50)];
    const states = signingKeyStates(revoked, 60, HOUR);
    expect(states.get('k2')).toEqual({ state: 'revoked' });
    expect(states.get('k3')?.state).toBe('current');
    expect(states.get('k1')).toEqual({ state: 'retired', retiredAt: 10 });
    expect(currentKid([key('x', 1, 0, 5)], 10)).toBeUndefined();
  });
});

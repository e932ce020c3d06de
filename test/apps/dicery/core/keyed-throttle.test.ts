import { describe, expect, it } from 'vitest';
import { createKeyedThrottle } from '../../../../src/apps/dicery/core/keyed-throttle.js';
import { createTestClock } from '../../../../src/testing.js';

describe('createKeyedThrottle', () => {
  const setup = () => {
    const clock = createTestClock(0);
    const runs: [string, number][] = [];
    const throttle = createKeyedThrottle(clock, 100, (key) => runs.push([key, clock()]));
    return { clock, runs, throttle };
  };

  it('runs a quiet key at once, folds the triggers inside its window into one run at its end', () => {
    const { clock, runs, throttle } = setup();
    throttle.trigger('a');
    expect(runs).toEqual([['a', 0]]);
    for (let n = 0; n < 50; n++) throttle.trigger('a');
    throttle.trigger('b');
    expect(runs).toEqual([
      ['a', 0],
      ['b', 0],
    ]);
    clock.advance(100);
    expect(runs.at(-1)).toEqual(['a', 100]);
    expect(runs).toHaveLength(3);
    // The owed run opened a window of its own; a trigger inside it waits for its end.
    clock.advance(50);
    throttle.trigger('a');
    clock.advance(49);
    expect(runs).toHaveLength(3);
    clock.advance(1);
    expect(runs.at(-1)).toEqual(['a', 200]);
  });

  it('forgets a key whose window passed without a trigger, and clear() cancels what was owed', () => {
    const { clock, runs, throttle } = setup();
    throttle.trigger('a');
    throttle.trigger('b');
    expect(throttle.size()).toBe(2);
    clock.advance(100);
    expect(throttle.size()).toBe(0);
    throttle.trigger('a');
    expect(runs.at(-1)).toEqual(['a', 100]);
    throttle.trigger('a');
    throttle.clear();
    expect(throttle.size()).toBe(0);
    clock.advance(1_000);
    expect(runs).toHaveLength(3);
  });

  it('refuses a window that is not a positive number of milliseconds', () => {
    const clock = createTestClock(0);
    for (const windowMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createKeyedThrottle(clock, windowMs, () => {})).toThrow(/window must be a positive/);
    }
  });
});

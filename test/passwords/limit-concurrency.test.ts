import { describe, expect, it } from 'vitest';
import { createLimiter } from '../../src/passwords/limit-concurrency.js';

describe('createLimiter', () => {
  it('never runs more than `max` tasks at once and runs the rest in arrival order', async () => {
    const limit = createLimiter(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const tasks = Array.from({ length: 6 }, (_, i) =>
      limit(async () => {
        running += 1;
        peak = Math.max(peak, running);
        started.push(i);
        await new Promise<void>((resolve) => releases.push(resolve));
        running -= 1;
        return i;
      }),
    );
    // Let the first tasks start, then release them one by one.
    for (let done = 0; done < 6; done++) {
      await expect.poll(() => releases.length).toBeGreaterThan(done);
      expect(running).toBeLessThanOrEqual(2);
      releases[done]?.();
    }
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('frees the slot when a task throws', async () => {
    const limit = createLimiter(1);
    await expect(limit(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limit(async () => 'next')).toBe('next');
  });

  it('refuses new tasks once maxQueued are waiting', async () => {
    let release = () => {};
    const limit = createLimiter(1, 1, () => {
      throw new Error('full');
    });
    const running = limit(() => new Promise<void>((resolve) => (release = resolve)));
    const waiting = limit(async () => 'queued');
    await expect(limit(async () => 'refused')).rejects.toThrow('full');
    release();
    await running;
    expect(await waiting).toBe('queued');
  });
});

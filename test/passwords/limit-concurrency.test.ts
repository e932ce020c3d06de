import { describe, expect, it } from 'vitest';
import { createLaneLimiter, createLimiter } from '../../src/passwords/limit-concurrency.js';

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

describe('createLaneLimiter', () => {
  const full = () => {
    throw new Error('full');
  };

  it('runs reserved work at once on its reserved slot while shared work fills and queues', async () => {
    const limit = createLaneLimiter({ shared: 1, reserved: 1, maxQueued: 1, onFull: full });
    let releaseShared = () => {};
    const running = limit(() => new Promise<void>((resolve) => (releaseShared = resolve)));
    const queued = limit(async () => 'queued');
    await expect(limit(async () => 'refused')).rejects.toThrow('full');
    // The shared lane is full and its queue too; the reserved lane neither waits nor is refused.
    expect(await limit(async () => 'trusted', 'reserved')).toBe('trusted');
    releaseShared();
    await running;
    expect(await queued).toBe('queued');
  });

  it('hands a freed slot to a waiting reserved task before earlier shared ones', async () => {
    const limit = createLaneLimiter({ shared: 1, reserved: 0, maxQueued: 10, onFull: full });
    const order: string[] = [];
    let release = () => {};
    const first = limit(() => new Promise<void>((resolve) => (release = resolve)));
    const shared = limit(async () => {
      order.push('shared');
    });
    const reserved = limit(async () => {
      order.push('reserved');
    }, 'reserved');
    release();
    await Promise.all([first, shared, reserved]);
    expect(order).toEqual(['reserved', 'shared']);
  });

  it('never lets shared work use reserved slots', async () => {
    const limit = createLaneLimiter({ shared: 1, reserved: 2, maxQueued: 10, onFull: full });
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const tasks = Array.from({ length: 3 }, () =>
      limit(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running -= 1;
      }),
    );
    for (let done = 0; done < 3; done++) {
      await expect.poll(() => releases.length).toBeGreaterThan(done);
      releases[done]?.();
    }
    await Promise.all(tasks);
    expect(peak).toBe(1);
  });
});

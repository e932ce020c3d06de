import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createConnectionBreaker,
  DatabaseUnreachableError,
  reachabilityLog,
} from '../../src/storage/connection-breaker.js';
import { isDatabaseUnavailable } from '../../src/storage/open-database.js';

/** A probe whose answers the test gives one at a time. */
function scriptedProbe() {
  const pending: ((reached: boolean) => void)[] = [];
  return {
    calls: () => pending.length,
    probe: () => new Promise<boolean>((resolve) => pending.push(resolve)),
    answer: (reached: boolean) => pending.at(-1)?.(reached),
  };
}

const timeout = () => new Error('Query read timeout');

describe('createConnectionBreaker', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('lets calls through until a call gets no answer, then refuses them at once as unavailable', () => {
    const breaker = createConnectionBreaker({ retryMs: 1000, probe: async () => false });
    expect(() => breaker.check()).not.toThrow();
    const cause = timeout();
    breaker.noAnswer(cause);
    expect(breaker.unreachable).toBe(true);
    let refused: unknown;
    try {
      breaker.check();
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(DatabaseUnreachableError);
    expect((refused as Error).cause).toBe(cause);
    // The error handler's test: a 503 DATABASE_UNAVAILABLE, not a 500.
    expect(isDatabaseUnavailable(refused)).toBe(true);
    breaker.dispose();
  });

  it('probes every retryMs while unreachable, one probe at a time, and closes on the first answer', async () => {
    const script = scriptedProbe();
    const changes: boolean[] = [];
    const breaker = createConnectionBreaker({
      retryMs: 1000,
      probe: script.probe,
      onChange: (reachable) => changes.push(reachable),
    });
    breaker.noAnswer(timeout());
    // A second failure while open neither reports again nor starts a second probe loop.
    breaker.noAnswer(timeout());
    expect(changes).toEqual([false]);
    await vi.advanceTimersByTimeAsync(999);
    expect(script.calls()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(script.calls()).toBe(1);
    // No second probe while the first is out, however long it takes (the pool's timeouts bound it).
    await vi.advanceTimersByTimeAsync(5000);
    expect(script.calls()).toBe(1);
    script.answer(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(script.calls()).toBe(2);
    expect(breaker.unreachable).toBe(true);
    script.answer(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.unreachable).toBe(false);
    expect(changes).toEqual([false, true]);
    expect(() => breaker.check()).not.toThrow();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(script.calls()).toBe(2);
  });

  it('a probe that throws counts as no answer', async () => {
    let probes = 0;
    const breaker = createConnectionBreaker({
      retryMs: 100,
      probe: async () => {
        probes += 1;
        throw new Error('boom');
      },
    });
    breaker.noAnswer(timeout());
    await vi.advanceTimersByTimeAsync(350);
    expect(probes).toBe(3);
    expect(breaker.unreachable).toBe(true);
    breaker.dispose();
  });

  it('an answer to a call already in flight closes it without waiting for the probe', async () => {
    const script = scriptedProbe();
    const breaker = createConnectionBreaker({ retryMs: 1000, probe: script.probe });
    breaker.noAnswer(timeout());
    breaker.answered();
    expect(breaker.unreachable).toBe(false);
    // The pending probe timer is gone with it.
    await vi.advanceTimersByTimeAsync(5000);
    expect(script.calls()).toBe(0);
  });

  it('stops probing once disposed, and ignores later reports', async () => {
    let probes = 0;
    const breaker = createConnectionBreaker({
      retryMs: 100,
      probe: async () => {
        probes += 1;
        return false;
      },
    });
    breaker.noAnswer(timeout());
    await vi.advanceTimersByTimeAsync(150);
    expect(probes).toBe(1);
    breaker.dispose();
    await vi.advanceTimersByTimeAsync(1000);
    expect(probes).toBe(1);
    breaker.noAnswer(timeout());
    expect(breaker.unreachable).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(probes).toBe(1);
  });

  it('a listener that throws neither stops the probes nor replaces the caller’s error', async () => {
    const script = scriptedProbe();
    const breaker = createConnectionBreaker({
      retryMs: 100,
      probe: script.probe,
      onChange: () => {
        throw new Error('logger broke');
      },
    });
    expect(() => breaker.noAnswer(timeout())).not.toThrow();
    expect(() => breaker.check()).toThrow(DatabaseUnreachableError);
    await vi.advanceTimersByTimeAsync(100);
    expect(script.calls()).toBe(1);
    script.answer(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.unreachable).toBe(false);
  });
});

describe('reachabilityLog', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs one "not answering" and one "answering again" per interval however often it flips', async () => {
    const lines: [string, Record<string, unknown> | undefined][] = [];
    const log = reachabilityLog((message, detail) => lines.push([message, detail]), {
      everyMs: 10_000,
      clock: Date.now,
    });
    const start = Date.now();
    log(false, timeout());
    expect(lines).toHaveLength(1);
    expect(lines[0]?.[0]).toMatch(/^database not answering/);
    expect(lines[0]?.[1]).toEqual({ error: 'Query read timeout' });
    // A partial outage: closed by an answer, opened by the next failed connect, forty times.
    for (let i = 0; i < 40; i += 1) {
      await vi.advanceTimersByTimeAsync(100);
      log(true);
      await vi.advanceTimersByTimeAsync(100);
      log(false, timeout());
    }
    expect(lines).toHaveLength(1);
    // It answers again, for good: said once the interval since the last line has passed.
    await vi.advanceTimersByTimeAsync(100);
    log(true);
    const upAt = Date.now();
    expect(lines).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(start + 10_000 - Date.now());
    expect(lines).toHaveLength(2);
    expect(lines[1]?.[0]).toMatch(/^database answering again/);
    expect(lines[1]?.[1]).toEqual({ since: new Date(upAt).toISOString(), timesNotAnswering: 41 });
  });

  it('holds back an "answering again" that is undone before it is due', async () => {
    const lines: string[] = [];
    const log = reachabilityLog((message) => lines.push(message), { everyMs: 10_000 });
    log(false, timeout());
    await vi.advanceTimersByTimeAsync(1000);
    log(true);
    await vi.advanceTimersByTimeAsync(1000);
    log(false, timeout());
    await vi.advanceTimersByTimeAsync(20_000);
    // Still not answering: the log's last word stays "not answering".
    expect(lines).toHaveLength(1);
    log(true);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^database answering again/);
  });
});

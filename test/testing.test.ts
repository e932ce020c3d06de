import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildTestServer, createTestClock, testConfig } from '../src/testing.js';

describe('createTestClock', () => {
  it('moves only when told and fires due timers in order, each at its due time', () => {
    const clock = createTestClock(1_000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`late@${clock()}`), 300);
    clock.setTimeout(() => fired.push(`early@${clock()}`), 100);
    const tick = clock.setInterval(() => fired.push(`tick@${clock()}`), 100);
    expect(clock()).toBe(1_000);
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(201);
    expect(fired).toEqual(['early@1100', 'tick@1100', 'tick@1200', 'late@1300', 'tick@1300']);
    expect(clock()).toBe(1_300);
    tick.cancel();
    clock.advance(1_000);
    expect(fired).toHaveLength(5);
    expect(clock()).toBe(2_300);
  });

  it('runs timers scheduled by a firing timer when they fall due within the same advance', () => {
    const clock = createTestClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => clock.setTimeout(() => fired.push(clock()), 50), 50);
    const cancelled = clock.setTimeout(() => fired.push(-1), 10);
    cancelled.cancel();
    clock.advance(100);
    expect(fired).toEqual([100]);
  });
});

describe('testConfig', () => {
  it('makes a data directory that a test server removes when it closes', async () => {
    const app = await buildTestServer();
    const dir = app.gatehouse.config.dataDir;
    expect(existsSync(dir)).toBe(true);
    await app.close();
    expect(existsSync(dir)).toBe(false);
  });

  it('adds at most one exit listener to the process however many test servers come and go', async () => {
    const before = process.listenerCount('exit');
    for (let round = 0; round < 3; round += 1) await (await buildTestServer()).close();
    expect(process.listenerCount('exit') - before).toBeLessThanOrEqual(1);
  });

  it('leaves a data directory it was given alone', () => {
    expect(testConfig({ dataDir: '/nonexistent/given' }).dataDir).toBe('/nonexistent/given');
  });
});

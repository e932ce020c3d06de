import { describe, expect, it } from 'vitest';
import { createFairWorkQueue } from '../../src/lib/fair-work-queue.js';

/** A task that runs until `release` is called, recording that it started. */
function gatedTasks() {
  const started: string[] = [];
  const releases: (() => void)[] = [];
  const task = (label: string) => () =>
    new Promise<void>((resolve) => {
      started.push(label);
      releases.push(resolve);
    });
  const releaseAll = () => {
    for (const release of releases.splice(0)) release();
  };
  return { started, task, releaseAll };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('fair work queue', () => {
  it('runs at most maxRunning at once, never in the caller’s turn', async () => {
    const warnings: string[] = [];
    const queue = createFairWorkQueue({ maxRunning: 2, maxQueued: 10, warn: (m) => void warnings.push(m) });
    const gate = gatedTasks();
    for (let i = 0; i < 4; i += 1) queue.push('a', 'job', gate.task(`t${i}`));
    expect(gate.started).toEqual([]);
    await tick();
    expect(gate.started).toEqual(['t0', 't1']);
    expect(queue.size()).toBe(4);
    gate.releaseAll();
    await tick();
    await tick();
    expect(gate.started).toEqual(['t0', 't1', 't2', 't3']);
    gate.releaseAll();
    await queue.idle();
    expect(queue.size()).toBe(0);
    expect(warnings).toEqual([]);
  });

  it('when full, drops the flooding source’s oldest waiting task, not the newcomer’s', async () => {
    const warnings: string[] = [];
    const queue = createFairWorkQueue({ maxRunning: 1, maxQueued: 4, warn: (m) => void warnings.push(m) });
    const gate = gatedTasks();
    for (let i = 0; i < 4; i += 1) expect(queue.push('flood', 'job', gate.task(`f${i}`))).toBe('queued');
    // The flooder's fifth is its own loss.
    expect(queue.push('flood', 'job', gate.task('f4'))).toBe('dropped');
    // A victim gets in: the flooder's oldest waiting task (f0 is not started yet either) goes.
    expect(queue.push('victim', 'job', gate.task('v0'))).toBe('queued_evicting_other');
    expect(queue.size()).toBe(4);
    for (let round = 0; round < 6; round += 1) {
      await tick();
      gate.releaseAll();
    }
    await queue.idle();
    expect(gate.started).toEqual(['f1', 'f2', 'f3', 'v0']);
    expect(warnings.join('\n')).toMatch(/its oldest request dropped/);
  });

  it('a flood from many sources (one task each) cannot lock a newcomer out while tasks run', async () => {
    const queue = createFairWorkQueue({ maxRunning: 2, maxQueued: 6, warn: () => {} });
    const gate = gatedTasks();
    for (let i = 0; i < 6; i += 1) expect(queue.push(`ip:${i}`, 'job', gate.task(`f${i}`))).toBe('queued');
    // f0 and f1 start: their sources hold nothing that could be dropped.
    await tick();
    expect(gate.started).toEqual(['f0', 'f1']);
    // The newcomer holds nothing either; it takes the oldest waiting flood task's place.
    expect(queue.push('ip:victim', 'job', gate.task('v0'))).toBe('queued_evicting_other');
    // The flood goes on from fresh sources; each displaces an older flood task, never the newcomer
    // while an older one of the same weight waits.
    expect(queue.push('ip:6', 'job', gate.task('f6'))).toBe('queued_evicting_other');
    for (let round = 0; round < 6; round += 1) {
      gate.releaseAll();
      await tick();
    }
    await queue.idle();
    expect(gate.started).toContain('v0');
  });

  it('never evicts a running task, and logs a failed task without failing the queue', async () => {
    const warnings: string[] = [];
    const queue = createFairWorkQueue({
      maxRunning: 1,
      maxQueued: 1,
      warn: (m, d) => void warnings.push(`${m} ${JSON.stringify(d ?? {})}`),
    });
    const gate = gatedTasks();
    queue.push('flood', 'job', gate.task('running'));
    await tick();
    expect(gate.started).toEqual(['running']);
    // The only task is running: nothing can be evicted, so the newcomer is dropped.
    expect(queue.push('victim', 'job', gate.task('v'))).toBe('dropped');
    gate.releaseAll();
    await queue.idle();
    queue.push('x', 'boom', () => Promise.reject(new Error('database down')));
    await tick();
    await queue.idle();
    expect(warnings.at(-1)).toMatch(/boom failed .*database down/);
    expect(queue.size()).toBe(0);
  });
});

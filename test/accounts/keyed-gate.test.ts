import { describe, expect, it } from 'vitest';
import { createKeyedGate } from '../../src/accounts/keyed-gate.js';

/** A task that runs until released. */
function held() {
  let release = () => {};
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { task: () => done, release };
}

describe('createKeyedGate', () => {
  it('runs one task per key at a time, in arrival order, and others keys in parallel', async () => {
    const gate = createKeyedGate({ maxWaitingPerKey: 10, maxKeys: 10 });
    const order: string[] = [];
    const first = held();
    const a1 = gate.run('a', async () => {
      order.push('a1 start');
      await first.task();
      order.push('a1 end');
    });
    const a2 = gate.run('a', async () => {
      order.push('a2');
    });
    const b = gate.run('b', async () => {
      order.push('b');
    });
    await b;
    expect(order).toEqual(['a1 start', 'b']);
    first.release();
    await Promise.all([a1, a2]);
    expect(order).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
    expect(gate.size).toBe(0);
  });

  it('answers busy past the waiting and key bounds, and frees keys when tasks throw', async () => {
    const gate = createKeyedGate({ maxWaitingPerKey: 1, maxKeys: 2 });
    const a = held();
    const b = held();
    const running = [gate.run('a', a.task), gate.run('b', b.task)];
    const waiting = gate.run('a', async () => 'waited');
    expect(await gate.run('a', async () => 'x')).toEqual({ ok: false, reason: 'busy' });
    expect(await gate.run('c', async () => 'x')).toEqual({ ok: false, reason: 'busy' });
    a.release();
    b.release();
    await Promise.all(running);
    expect(await waiting).toEqual({ ok: true, value: 'waited' });
    await expect(gate.run('a', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(gate.size).toBe(0);
    expect(await gate.run('c', async () => 'free')).toEqual({ ok: true, value: 'free' });
  });
});

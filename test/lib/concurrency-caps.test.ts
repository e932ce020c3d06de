import { describe, expect, it } from 'vitest';
import { createConcurrencyCaps } from '../../src/lib/concurrency-caps.js';

describe('concurrency caps', () => {
  it('takes a slot under every cap or none, and names the first full cap', () => {
    const caps = createConcurrencyCaps();
    const mine = { key: 'account:a', max: 1 };
    const total = { key: 'total', max: 2 };
    const first = caps.tryAcquire([mine, total]);
    expect(first.ok).toBe(true);
    const second = caps.tryAcquire([mine, total]);
    expect(second).toEqual({ ok: false, cap: mine });
    // The refusal counted nothing: the total still has one slot, which someone else takes.
    expect(caps.held('total')).toBe(1);
    const other = caps.tryAcquire([{ key: 'account:b', max: 1 }, total]);
    expect(other.ok).toBe(true);
    expect(caps.tryAcquire([{ key: 'account:c', max: 1 }, total])).toEqual({ ok: false, cap: total });
    expect(caps.held('account:c')).toBe(0);
  });

  it('releases once however often release is called, and forgets a key at zero', () => {
    const caps = createConcurrencyCaps();
    const cap = { key: 'net:2001:db8:1::/48', max: 2 };
    const a = caps.tryAcquire([cap]);
    const b = caps.tryAcquire([cap]);
    if (!a.ok || !b.ok) throw new Error('both slots should be free');
    a.release();
    a.release();
    a.release();
    expect(caps.held(cap.key)).toBe(1);
    expect(caps.tryAcquire([cap]).ok).toBe(true);
    expect(caps.tryAcquire([cap]).ok).toBe(false);
    b.release();
    expect(caps.held(cap.key)).toBe(1);
    expect(caps.size).toBe(1);
  });

  it('holds no entry for a key without a slot', () => {
    const caps = createConcurrencyCaps();
    const slots = Array.from({ length: 100 }, (_, i) => caps.tryAcquire([{ key: `k${i}`, max: 1 }]));
    expect(caps.size).toBe(100);
    for (const slot of slots) if (slot.ok) slot.release();
    expect(caps.size).toBe(0);
  });
});

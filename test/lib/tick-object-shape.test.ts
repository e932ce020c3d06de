import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { pinTickObjectShape } from '../../src/lib/tick-object-shape.js';

/** The symbol descriptions and string keys of an object, as a comparable shape. */
function shapeOf(entry: object) {
  return {
    symbols: Object.getOwnPropertySymbols(entry).map((symbol) => symbol.description),
    keys: Object.keys(entry),
  };
}

/** A nextTick queue entry taken the same way, to compare with the pinned one. */
function captureTickEntry(): object | undefined {
  let entry: object | undefined;
  const hook = createHook({
    init(_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject' && entry === undefined) entry = resource;
    },
  });
  hook.enable();
  process.nextTick(() => {});
  hook.disable();
  return entry;
}

describe('pinTickObjectShape', () => {
  it('holds a real nextTick queue entry: the async ids by symbol, then callback and args', () => {
    const pinned = pinTickObjectShape();
    expect(pinned).toBeDefined();
    // The literal whose maps the pin keeps alive (internal/process/task_queues.js; later Node
    // lines add symbols of their own, so only these are required).
    expect(shapeOf(pinned as object)).toMatchObject({ keys: ['callback', 'args'] });
    expect(shapeOf(pinned as object).symbols).toEqual(
      expect.arrayContaining(['async_id_symbol', 'trigger_async_id_symbol']),
    );
    const fresh = captureTickEntry();
    expect(fresh).toBeDefined();
    expect(shapeOf(fresh as object)).toEqual(shapeOf(pinned as object));
  });

  it('pins once per process: a second call returns the same entry and takes no new one', () => {
    const first = pinTickObjectShape();
    expect(pinTickObjectShape()).toBe(first);
  });

  it('leaves nextTick working: callbacks queued after the pin still run, in order', async () => {
    pinTickObjectShape();
    const order: number[] = [];
    await new Promise<void>((resolve) => {
      process.nextTick(() => order.push(1));
      process.nextTick(() => {
        order.push(2);
        resolve();
      });
    });
    expect(order).toEqual([1, 2]);
  });
});

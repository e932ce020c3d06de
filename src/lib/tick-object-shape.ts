import { createHook } from 'node:async_hooks';

/** The `process.nextTick` queue entry this process holds (see {@link pinTickObjectShape}). */
let pinned: object | undefined;

/**
 * Keeps one of Node's `process.nextTick` queue entries alive for the rest of the process, so
 * V8's hidden classes ("maps") for those entries never die. Idempotent; returns the entry held.
 *
 * Why: Node 20's `nextTick` builds each entry with an object literal whose first keys are
 * computed (`{ [async_id_symbol]: id, [trigger_async_id_symbol]: trigger, callback, args }`).
 * V8 (11.3) records the map it saw at those keys weakly. When every entry is gone (the queue runs
 * empty after each request) and a few full collections pass (start-up, an idle server, the heap
 * compaction after start-up), that map dies and the recorded one reads as cleared. V8's runtime
 * for such a literal then sees "a different map" and marks the site megamorphic, for good
 * (`Runtime_DefineKeyedOwnPropertyInLiteral`: a monomorphic entry whose map differs becomes
 * megamorphic, never monomorphic again). From then on every `nextTick` defines those properties
 * through the runtime instead of optimised code: ≈ 15 `nextTick`s per HTTP request, ≈ 22 % more
 * CPU per `GET /users/me` (bench/README.md, "Issue 10, fourteenth round": `npm start`'s process
 * was in that mode 3 times out of 3 without this pin; a bare Fastify app turns slow the same way
 * after five idle `gc()` calls, and stays fast with the pin).
 *
 * Holding one real entry holds its map, and through the maps' back pointers the whole chain of
 * maps that literal builds, so the recorded map stays alive and the site stays monomorphic. The
 * entry is taken from an `async_hooks` `init` callback, enabled for one synchronous
 * `nextTick(noop)` and disabled before this returns: no hook stays installed (an installed init
 * hook would itself slow every `nextTick` down). The entry's callback is a no-op that has already
 * run; holding it costs one small object.
 *
 * Call it as early as possible in a process that serves traffic for long (the CLI's `serve` calls
 * it first thing): once the site has turned megamorphic, nothing short of a restart undoes it.
 * Call it outside any `AsyncLocalStorage` context: the entry keeps the store it was made in.
 * Written against Node 20 (V8 11.3); on a later Node it holds one entry and costs nothing more.
 */
export function pinTickObjectShape(): object | undefined {
  if (pinned !== undefined) return pinned;
  let entry: object | undefined;
  const hook = createHook({
    init(_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject' && entry === undefined) entry = resource;
    },
  });
  hook.enable();
  try {
    process.nextTick(noop);
  } finally {
    hook.disable();
  }
  pinned = entry;
  return pinned;
}

function noop(): void {}

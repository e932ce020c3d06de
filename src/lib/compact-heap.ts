import { cpuUsage } from 'node:process';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What {@link compactHeap} did: the V8 heap's committed size around it, and its CPU time. */
export type CompactHeapResult =
  | {
      readonly ok: true;
      /** V8's committed heap (`total_heap_size`) before the collection, in bytes. */
      readonly heapBeforeBytes: number;
      /** The same after it: what the pages it emptied no longer cost. */
      readonly heapAfterBytes: number;
      /** CPU time of the whole process (all threads) while it ran, in ms. */
      readonly cpuMs: number;
    }
  | { readonly ok: false; readonly reason: string };

type CollectGarbage = () => void;

/**
 * Runs one full garbage collection that compacts the whole old generation, then leaves V8's flags
 * as they were. For the end of a server's start-up, once, before it takes traffic: start-up
 * (module graphs, migrations, schema compilation) promotes a lot of short-lived objects with a
 * small young generation, and the full collections during start-up free them but leave the pages
 * they were on committed. V8's memory reducer releases those pages only ≈ 20 s after the last
 * collection, and only if the process has gone idle by then. Until then they count in RSS
 * (bench/README.md, "Issue 10, eighth round").
 *
 * No command-line flag is needed, and none changes for good: `--compact-on-every-full-gc` is set
 * only around this one collection (a flag left on would move the whole heap at every full
 * collection, forever). The collector function comes from `globalThis.gc` when the process was
 * started with `--expose-gc`. Otherwise it is taken from a fresh `vm` context created while
 * `--expose-gc` is briefly on (the same way Jest's `--logHeapUsage` gets it), so the
 * application's own global scope never gains a `gc`. Node leaves V8's flags writable after start
 * on purpose, for `v8.setFlagsFromString` (`node.cc`: `--no-freeze-flags-after-init`).
 *
 * Costs a pause of the main thread (≈ 0.1–0.2 s of CPU for a ≈ 22 MiB heap; the process's other
 * work waits), and RSS rises by the live heap's size for that moment: every live object is copied
 * to a fresh page before the old pages are released. Never throws: a Node whose V8 refuses the
 * flags answers `{ ok: false }`, and the heap is then released later by the memory reducer, as
 * without this call.
 */
export function compactHeap(): CompactHeapResult {
  let collect: CollectGarbage;
  try {
    collect = collector();
  } catch (error) {
    return { ok: false, reason: describe(error) };
  }
  const heapBeforeBytes = getHeapStatistics().total_heap_size;
  const cpuBefore = cpuUsage();
  try {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      collect();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  } catch (error) {
    return { ok: false, reason: describe(error) };
  }
  const cpu = cpuUsage(cpuBefore);
  return {
    ok: true,
    heapBeforeBytes,
    heapAfterBytes: getHeapStatistics().total_heap_size,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/** V8's `gc()`: the process's own with `--expose-gc`, otherwise one from a throw-away context. */
function collector(): CollectGarbage {
  const exposed: unknown = Reflect.get(globalThis, 'gc');
  if (typeof exposed === 'function') return () => Reflect.apply(exposed, undefined, []);
  // The flag only decides whether contexts created while it is on get a `gc` global: on for the
  // one context below, off again before anything else runs.
  setFlagsFromString('--expose-gc');
  let taken: unknown;
  try {
    taken = runInNewContext('typeof gc === "function" ? gc : undefined');
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  const gc = taken;
  if (typeof gc !== 'function') throw new Error('this Node does not expose V8 gc() to new contexts');
  return () => Reflect.apply(gc, undefined, []);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// Where the benchmarks run: with `taskset` present, every server on BENCH_SERVER_CPU (0) and the
// load generator, the benchmark script itself, on BENCH_LOAD_CPU (1), so the two never share a core.
import { spawn, spawnSync } from 'node:child_process';

/** The core the servers run on. */
export const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? '0';
/** The core the load generator (the benchmark's own process) runs on. */
export const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '1';
/** Whether `taskset` is there to pin with. */
export const pinned = spawnSync('taskset', ['-V']).status === 0;

/**
 * Runs `main` in the load generator's process: this one when it is already pinned to LOAD_CPU (or
 * nothing can pin), else this script again under `taskset -c LOAD_CPU`, exiting with its code.
 */
export async function asLoadGenerator(main) {
  if (!pinned || process.env.BENCH_PINNED === '1') return main();
  const child = spawn('taskset', ['-c', LOAD_CPU, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
}

/** `[command, args]` that run `node` (an argv: the executable first) on the server core. */
export function onServerCore(node) {
  return pinned ? ['taskset', ['-c', SERVER_CPU, ...node]] : [node[0], node.slice(1)];
}

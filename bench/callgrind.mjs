// Running Node under valgrind's callgrind with instrumentation off until told, shared by
// login-instructions.mjs (the bench server), login-sql.mjs (its `ir` child) and loop-instructions.mjs: start-up and
// warm-up then run ≈ 10× faster than instrumented, and only the counted batch is measured.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * valgrind's arguments to run `node ...nodeArgs` under callgrind, uninstrumented until
 * `callgrindControl('-i', 'on', pid)`, one output file per thread in `dir`.
 */
export function callgrindArgs(dir, nodeArgs) {
  return [
    '--tool=callgrind',
    '--instr-atstart=no',
    '--separate-threads=yes',
    // V8 writes and rewrites machine code in anonymous memory.
    '--smc-check=all-non-file',
    `--callgrind-out-file=${join(dir, 'callgrind.out.%p')}`,
    process.execPath,
    ...nodeArgs,
  ];
}

/** `callgrind_control ...args` (`-i on` turns instrumentation on, `-d` dumps); throws when it fails. */
export function callgrindControl(...args) {
  const result = spawnSync('callgrind_control', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(' ')}: ${result.stderr}`);
}

/**
 * Instructions (Ir) of the first dump in `dir` (`callgrind.out.<pid>.1-<thread>`, not the
 * start-up files): the main thread's (thread 01, the event loop), its file, and all other threads'
 * together (V8's compiler and GC: they move with timing, so read the main thread first).
 */
export function firstDumpInstructions(dir) {
  let main = 0;
  let others = 0;
  let mainFile = '';
  for (const file of readdirSync(dir)) {
    if (!/^callgrind\.out\..*\.1-\d+$/.test(file)) continue;
    const totals = /^totals:\s+(\d+)/m.exec(readFileSync(join(dir, file), 'utf8'));
    const count = totals === null ? 0 : Number(totals[1]);
    if (/-01$/.test(file)) {
      main += count;
      mainFile = join(dir, file);
    } else others += count;
  }
  return { main, others, mainFile };
}

// Instructions per iteration of one piece of a login, alone in a loop, under valgrind's callgrind
// (the "loop method" of issue 10's seventh and eighth rounds): exact on a shared machine, where
// CPU time moves by 10–30 % with the load. A child process sets the loop up from a build
// (`BENCH_DIST`, default `dist`; a frozen copy of another build's `dist/` gives the A side), runs a
// warm-up uninstrumented, then runs the loop `short` and `long` times with instrumentation on; the
// difference of the two counts over the difference of the lengths is the cost of one iteration,
// with start-up, warm-up, the first JIT tiers and the instrumentation toggles cancelled. Main
// thread only (V8's compiler and GC threads move with timing).
//
//   node bench/loop-instructions.mjs sign-in            # a login's SQL, as the session manager runs it
//   BENCH_DIST=/tmp/base/dist node bench/loop-instructions.mjs sign-in
//
// Loops (bench/loops.mjs): `sign-in` (user look-up, TOTP look-up, the write transaction with the
// session, refresh token and audit row, through the build's stores and `Database.transaction`),
// `throttle` (one successful login's counter-store calls), `tokens` (the device token and the
// access JWT a login signs). Settings: BENCH_LOOP_SHORT (1000), BENCH_LOOP_LONG (6000),
// BENCH_LOOP_WARMUP (2000), BENCH_LOOP_RUNS (1; several print each and the median).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { callgrindArgs, callgrindControl, firstDumpInstructions } from './callgrind.mjs';
import { loops } from './loops.mjs';

const DIST = resolve(process.env.BENCH_DIST ?? 'dist');
const SHORT = Number(process.env.BENCH_LOOP_SHORT ?? 1000);
const LONG = Number(process.env.BENCH_LOOP_LONG ?? 6000);
const WARMUP = Number(process.env.BENCH_LOOP_WARMUP ?? 2000);
const RUNS = Number(process.env.BENCH_LOOP_RUNS ?? 1);

/** The child: sets up, warms up, then runs `count` iterations between two lines on stdin. */
async function child(name, count) {
  const step = await loops[name](DIST);
  for (let i = 0; i < WARMUP; i += 1) await step();
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log('ready');
  await lines.next();
  for (let i = 0; i < count; i += 1) await step();
  console.log('done');
  await lines.next();
  process.exit(0);
}

/** Main-thread instructions of `count` iterations (instrumentation on for them only). */
async function measure(name, count) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-loop-ir-'));
  try {
    const process_ = spawn(
      'valgrind',
      callgrindArgs(dir, [
        // The semi-space npm start had when these loops were measured (eighth round): the
        // scavenges a login causes are part of its cost.
        '--max-semi-space-size=1',
        new URL(import.meta.url).pathname,
        'child',
        name,
        String(count),
      ]),
      { stdio: ['pipe', 'pipe', process.env.BENCH_IR_VERBOSE === '1' ? 'inherit' : 'ignore'] },
    );
    const lines = createInterface({ input: process_.stdout })[Symbol.asyncIterator]();
    const expect = async (word) => {
      const { value } = await lines.next();
      if (value !== word) throw new Error(`expected ${word}, got ${value}`);
    };
    await expect('ready');
    callgrindControl('-i', 'on', String(process_.pid));
    process_.stdin.write('go\n');
    await expect('done');
    callgrindControl('-d', String(process_.pid));
    process_.stdin.write('end\n');
    await new Promise((done) => process_.once('exit', done));
    return firstDumpInstructions(dir).main;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'child') {
  await child(process.argv[3], Number(process.argv[4]));
} else {
  const name = process.argv[2];
  if (loops[name] === undefined) throw new Error(`unknown loop ${name}: ${Object.keys(loops).join(', ')}`);
  const perIteration = [];
  for (let run = 1; run <= RUNS; run += 1) {
    const short = await measure(name, SHORT);
    const long = await measure(name, LONG);
    const value = Math.round((long - short) / (LONG - SHORT));
    perIteration.push(value);
    console.log(JSON.stringify({ loop: name, dist: DIST, run, short, long, ir_per_iteration: value }));
  }
  if (RUNS > 1) {
    const sorted = [...perIteration].sort((a, b) => a - b);
    console.log(
      JSON.stringify({ loop: name, dist: DIST, median_ir_per_iteration: sorted[Math.floor(RUNS / 2)] }),
    );
  }
}

// Instructions per login, counted by valgrind's callgrind: a figure that does not move with the
// load of a shared machine (CPU time does, by 10–30 % between runs), so two builds can be compared
// to the percent. Runs `bench/server.mjs` under callgrind with argon2's verification stubbed
// (`bench/argon2-stub`: the hash itself is the same work in every build and would drown the rest),
// starts it uninstrumented (start-up and warm-up run ≈ 10× faster so), sends a warm-up of logins,
// turns instrumentation on (`callgrind_control -i on`), sends a fixed number of logins, dumps
// (`-d`), and prints instructions (Ir) per login, for the main thread and the others.
//
//   node bench/login-instructions.mjs              # npm start's Node flags, as run.mjs's logins
//   BENCH_LOGIN_NODE_FLAGS="" node bench/login-instructions.mjs   # Node's defaults
//
// Settings: BENCH_IR_WARMUP (300 logins), BENCH_IR_LOGINS (300), BENCH_IR_RUNS (1; several runs
// print each and the median), BENCH_IR_KEEP=1 (keep the callgrind files, for callgrind_annotate;
// with BENCH_IR_TOP=N, also print the main thread's top N functions per login, JIT code named
// through `--perf-basic-prof`'s map).
// Needs valgrind. Slow: ≈ 50× native, about a minute per run. V8's compiler and GC threads are
// counted too (the "others"), and what they do depends on timing, so read the main thread first.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { callgrindArgs, callgrindControl, firstDumpInstructions } from './callgrind.mjs';
import { printTop } from './callgrind-top.mjs';
import { loginRequests } from './login-requests.mjs';
import { startNodeFlags } from './start-flags.mjs';

const WARMUP = Number(process.env.BENCH_IR_WARMUP ?? 300);
const LOGINS = Number(process.env.BENCH_IR_LOGINS ?? 300);
const RUNS = Number(process.env.BENCH_IR_RUNS ?? 1);
const KEEP = process.env.BENCH_IR_KEEP === '1';
const TOP = Number(process.env.BENCH_IR_TOP ?? 0);
const nodeFlags = startNodeFlags(process.env.BENCH_LOGIN_NODE_FLAGS);

async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ir-'));
  const child = spawn(
    'valgrind',
    callgrindArgs(dir, [
      ...nodeFlags,
      // Names for JIT-compiled code (/tmp/perf-<pid>.map), for BENCH_IR_TOP.
      ...(KEEP && TOP > 0 ? ['--perf-basic-prof'] : []),
      '--import',
      './bench/argon2-stub/register.mjs',
      'bench/server.mjs',
    ]),
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, BENCH_LOGIN_ACCOUNTS: '10' } },
  );
  try {
    const server = await new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line)));
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const started = Date.now();
    await autocannon({ ...loginRequests(server), amount: WARMUP, timeout: 60 });
    if (process.env.BENCH_IR_VERBOSE === '1') console.error(`warm-up ${Date.now() - started} ms`);
    callgrindControl('-i', 'on', String(child.pid));
    const result = await autocannon({ ...loginRequests(server), amount: LOGINS, timeout: 60 });
    callgrindControl('-d', String(child.pid));
    if (result['2xx'] !== LOGINS) throw new Error(`${LOGINS - result['2xx']} logins failed`);
    const { main, others, mainFile } = firstDumpInstructions(dir);
    if (KEEP && TOP > 0) printTop(mainFile, child.pid, LOGINS, TOP);
    return { main: main / LOGINS, others: others / LOGINS, dir };
  } finally {
    await new Promise((resolve) => {
      if (child.exitCode !== null) resolve();
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

const runs = [];
for (let i = 0; i < RUNS; i += 1) {
  const r = await run();
  runs.push(r);
  console.log(
    JSON.stringify({
      run: i + 1,
      node_flags: nodeFlags.join(' '),
      ir_per_login_main_thread: Math.round(r.main),
      ir_per_login_other_threads: Math.round(r.others),
      ...(KEEP ? { callgrind_files: r.dir } : {}),
    }),
  );
}
if (RUNS > 1) {
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log(
    JSON.stringify({
      median_ir_per_login_main_thread: Math.round(median(runs.map((r) => r.main))),
      median_ir_per_login_other_threads: Math.round(median(runs.map((r) => r.others))),
    }),
  );
}

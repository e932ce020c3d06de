// Instructions per request: the one figure a machine shared with other engineers does not move.
// Runs bench/server.mjs (or the bare ceiling) under valgrind's callgrind, sends a warm-up batch,
// zeroes the counters (`callgrind_control -z`), sends a fixed batch of GET /users/me, dumps the
// counters (`callgrind_control -d`) and divides the instructions executed by the server (all its
// threads) by the requests answered. Wall-clock time, other processes and CPU frequency do not
// enter; what is left is JIT variation between runs (≈ 1 %: compare A/B pairs of several runs).
//
//   node bench/instructions.mjs [jwt|cookie|twin|database|ceiling] ...
//
// Settings: BENCH_IR_WARMUP (2 000), BENCH_IR_REQUESTS (3 000), BENCH_CONNECTIONS (8),
// BENCH_IR_RUNS (1: runs per target, each a fresh server), BENCH_IR_KEEP=1 (keep the callgrind
// files and print their directory: `callgrind_annotate <file>` splits the count by function;
// JIT-compiled JavaScript shows as bare addresses, V8 builtins and Node's C++ by name).
// Needs `valgrind` and `npm run build`. A server under callgrind runs ≈ 50× slower: a run of one
// target takes 1–2 minutes, most of it start-up.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { printTop } from './callgrind-top.mjs';
import { usersMeRequest } from './users-me-request.mjs';

const WARMUP = Number(process.env.BENCH_IR_WARMUP ?? 2_000);
const REQUESTS = Number(process.env.BENCH_IR_REQUESTS ?? 3_000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const RUNS = Number(process.env.BENCH_IR_RUNS ?? 1);
const KEEP = process.env.BENCH_IR_KEEP === '1';
const TOP = Number(process.env.BENCH_IR_TOP ?? 0);
const here = new URL('.', import.meta.url).pathname;

function startServer(script, env, dir, underValgrind) {
  const args = underValgrind
    ? [
        'valgrind',
        '--tool=callgrind',
        // V8 writes and patches machine code at run time.
        '--smc-check=all',
        '--separate-threads=yes',
        `--callgrind-out-file=${join(dir, 'callgrind.out')}`,
        process.execPath,
        // Names for JIT-compiled code (/tmp/perf-<pid>.map), for the breakdown by function.
        ...(KEEP ? ['--perf-basic-prof'] : []),
        join(here, script),
      ]
    : [process.execPath, join(here, script)];
  const child = spawn(args[0], args.slice(1), {
    stdio: ['ignore', 'pipe', underValgrind ? 'ignore' : 'inherit'],
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ ...JSON.parse(line), child }));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

async function load(target, server, amount) {
  // A server under callgrind answers slowly, more so on a busy machine: no request may time out.
  const result = await autocannon({
    ...usersMeRequest(target, server),
    connections: CONNECTIONS,
    amount,
    timeout: 600,
  });
  if (result.non2xx + result.errors > 0)
    throw new Error(`${target}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result['2xx'];
}

function callgrindControl(flag, pid) {
  const out = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`callgrind_control ${flag} failed: ${out.stderr}`);
}

/**
 * The instruction counts of the newest callgrind dump in `dir`, one file per thread
 * (`--separate-threads=yes`): the main thread's (thread 1: the event loop, where requests run)
 * and all threads' (V8's GC and compiler threads too; the compiler's share varies from run to run
 * with when V8 decides to optimise, so the main thread's is the steadier figure).
 */
function dumpedInstructions(dir) {
  const dumps = readdirSync(dir)
    .map((f) => /^callgrind\.out\.(\d+)-(\d+)$/.exec(f))
    .filter((match) => match !== null);
  const last = Math.max(...dumps.map((match) => Number(match[1])));
  if (!Number.isFinite(last)) throw new Error(`no callgrind dump in ${dir}`);
  let all = 0;
  let main = 0;
  let mainFile = '';
  for (const match of dumps.filter((m) => Number(m[1]) === last)) {
    const text = readFileSync(join(dir, match[0]), 'utf8');
    const totals = /^(?:totals|summary): (\d+)/m.exec(text);
    if (totals === null) throw new Error(`no totals in ${match[0]}`);
    all += Number(totals[1]);
    if (Number(match[2]) === 1) {
      main = Number(totals[1]);
      mainFile = join(dir, match[0]);
    }
  }
  return { all, main, file: mainFile };
}

async function bodyOfUsersMe() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ir-'));
  const server = await startServer('server.mjs', {}, dir, false);
  const response = await fetch(`${server.url}/users/me`, {
    headers: { authorization: `Bearer ${server.token}` },
  });
  const body = await response.text();
  await stop(server.child);
  rmSync(dir, { recursive: true, force: true });
  return body;
}

async function measure(target, body) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ir-'));
  const server =
    target === 'ceiling'
      ? await startServer('ceiling.mjs', { BENCH_BODY: body }, dir, true)
      : await startServer(
          'server.mjs',
          { BENCH_TOKEN_STRATEGY: target === 'database' ? 'database' : 'jwt', BENCH_LOGIN_ACCOUNTS: '0' },
          dir,
          true,
        );
  const pid = server.child.pid;
  let answered;
  try {
    await load(target, server, WARMUP);
    callgrindControl('-z', pid);
    answered = await load(target, server, REQUESTS);
    callgrindControl('-d', pid);
  } finally {
    // Never leave a server under valgrind behind, whatever failed.
    await stop(server.child);
  }
  const { all, main, file } = dumpedInstructions(dir);
  if (KEEP && TOP > 0) printTop(file, pid, answered, TOP);
  if (KEEP) console.log(`callgrind files kept: ${file} (JIT names: /tmp/perf-${pid}.map)`);
  else rmSync(dir, { recursive: true, force: true });
  return { all, main, answered };
}

const targets = process.argv.slice(2);
const body = targets.includes('ceiling') ? await bodyOfUsersMe() : '';
for (let run = 0; run < RUNS; run += 1) {
  for (const target of targets.length > 0 ? targets : ['jwt']) {
    const { all, main, answered } = await measure(target, body);
    console.log(
      JSON.stringify({
        target,
        run,
        requests: answered,
        instructions_per_request: {
          main_thread: Math.round(main / answered),
          all_threads: Math.round(all / answered),
        },
      }),
    );
  }
}

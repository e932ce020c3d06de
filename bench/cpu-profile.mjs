// Where a request's CPU goes, measured so that machine load does not change the answer much:
// instead of requests per second (which drops when other processes take the core), it counts the
// server's own CPU time (utime + stime of each thread, from /proc) over a fixed number of
// requests, and splits the main thread's share by step with a V8 CPU profile (`--cpu-prof`,
// self time of the samples taken during those requests only).
//
//   node bench/cpu-profile.mjs [jwt|cookie|twin|database|ceiling|login] ...
//
// Prints one JSON line per target: CPU µs per request (main thread, other threads: libuv's pool
// where argon2 runs and V8's GC helpers; total), and µs per request for each step (parse, auth,
// headers, log, serialize, …) as the profile's shares of the main thread's CPU time. A busy
// machine still inflates every figure somewhat (caches, frequency, context switches), so compare
// shares and ratios measured in the same run; the step table in bench/README.md comes from here.
// Settings: BENCH_PROFILE_REQUESTS (20 000; logins: BENCH_PROFILE_LOGINS, 200),
// BENCH_CONNECTIONS (32), BENCH_SERVER_CPU (0) / BENCH_LOAD_CPU (1) with taskset,
// BENCH_LOG=1 (production's request log, to /dev/null), BENCH_PROFILE_KEEP=1 (keep the
// .cpuprofile files and print their directory), BENCH_PROFILE_TOP=N (print the N functions with
// the most self time), BENCH_PROFILE_CPUPROF=0 (CPU times only, without the profiler's overhead),
// BENCH_HASH_CONCURRENCY (PASSWORD_HASH_CONCURRENCY of the server).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { loginRequests } from './login-requests.mjs';
import { asLoadGenerator, onServerCore } from './pinning.mjs';
import { threadCpu } from './thread-cpu.mjs';
import { usersMeRequest } from './users-me-request.mjs';

const REQUESTS = Number(process.env.BENCH_PROFILE_REQUESTS ?? 20_000);
const LOGINS = Number(process.env.BENCH_PROFILE_LOGINS ?? 200);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

function startServer(script, env, profileDir) {
  // BENCH_PROFILE_CPUPROF=0 leaves the profiler out: CPU times without its sampling overhead.
  const profiler =
    process.env.BENCH_PROFILE_CPUPROF === '0' ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const node = [process.execPath, ...profiler, script];
  const [command, args] = onServerCore(node);
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ ...JSON.parse(line), child }));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

async function load(target, server, amount) {
  if (target === 'login') return autocannon({ ...loginRequests(server), amount });
  return autocannon({ ...usersMeRequest(target, server), connections: CONNECTIONS, amount });
}

async function profile(target) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-profile-'));
  let server;
  if (target === 'ceiling') {
    const body = await bodyOfUsersMe();
    server = await startServer('bench/ceiling.mjs', { BENCH_BODY: body }, dir);
  } else {
    server = await startServer(
      'bench/server.mjs',
      {
        BENCH_TOKEN_STRATEGY: target === 'database' ? 'database' : 'jwt',
        BENCH_LOGIN_ACCOUNTS: target === 'login' ? String(Math.max(10, Math.ceil(LOGINS / 30))) : '0',
      },
      dir,
    );
  }
  const amount = target === 'login' ? LOGINS : REQUESTS;
  // Warm-up (JIT, caches, the argon2 binding), not counted.
  await load(target, server, Math.max(10, Math.floor(amount / 10)));
  const before = threadCpu(server.child.pid, server.poolThreads);
  const start = process.hrtime.bigint();
  const result = await load(target, server, amount);
  const end = process.hrtime.bigint();
  const after = threadCpu(server.child.pid, server.poolThreads);
  const answered = result['2xx'];
  if (result.non2xx + result.errors > 0)
    console.warn(`${target}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  await new Promise((resolve) => {
    server.child.once('exit', resolve);
    server.child.kill('SIGTERM');
  });
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  const steps =
    file === undefined ? {} : stepsOf(JSON.parse(readFileSync(join(dir, file), 'utf8')), start, end);
  const mainUs = (after.main - before.main) / answered;
  const othersUs = (after.others - before.others) / answered;
  const sampled = Object.values(steps).reduce((a, b) => a + b, 0);
  const perStep = Object.fromEntries(
    Object.entries(steps)
      .sort((a, b) => b[1] - a[1])
      .map(([step, us]) => [
        step,
        { us: +((us / sampled) * mainUs).toFixed(2), share: +(us / sampled).toFixed(3) },
      ]),
  );
  console.log(
    JSON.stringify({
      target,
      requests: answered,
      cpu_us_per_request: {
        main_thread: +mainUs.toFixed(1),
        other_threads: +othersUs.toFixed(1),
        // Of other_threads: libuv's pool (argon2 on a login; nothing else runs there).
        pool_threads: +((after.pool - before.pool) / answered).toFixed(1),
        total: +(mainUs + othersUs).toFixed(1),
      },
      per_request: {
        minor_page_faults: +((after.minorFaults - before.minorFaults) / answered).toFixed(1),
        voluntary_context_switches: +(
          (after.voluntarySwitches - before.voluntarySwitches) /
          answered
        ).toFixed(2),
        involuntary_context_switches: +(
          (after.involuntarySwitches - before.involuntarySwitches) /
          answered
        ).toFixed(2),
      },
      main_thread_steps: perStep,
    }),
  );
  if (process.env.BENCH_PROFILE_KEEP === '1') console.log(`profile kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

async function bodyOfUsersMe() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-profile-'));
  const server = await startServer('bench/server.mjs', {}, dir);
  const response = await fetch(`${server.url}/users/me`, {
    headers: { authorization: `Bearer ${server.token}` },
  });
  const body = await response.text();
  await new Promise((resolve) => {
    server.child.once('exit', resolve);
    server.child.kill('SIGTERM');
  });
  rmSync(dir, { recursive: true, force: true });
  return body;
}

// A sample belongs to the step of its nearest frame (leaf first) that a rule recognises; the
// rules are by script URL and function name. Order matters only within one frame.
const RULES = [
  ['gc', (f) => f.functionName === '(garbage collector)'],
  [
    'write syscalls',
    (f) => f.url === '' && /^(writev|writeBuffer|writeUtf8String|writeLatin1String)$/.test(f.functionName),
  ],
  [
    'log',
    (f) =>
      /node_modules\/(pino|pino-std-serializers|fast-redact|@pinojs|sonic-boom)\/|request-log\.js|log-options\.js/.test(
        f.url,
      ),
  ],
  ['cookie plugin', (f) => /node_modules\/(@fastify\/cookie|cookie|cookie-signature)\//.test(f.url)],
  [
    'auth',
    (f) =>
      /dist\/src\/(http\/(auth|caller|cookies|csrf-binding)|sessions|tokens|accounts\/(user-cache|scopes|roles)|resource-server)\b|node_modules\/jose\//.test(
        f.url,
      ),
  ],
  [
    'serialize',
    (f) =>
      /node_modules\/(fast-json-stringify|@fastify\/fast-json-stringify-compiler)\/|public-user\.js|validation\.js/.test(
        f.url,
      ) ||
      (/^anonymous$/.test(f.functionName) && f.url === ''),
  ],
  [
    'headers: security + CORS hook',
    (f) => /security-headers\.js|response-headers\.js|http\/cors\.js/.test(f.url),
  ],
  [
    'headers: Node (writeHead, validation)',
    (f) =>
      /^(_storeHeader|processHeader|writeHead|setHeader|validateHeaderName|validateHeaderValue|checkInvalidHeaderChar|checkIsHttpToken|matchHeader|utcDate|_implicitHeader)$/.test(
        f.functionName,
      ),
  ],
  [
    'login: argon2 binding, SQL, signing',
    (f) =>
      /node_modules\/(@node-rs|better-sqlite3|kysely)\/|dist\/src\/(storage|passwords|accounts|audit)\//.test(
        f.url,
      ),
  ],
  [
    'parse (llhttp, IncomingMessage)',
    (f) =>
      /^(parserOnHeadersComplete|parserOnIncoming|parserOnMessageComplete|parserOnBody|execute|onParserExecute|onParserExecuteCommon|IncomingMessage|_addHeaderLines|_addHeaderLine)$/.test(
        f.functionName,
      ),
  ],
  [
    'Fastify routing, hooks, reply',
    (f) =>
      /node_modules\/(fastify|find-my-way|avvio|@fastify\/(formbody|ajv-compiler)|fast-querystring|toad-cache|light-my-request|ajv)\//.test(
        f.url,
      ),
  ],
  [
    'Node response, stream and socket plumbing',
    (f) =>
      /^node:(_http_|net|stream|internal\/(streams|http|timers|async_hooks|process\/task_queues))/.test(
        f.url,
      ),
  ],
];

function stepsOf(profile, startNs, endNs) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stepOfNode = new Map();
  const classify = (id) => {
    if (stepOfNode.has(id)) return stepOfNode.get(id);
    const frame = byId.get(id).callFrame;
    if (frame.functionName === '(idle)') return null;
    let step;
    for (const [name, match] of RULES) if (match(frame)) step = step ?? name;
    if (step === undefined) {
      const up = parent.get(id);
      step =
        up === undefined
          ? frame.functionName === '(program)'
            ? 'V8 / native (program)'
            : 'other'
          : classify(up);
      if (step === 'other' && frame.functionName === '(program)') step = 'V8 / native (program)';
    }
    stepOfNode.set(id, step);
    return step;
  };
  // Sample timestamps are CLOCK_MONOTONIC µs, like process.hrtime here: keep the load window.
  const from = Number(startNs / 1000n);
  const to = Number(endNs / 1000n);
  const totals = {};
  const functions = new Map();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i += 1) {
    t += profile.timeDeltas[i];
    const next = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0;
    if (t < from || t > to) continue;
    const step = classify(profile.samples[i]);
    if (step === null || step === undefined) continue;
    totals[step] = (totals[step] ?? 0) + next;
    const frame = byId.get(profile.samples[i]).callFrame;
    const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${frame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + next);
  }
  if (process.env.BENCH_PROFILE_TOP !== undefined) {
    const sampled = [...functions.values()].reduce((a, b) => a + b, 0);
    const top = [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.BENCH_PROFILE_TOP));
    for (const [name, us] of top) console.log(`${((100 * us) / sampled).toFixed(1).padStart(5)} %  ${name}`);
  }
  return totals;
}

// Last, so that the rules above are initialised before the first profile is read.
await asLoadGenerator(async () => {
  const targets = process.argv.slice(2);
  for (const target of targets.length > 0 ? targets : ['ceiling', 'twin', 'jwt', 'cookie', 'login'])
    await profile(target);
});

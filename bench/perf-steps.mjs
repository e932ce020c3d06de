// Where a request's CPU goes, counting only time the server actually ran: `perf record -e
// cpu-clock -g` samples a thread only while it is on a CPU, so waiting for the core on a busy
// machine adds nothing (V8's `--cpu-prof` samples wall-clock time: a preempted thread's wait lands
// on whatever frame it was in, which inflates `writev` and `nextTick` there). Kernel frames are
// included, so the write syscall's share (loopback TCP delivery to the client charged to the writer)
// is measured instead of inferred.
//
//   node bench/perf-steps.mjs [ceiling|twin|jwt|cookie|database] ...
//
// Needs `perf` (linux-perf) and permission to profile the server (root, or
// kernel.perf_event_paranoid <= 1 for user frames only). Per target: starts the server pinned to
// cpu 0 with `--perf-basic-prof-only-functions` (JIT frames get names), warms it up, records
// BENCH_PERF_REQUESTS (40 000) requests from autocannon on cpu 1, and prints µs per request by
// step: each sample goes to the nearest frame, leaf first, that a rule below recognises. The
// absolute µs include perf's own overhead and the machine's load; compare shares, and targets
// measured in the same run. JIT inlining differs between processes (the ceiling's one route gets
// Node's response code inlined into Fastify's frames), so compare the Node + Fastify rows as a sum.
// BENCH_LOG=1 adds production's request log (to /dev/null).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { usersMeRequest } from './users-me-request.mjs';

const REQUESTS = Number(process.env.BENCH_PERF_REQUESTS ?? 40_000);
const HZ = 2999;
const BODY =
  '{"id":"00000000-0000-4000-8000-000000000000","email":"bench@example.com","full_name":null,"role":"user","is_active":true,"email_verified":false,"created_at":"2026-12-03T00:00:00.000Z"}';

const RULES = [
  ['GC', (s) => /Heap::|Scavenge|MarkCompact|MinorGC|ConcurrentMarking|GCTracer|Sweeper/.test(s)],
  [
    'kernel: write (writev, loopback delivery to the client)',
    (s) => /do_writev|__x64_sys_writev|__x64_sys_write\b/.test(s),
  ],
  ['kernel: read', (s) => /ksys_read|__x64_sys_read\b/.test(s)],
  ['kernel: epoll', (s) => /epoll/.test(s)],
  [
    'log',
    (s) =>
      /node_modules\/(pino|pino-std-serializers|@pinojs|sonic-boom)\/|request-log\.js|log-options\.js/.test(
        s,
      ),
  ],
  ['cookie plugin', (s) => /node_modules\/(@fastify\/cookie|cookie)\//.test(s)],
  [
    'auth',
    (s) =>
      /dist\/src\/(http\/(auth|caller|cookies|csrf-binding)|sessions|tokens|accounts\/(user-cache|scopes|roles)|resource-server)\b|node_modules\/jose\//.test(
        s,
      ),
  ],
  [
    'serialize',
    (s) =>
      /node_modules\/(fast-json-stringify|@fastify\/fast-json-stringify-compiler)\/|public-user\.js|validation\.js|JS:\*?\^?anonymous0? :/.test(
        s,
      ),
  ],
  ['security headers + CORS hook', (s) => /security-headers\.js|response-headers\.js|http\/cors\.js/.test(s)],
  [
    'Node: response headers (writeHead, validation)',
    (s) =>
      /JS:.(_storeHeader|processHeader|writeHead|setHeader|validateHeaderName|validateHeaderValue|checkInvalidHeaderChar|checkIsHttpToken|matchHeader|utcDate|_implicitHeader) /.test(
        s,
      ),
  ],
  [
    'Node: parse (llhttp, IncomingMessage, headers object)',
    (s) =>
      /llhttp|Parser::|JS:.(parserOnHeadersComplete|parserOnIncoming|parserOnMessageComplete|parserOnBody|execute|onParserExecute|onParserExecuteCommon|IncomingMessage|_addHeaderLines|_addHeaderLine|get) node:_http_(common|incoming|server)/.test(
        s,
      ),
  ],
  [
    'Fastify: routing, hooks, reply',
    (s) => /node_modules\/(fastify|find-my-way|avvio|fast-querystring|toad-cache)\//.test(s),
  ],
  [
    'Node: response, stream and socket plumbing',
    (s) =>
      /JS:.* node:(_http_|net|stream|events|internal\/(streams|http|timers|async_hooks|process\/task_queues|stream_base_commons))/.test(
        s,
      ),
  ],
];

function startServer(target, dir) {
  const script = target === 'ceiling' ? 'bench/ceiling.mjs' : 'bench/server.mjs';
  const node = [
    process.execPath,
    '--perf-basic-prof-only-functions',
    '--interpreted-frames-native-stack',
    script,
  ];
  const child = spawn('taskset', ['-c', '0', ...node], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      BENCH_BODY: BODY,
      BENCH_TOKEN_STRATEGY: target === 'database' ? 'database' : 'jwt',
      TMPDIR: dir,
    },
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve({ ...JSON.parse(line), child }));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

function load(target, server, amount) {
  return autocannon({ ...usersMeRequest(target, server), connections: 32, amount });
}

function stepsOf(file) {
  const out = spawnSync('perf', ['script', '-i', file, '-F', 'tid,ip,sym'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  }).stdout;
  const totals = new Map();
  let samples = 0;
  let stack = [];
  const flush = () => {
    if (stack.length === 0) return;
    samples += 1;
    let step;
    for (const frame of stack) {
      step = RULES.find(([, match]) => match(frame))?.[0];
      if (step !== undefined) break;
    }
    step ??= stack.some((f) => f.startsWith('JS:')) ? 'other' : 'native, no JS frame (libuv, V8 entry)';
    totals.set(step, (totals.get(step) ?? 0) + 1);
    stack = [];
  };
  for (const line of out.split('\n')) {
    if (line.trim() === '' || /^\s*\d+\s*$/.test(line)) {
      flush();
      continue;
    }
    stack.push(
      line
        .trim()
        .replace(/^[0-9a-f]+ /, '')
        .replace(/\+0x[0-9a-f]+/, ''),
    );
  }
  flush();
  return { samples, totals };
}

async function profile(target) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-perf-'));
  const server = await startServer(target, dir);
  await load(target, server, Math.floor(REQUESTS / 5));
  const data = join(dir, 'perf.data');
  const perf = spawn(
    'perf',
    ['record', '-q', '-e', 'cpu-clock', '-F', String(HZ), '-g', '-p', String(server.child.pid), '-o', data],
    {
      stdio: 'ignore',
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const result = await load(target, server, REQUESTS);
  await new Promise((resolve) => {
    perf.once('exit', resolve);
    perf.kill('SIGINT');
  });
  await new Promise((resolve) => {
    server.child.once('exit', resolve);
    server.child.kill('SIGTERM');
  });
  if (result.non2xx + result.errors > 0)
    console.warn(`${target}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  const { samples, totals } = stepsOf(data);
  // V8 writes the JIT symbol map where perf reads it, /tmp/perf-<pid>.map, whatever TMPDIR says.
  rmSync(`/tmp/perf-${server.child.pid}.map`, { force: true });
  const usPerSample = 1e6 / HZ;
  const answered = result['2xx'];
  const steps = Object.fromEntries(
    [...totals]
      .sort((a, b) => b[1] - a[1])
      .map(([step, n]) => [
        step,
        { us: +((n * usPerSample) / answered).toFixed(2), share: +(n / samples).toFixed(3) },
      ]),
  );
  console.log(
    JSON.stringify({
      target,
      requests: answered,
      on_cpu_us_per_request: +((samples * usPerSample) / answered).toFixed(1),
      steps,
    }),
  );
  rmSync(dir, { recursive: true, force: true });
}

if (spawnSync('perf', ['--version']).status !== 0)
  throw new Error('perf is not installed (apt-get install linux-perf)');
if (spawnSync('taskset', ['-V']).status !== 0) throw new Error('taskset is needed to pin the server');
if (process.env.BENCH_PINNED !== '1') {
  // The load generator (this process) runs on cpu 1, away from the server's cpu 0.
  const child = spawn('taskset', ['-c', '1', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  const targets = process.argv.slice(2);
  for (const target of targets.length > 0 ? targets : ['ceiling', 'twin', 'jwt', 'cookie'])
    await profile(target);
}

// `npm run bench`: GET /users/me against the bare-Fastify ceiling (bench/ceiling.mjs serving the
// same body), the unguarded twin, and the JWT, session-cookie and database-token strategies, in
// interleaved rounds so drifting machine load hits every variant alike. Servers run on cpu 0 and
// this load generator on cpu 1 (taskset), so they do not compete for a core. Prints each round's
// ratio to that round's ceiling and the medians. Then the SSE fan-out benchmark.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { loginRequests } from './login-requests.mjs';
import { threadCpu } from './thread-cpu.mjs';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? '0';
const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '1';
const pinned = spawnSync('taskset', ['-V']).status === 0;

// Re-run this script pinned to the load core once; the servers get the other core below.
if (pinned && process.env.BENCH_PINNED !== '1') {
  const child = spawn('taskset', ['-c', LOAD_CPU, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}

/** Starts `script` (pinned to the server core) and resolves with the JSON line it prints. */
async function startServer(script, env = {}) {
  const command = pinned ? 'taskset' : process.execPath;
  const args = pinned ? ['-c', SERVER_CPU, process.execPath, script] : [script];
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const info = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { ...info, child };
}

/**
 * One autocannon run against `url`, with the CPU both sides used while it ran: the server's (all
 * threads, /proc) per request and as a share of the wall time, and this load generator's share.
 * A server share well under 1 with the generator near 1 means the generator, not the server, set
 * the pace (the ratio to the ceiling then understates the ceiling); CPU µs per request hardly
 * moves with machine load, so its ratio is the steadier figure.
 */
async function measure(url, headers, duration, serverPid) {
  const serverBefore = serverPid === undefined ? undefined : threadCpu(serverPid);
  const loadBefore = process.cpuUsage();
  const wallBefore = process.hrtime.bigint();
  const result = await autocannon({ url, headers, connections: CONNECTIONS, duration });
  const wallUs = Number(process.hrtime.bigint() - wallBefore) / 1000;
  const load = process.cpuUsage(loadBefore);
  const bad = result.non2xx + result.errors;
  if (bad > 0) throw new Error(`${url}: ${bad} failed responses`);
  const measured = { rps: result.requests.average, p99ms: result.latency.p99 };
  if (serverBefore === undefined) return measured;
  const serverAfter = threadCpu(serverPid);
  const serverUs = serverAfter.main + serverAfter.others - serverBefore.main - serverBefore.others;
  return {
    ...measured,
    serverCpuUsPerRequest: serverUs / Math.max(1, result.requests.total),
    serverBusy: serverUs / wallUs,
    loadBusy: (load.user + load.system) / wallUs,
  };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs a bench script to completion (its output goes to ours). */
function runScript(script, env = {}) {
  const childEnv = { ...process.env };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[name];
    else childEnv[name] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: 'inherit', env: childEnv });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited with ${code}`))));
  });
}

/**
 * Logins/s (POST /token, password grant) against the issue-10 formula
 * 0.85 x (1000 / verify-ms) x min(PASSWORD_HASH_CONCURRENCY, cores the server has), with
 * verify-ms measured on the server core; then GET /users/me p99 during a second login flood.
 * The two are measured apart: a GET flood on the same core takes CPU from the logins, so logins/s
 * measured under it says how the core was shared, not what a login costs. The server's CPU time
 * per login (all threads, /proc) against one verification's CPU time gives hashing's share of a
 * login's CPU (target 85 %). The floods rotate over the server's BENCH_LOGIN_ACCOUNTS accounts, so
 * production's per-account success limit (60 per window) is never what is measured; every login
 * must answer 200.
 */
async function measureLogins(gatehouse) {
  const verifier = pinned
    ? spawn('taskset', ['-c', SERVER_CPU, process.execPath, 'bench/verify-ms.mjs'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : spawn(process.execPath, ['bench/verify-ms.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const verified = await new Promise((resolve) =>
    createInterface({ input: verifier.stdout }).once('line', (line) => resolve(JSON.parse(line))),
  );
  const verifyMs = verified.verify_ms;
  const cores = pinned ? 1 : availableParallelism();
  const formula = 0.85 * (1000 / verifyMs) * Math.min(gatehouse.hashConcurrency, cores);
  const emails = gatehouse.loginEmails;
  const capacity = emails.length * gatehouse.loginMaxSuccessesPerAccount;
  if (capacity < 2 * 2 * formula * DURATION)
    console.warn(
      `warning: ${emails.length} login accounts allow ${capacity} logins; raise BENCH_LOGIN_ACCOUNTS`,
    );
  const loginFlood = (statuses, duration = DURATION) =>
    autocannon({ ...loginRequests(gatehouse), duration }).on('response', (_client, statusCode) => {
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    });

  // A one-second warm-up, as the GET variants get: the first logins run V8's unoptimised tier
  // and compile the login code (≈ 0.4–0.5 ms per login on the bench machine), which is start-up
  // cost, not a login's. It does not count.
  await loginFlood({}, 1);
  const statuses = {};
  const before = threadCpu(gatehouse.child.pid);
  const logins = await loginFlood(statuses);
  const after = threadCpu(gatehouse.child.pid);
  const loginsPerSecond = logins['2xx'] / DURATION;
  const loginCpuMs = (after.main + after.others - before.main - before.others) / 1000 / logins['2xx'];

  const mixedStatuses = {};
  const [mixed, reads] = await Promise.all([
    loginFlood(mixedStatuses),
    autocannon({
      url: `${gatehouse.url}/users/me`,
      headers: { authorization: `Bearer ${gatehouse.token}` },
      connections: 4,
      duration: DURATION,
    }),
  ]);
  console.log(
    JSON.stringify({
      logins_per_s: +loginsPerSecond.toFixed(1),
      login_statuses: statuses,
      login_accounts: emails.length,
      verify_ms: verifyMs,
      hash_concurrency: gatehouse.hashConcurrency,
      server_cores: cores,
      formula_logins_per_s: +formula.toFixed(1),
      login_ratio_to_formula: +(loginsPerSecond / formula).toFixed(3),
      login_cpu_ms: +loginCpuMs.toFixed(2),
      login_main_thread_cpu_ms: +((after.main - before.main) / 1000 / logins['2xx']).toFixed(2),
      verify_cpu_ms: verified.verify_cpu_ms,
      hashing_share_of_login_cpu: +(verified.verify_cpu_ms / loginCpuMs).toFixed(3),
      get_p99_ms_during_login_flood: reads.latency.p99,
      get_non2xx_during_login_flood: reads.non2xx,
      logins_per_s_during_get_flood: +(mixed['2xx'] / DURATION).toFixed(1),
      login_statuses_during_get_flood: mixedStatuses,
      targets: {
        login_ratio_to_formula: 1,
        hashing_share_of_login_cpu: 0.85,
        get_p99_ms_during_login_flood: 25,
      },
      load_average_1m: +loadavg()[0].toFixed(2),
    }),
  );
}

async function main() {
  const servers = [];
  try {
    const gatehouse = await startServer('bench/server.mjs', {
      BENCH_LOGIN_ACCOUNTS: process.env.BENCH_LOGIN_ACCOUNTS ?? '50',
    });
    servers.push(gatehouse);
    const database = await startServer('bench/server.mjs', { BENCH_TOKEN_STRATEGY: 'database' });
    servers.push(database);
    const me = await fetch(`${gatehouse.url}/users/me`, {
      headers: { authorization: `Bearer ${gatehouse.token}` },
    });
    const ceiling = await startServer('bench/ceiling.mjs', { BENCH_BODY: await me.text() });
    servers.push(ceiling);

    const variants = [
      { name: 'ceiling (bare Fastify)', url: `${ceiling.url}/users/me`, headers: {}, server: ceiling },
      {
        name: 'unguarded twin',
        url: `${gatehouse.url}/bench/users/me-unguarded`,
        headers: {},
        server: gatehouse,
      },
      {
        name: 'JWT bearer',
        url: `${gatehouse.url}/users/me`,
        headers: { authorization: `Bearer ${gatehouse.token}` },
        server: gatehouse,
      },
      {
        name: 'session cookie',
        url: `${gatehouse.url}/users/me`,
        headers: { cookie: gatehouse.cookie },
        server: gatehouse,
      },
      {
        name: 'database token',
        url: `${database.url}/users/me`,
        headers: { authorization: `Bearer ${database.token}` },
        server: database,
      },
    ];
    // A short warm-up fills JIT and caches; it does not count.
    for (const v of variants) await measure(v.url, v.headers, 1);

    const results = new Map(variants.map((v) => [v.name, []]));
    const loads = [];
    for (let round = 1; round <= ROUNDS; round += 1) {
      loads.push(loadavg()[0]);
      for (const v of variants)
        results.get(v.name).push(await measure(v.url, v.headers, DURATION, v.server.child.pid));
    }
    const ceilingRuns = results.get(variants[0].name);
    const rows = variants.map((v) => {
      const runs = results.get(v.name);
      const ratios = runs.map((r, i) => r.rps / ceilingRuns[i].rps);
      const cpuRatios = runs.map((r, i) => ceilingRuns[i].serverCpuUsPerRequest / r.serverCpuUsPerRequest);
      return {
        variant: v.name,
        median_rps: Math.round(median(runs.map((r) => r.rps))),
        median_p99_ms: median(runs.map((r) => r.p99ms)),
        median_ratio: +median(ratios).toFixed(3),
        round_ratios: ratios.map((r) => r.toFixed(2)).join(' '),
        // Server CPU (all threads) per request, and the ceiling's over ours: the load-steady ratio.
        median_server_cpu_us: +median(runs.map((r) => r.serverCpuUsPerRequest)).toFixed(1),
        median_cpu_ratio: +median(cpuRatios).toFixed(3),
        // Share of the wall time each side's core was busy: near 1 is the side that set the pace.
        median_server_busy: +median(runs.map((r) => r.serverBusy)).toFixed(2),
        median_load_busy: +median(runs.map((r) => r.loadBusy)).toFixed(2),
      };
    });
    console.table(rows);
    const ratio = (name) => rows.find((r) => r.variant === name).median_ratio;
    const cpuRatio = (name) => rows.find((r) => r.variant === name).median_cpu_ratio;
    console.log(
      JSON.stringify({
        rounds: ROUNDS,
        seconds: DURATION,
        connections: CONNECTIONS,
        pinned,
        load_average_1m: loads.map((l) => +l.toFixed(2)),
        jwt_ratio: ratio('JWT bearer'),
        cookie_ratio: ratio('session cookie'),
        database_ratio: ratio('database token'),
        guard_ratio_jwt_vs_twin: +(ratio('JWT bearer') / ratio('unguarded twin')).toFixed(3),
        cpu_ratios: {
          twin: cpuRatio('unguarded twin'),
          jwt: cpuRatio('JWT bearer'),
          cookie: cpuRatio('session cookie'),
          database: cpuRatio('database token'),
        },
        targets: { jwt_ratio: 0.6, cookie_ratio: 0.55, database_ratio: 0.3 },
      }),
    );
    if (process.env.BENCH_SKIP_LOGIN !== '1') await measureLogins(gatehouse);
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
  }
  if (process.env.BENCH_SKIP_FOOTPRINT !== '1')
    await runScript('bench/footprint.mjs', { BENCH_SERVER_CPU: pinned ? SERVER_CPU : undefined });

  if (existsSync('bench/sse-fanout.mjs') && process.env.BENCH_SKIP_SSE !== '1') {
    await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['bench/sse-fanout.mjs'], { stdio: 'inherit' });
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`sse-fanout exited with ${code}`)),
      );
    });
  }
}

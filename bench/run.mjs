// `npm run bench`: GET /users/me against the bare-Fastify ceiling (bench/ceiling.mjs serving the
// same body), the same app sending Gatehouse's response headers too, the unguarded twin, and the JWT, session-cookie and database-token strategies, in
// interleaved rounds so drifting machine load hits every variant alike. Servers run on cpu 0 and
// this load generator on cpu 1 (taskset), so they do not compete for a core. Prints each round's
// ratio to that round's ceiling and the medians. Then the SSE fan-out benchmark.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { loginRequests } from './login-requests.mjs';
import { asLoadGenerator, onServerCore, pinned, SERVER_CPU } from './pinning.mjs';
import { startNodeFlags } from './start-flags.mjs';
import { threadCpu } from './thread-cpu.mjs';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
// The GET rounds: many short slices rather than a few long ones. This machine's speed moves by up
// to 2x from one 2-second slice to the next (the bare ceiling 30 000-62 000 req/s within a minute,
// bench/README.md "Issue 10, fourteenth round"), so the median of 5 five-second ratios swung by
// ±0.15 between runs of the same code; the median of 20 two-second ones is the steadier estimate
// of the same ratio, and the printed 95 % interval (order statistics) says how steady it was.
const GET_SECONDS = Number(process.env.BENCH_GET_SECONDS ?? 2);
// Logins before the counted flood: V8 keeps tiering the login's code up over its first few
// thousand logins (a login runs each of its functions once, so at 50-90 logins/s tier-up takes
// tens of seconds): in 5-s windows of one server, V8's compiler threads cost 0.3-0.4 ms a login at
// 15 s and 0.04-0.08 ms from about 45 s on, and hashing's share rose from 0.83 to a plateau of
// 0.86 (bench/README.md, "Issue 10: the login's warm-up"). Start-up cost, not a login's: a
// 15-s warm-up measured the server while it was still compiling.
const LOGIN_WARMUP_SECONDS = Number(process.env.BENCH_LOGIN_WARMUP_SECONDS ?? 60);
// Counted login floods, each between two lone verifications: many short rounds rather than a few
// long ones, for the reason the GET rounds are (a lone verification moved by up to 40 % between two
// rounds a few seconds apart, 7.3 against 12.8 ms, so 5 rounds' median ratio moved by ±0.04 from
// one run to the next; bench/README.md, "Issue 10: the login ratio's interval"). The median's 95 %
// interval is printed with it.
const LOGIN_ROUNDS = Number(process.env.BENCH_LOGIN_ROUNDS ?? 15);
const LOGIN_ROUND_SECONDS = Number(process.env.BENCH_LOGIN_ROUND_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
/** Headers Node or the ceiling set themselves on every answer: not Gatehouse's additions. */
const OWN_HEADERS = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive']);

// This script runs pinned to the load core; the servers get the other core below.
await asLoadGenerator(main);

/**
 * The login server's Node flags: `npm start`'s, so the login measurement runs the server as it is
 * deployed. `BENCH_LOGIN_NODE_FLAGS` replaces them (e.g. "" for Node's defaults, as the GET
 * variants run) to compare.
 */
function loginNodeFlags() {
  return startNodeFlags(process.env.BENCH_LOGIN_NODE_FLAGS);
}

/** Starts `script` (pinned to the server core) and resolves with the JSON line it prints. */
async function startServer(script, env = {}, nodeFlags = []) {
  const node = [process.execPath, ...nodeFlags, script];
  const [command, args] = onServerCore(node);
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

/**
 * The headers Gatehouse adds to its `GET /users/me` answer, as sent (order and case from the raw
 * response; `fetch` would sort and merge them).
 */
function addedHeaders(url, token) {
  return new Promise((resolve, reject) => {
    get(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      const pairs = [];
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        if (!OWN_HEADERS.has(res.rawHeaders[i].toLowerCase()))
          pairs.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
      }
      resolve(pairs);
    }).on('error', reject);
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * A distribution-free 95 % interval for the median of `values`: the k-th smallest and k-th largest
 * value, with k the largest rank whose binomial tail P(Bin(n, 1/2) < k) stays within 2.5 % (for 20
 * rounds, the 6th and the 15th: 95.9 %). Assumes nothing about the ratios' distribution; rounds
 * close in time are not fully independent on a drifting machine, so read it as a lower bound on
 * the uncertainty. Undefined ends (fewer than 6 rounds) fall back to the extremes.
 */
function medianInterval(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  let below = 0;
  let choose = 1;
  let k = 0;
  for (let i = 0; i < n; i += 1) {
    below += choose / 2 ** n;
    if (below > 0.025) break;
    k = i + 1;
    choose = (choose * (n - i)) / (i + 1);
  }
  const rank = Math.max(1, k);
  return [sorted[rank - 1], sorted[n - rank]];
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

/** Sends SIGTERM to a server and resolves once it has exited. */
function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** One argon2id verification alone on the server core (`verify-ms.mjs`): its time and CPU. */
async function verifyAlone() {
  const node = [process.execPath, 'bench/verify-ms.mjs'];
  const [command, args] = onServerCore(node);
  const verifier = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) =>
    createInterface({ input: verifier.stdout }).once('line', (line) => resolve(JSON.parse(line))),
  );
}

/**
 * Logins/s (POST /token, password grant) against the issue-10 formula
 * 0.85 x (1000 / verify-ms) x min(PASSWORD_HASH_CONCURRENCY, cores the server has), with
 * verify-ms measured on the server core; then GET /users/me p99 during a second login flood.
 * The two are measured apart: a GET flood on the same core takes CPU from the logins, so logins/s
 * measured under it says how the core was shared, not what a login costs. The login server is
 * its own process, started with `npm start`'s Node flags (see loginNodeFlags).
 *
 * Hashing's share of a login's CPU, two ways (bench/README.md, "Issue 10, sixth round"):
 * - in situ: the CPU of the server's libuv pool threads (where argon2 runs, and nothing else
 *   during a login) over the whole process's CPU, both over the same flood. This is what "hashing
 *   is ≥ 85 % of a login's CPU" says: the CPU the logins spent hashing, over the CPU they spent.
 * - against a lone verification: one verification's CPU measured alone (`verify-ms.mjs`, before
 *   and after the flood, averaged) over the login's CPU. Stricter: what a hash loses to sharing
 *   the core with the event loop (caches, switches) counts as not hashing; and noisier, since the
 *   two figures come from different moments.
 * The floods rotate over the server's BENCH_LOGIN_ACCOUNTS accounts, so production's per-account
 * success limit (60 per window) is never what is measured; every login must answer 200.
 */
async function measureLogins() {
  const gatehouse = await startServer(
    'bench/server.mjs',
    { BENCH_LOGIN_ACCOUNTS: process.env.BENCH_LOGIN_ACCOUNTS ?? '500' },
    loginNodeFlags(),
  );
  try {
    const verifiedBefore = await verifyAlone();
    const cores = pinned ? 1 : availableParallelism();
    const formulaFor = (verifyMs) => 0.85 * (1000 / verifyMs) * Math.min(gatehouse.hashConcurrency, cores);
    const formulaBefore = formulaFor(verifiedBefore.verify_ms);
    const emails = gatehouse.loginEmails;
    const capacity = emails.length * gatehouse.loginMaxSuccessesPerAccount;
    if (capacity < 2 * formulaBefore * (LOGIN_ROUNDS * LOGIN_ROUND_SECONDS + DURATION + LOGIN_WARMUP_SECONDS))
      console.warn(
        `warning: ${emails.length} login accounts allow ${capacity} logins; raise BENCH_LOGIN_ACCOUNTS`,
      );
    const loginFlood = (statuses, duration = LOGIN_ROUND_SECONDS) =>
      autocannon({ ...loginRequests(gatehouse), duration }).on('response', (_client, statusCode) => {
        statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      });

    // A warm-up, as the GET variants get (LOGIN_WARMUP_SECONDS): it does not count.
    await loginFlood({}, LOGIN_WARMUP_SECONDS);
    // Then LOGIN_ROUNDS counted floods, each bracketed by lone verifications: this machine's
    // speed wanders by up to 25 % within a minute (a verification 14.9 ms before one flood and
    // 12.0 ms after it), so each round's ratio takes the formula from the verifications on either
    // side of that round, and the medians over rounds are what is reported.
    const statuses = {};
    const pool = gatehouse.poolThreads;
    const verified = [verifiedBefore];
    const rounds = [];
    for (let round = 0; round < LOGIN_ROUNDS; round += 1) {
      if (round > 0) verified.push(await verifyAlone());
      const before = threadCpu(gatehouse.child.pid, pool);
      const logins = await loginFlood(statuses);
      const after = threadCpu(gatehouse.child.pid, pool);
      const n = logins['2xx'];
      const perLoginMs = (us) => us / 1000 / n;
      rounds.push({
        loginsPerSecond: n / LOGIN_ROUND_SECONDS,
        loginCpuMs: perLoginMs(after.main + after.others - before.main - before.others),
        mainMs: perLoginMs(after.main - before.main),
        mainSystemMs: perLoginMs(after.mainSystem - before.mainSystem),
        hashCpuMs: perLoginMs(after.pool - before.pool),
        hashSystemMs: perLoginMs(after.poolSystem - before.poolSystem),
        otherMs: perLoginMs(after.others - after.pool - before.others + before.pool),
      });
    }
    verified.push(await verifyAlone());
    rounds.forEach((round, i) => {
      // The machine's speed wanders between runs (one verification 9.7–15.6 ms within minutes on
      // an idle bench machine): each round's formula takes the mean of the verifications on
      // either side of it.
      round.verifyMs = (verified[i].verify_ms + verified[i + 1].verify_ms) / 2;
      round.verifyCpuMs = (verified[i].verify_cpu_ms + verified[i + 1].verify_cpu_ms) / 2;
      round.ratio = round.loginsPerSecond / formulaFor(round.verifyMs);
      round.shareInSitu = round.hashCpuMs / round.loginCpuMs;
      round.shareVsLoneVerify = round.verifyCpuMs / round.loginCpuMs;
    });
    const medianOf = (key, digits) => +median(rounds.map((round) => round[key])).toFixed(digits);
    const perRound = (key, digits) => rounds.map((round) => +round[key].toFixed(digits));
    const intervalOf = (key, digits) =>
      medianInterval(rounds.map((round) => round[key])).map((value) => +value.toFixed(digits));

    const mixedStatuses = {};
    const [mixed, reads] = await Promise.all([
      loginFlood(mixedStatuses, DURATION),
      autocannon({
        url: `${gatehouse.url}/users/me`,
        headers: { authorization: `Bearer ${gatehouse.token}` },
        connections: 4,
        duration: DURATION,
      }),
    ]);
    console.log(
      JSON.stringify({
        logins_per_s: medianOf('loginsPerSecond', 1),
        login_statuses: statuses,
        login_accounts: emails.length,
        login_server_node_flags: gatehouse.nodeFlags.join(' '),
        login_warmup_s: LOGIN_WARMUP_SECONDS,
        login_rounds: LOGIN_ROUNDS,
        login_round_seconds: LOGIN_ROUND_SECONDS,
        verify_ms: medianOf('verifyMs', 2),
        verify_ms_each: verified.map((v) => v.verify_ms),
        hash_concurrency: gatehouse.hashConcurrency,
        server_cores: cores,
        formula_logins_per_s: +formulaFor(median(rounds.map((round) => round.verifyMs))).toFixed(1),
        // Medians over the rounds, each round's ratio against its own formula.
        login_ratio_to_formula: medianOf('ratio', 3),
        login_ratio_ci95: intervalOf('ratio', 3),
        login_ratio_each_round: perRound('ratio', 3),
        login_cpu_ms: medianOf('loginCpuMs', 2),
        login_main_thread_cpu_ms: medianOf('mainMs', 2),
        login_main_thread_system_cpu_ms: medianOf('mainSystemMs', 2),
        login_hash_threads_cpu_ms: medianOf('hashCpuMs', 2),
        login_hash_threads_system_cpu_ms: medianOf('hashSystemMs', 2),
        login_other_threads_cpu_ms: medianOf('otherMs', 2),
        // The wording: the CPU the logins spent hashing (libuv pool) over all they spent.
        hashing_share_in_situ: medianOf('shareInSitu', 3),
        hashing_share_in_situ_ci95: intervalOf('shareInSitu', 3),
        hashing_share_in_situ_each_round: perRound('shareInSitu', 3),
        verify_cpu_ms_alone: verified.map((v) => v.verify_cpu_ms),
        // Stricter: one verification measured alone over a login's CPU (the figure of earlier runs).
        hashing_share_vs_lone_verify: medianOf('shareVsLoneVerify', 3),
        get_p99_ms_during_login_flood: reads.latency.p99,
        get_non2xx_during_login_flood: reads.non2xx,
        logins_per_s_during_get_flood: +(mixed['2xx'] / DURATION).toFixed(1),
        login_statuses_during_get_flood: mixedStatuses,
        targets: {
          login_ratio_to_formula: 1,
          hashing_share_in_situ: 0.85,
          hashing_share_vs_lone_verify: 0.85,
          get_p99_ms_during_login_flood: 25,
        },
        load_average_1m: +loadavg()[0].toFixed(2),
      }),
    );
  } finally {
    await stopServer(gatehouse.child);
  }
}

async function main() {
  if (process.env.BENCH_SKIP_GET !== '1') await measureReads();
  // After the GET servers have gone: the login server has the core to itself.
  if (process.env.BENCH_SKIP_LOGIN !== '1') await measureLogins();
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

/** The GET /users/me variants in interleaved rounds, against the ceiling. */
async function measureReads() {
  const servers = [];
  try {
    // BENCH_GET_NODE_FLAGS: Node flags for the Gatehouse servers of these rounds (none by default,
    // as the ceiling runs), to compare a flag of npm start's on the GET path.
    const getFlags = (process.env.BENCH_GET_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
    const gatehouse = await startServer('bench/server.mjs', {}, getFlags);
    servers.push(gatehouse);
    const database = await startServer('bench/server.mjs', { BENCH_TOKEN_STRATEGY: 'database' }, getFlags);
    servers.push(database);
    const me = await fetch(`${gatehouse.url}/users/me`, {
      headers: { authorization: `Bearer ${gatehouse.token}` },
    });
    const body = await me.text();
    const ceiling = await startServer('bench/ceiling.mjs', { BENCH_BODY: body });
    servers.push(ceiling);
    // The headers ceiling: the bare app plus the headers Gatehouse adds to this answer (security
    // headers, Vary, Cache-Control), in the order Gatehouse sends them. Not a target: it splits the
    // gap to the bare ceiling into what those headers cost any Fastify app and what the rest costs.
    const headersCeiling = await startServer('bench/ceiling.mjs', {
      BENCH_BODY: body,
      BENCH_HEADERS: JSON.stringify(await addedHeaders(`${gatehouse.url}/users/me`, gatehouse.token)),
    });
    servers.push(headersCeiling);

    const variants = [
      { name: 'ceiling (bare Fastify)', url: `${ceiling.url}/users/me`, headers: {}, server: ceiling },
      {
        name: 'headers ceiling',
        url: `${headersCeiling.url}/users/me`,
        headers: {},
        server: headersCeiling,
      },
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
    for (const v of variants) await measure(v.url, v.headers, GET_SECONDS);

    const results = new Map(variants.map((v) => [v.name, []]));
    const loads = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      loads.push(loadavg()[0]);
      // Each round starts one variant later, so no variant always runs first after the ceiling
      // or right after another server's burst (whose GC and timers then run on the shared core).
      for (let i = 0; i < variants.length; i += 1) {
        const v = variants[(round + i) % variants.length];
        results.get(v.name).push(await measure(v.url, v.headers, GET_SECONDS, v.server.child.pid));
      }
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
        ratio_ci95: medianInterval(ratios).map((r) => +r.toFixed(3)),
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
    const interval = (name) => rows.find((r) => r.variant === name).ratio_ci95;
    const cpuRatio = (name) => rows.find((r) => r.variant === name).median_cpu_ratio;
    console.log(
      JSON.stringify({
        rounds: ROUNDS,
        seconds: GET_SECONDS,
        connections: CONNECTIONS,
        pinned,
        load_average_1m: loads.map((l) => +l.toFixed(2)),
        jwt_ratio: ratio('JWT bearer'),
        cookie_ratio: ratio('session cookie'),
        database_ratio: ratio('database token'),
        // 95 % intervals of those medians (order statistics): a target is met with confidence when
        // the interval's low end is over it, and the run says nothing either way when it straddles it.
        ci95: {
          jwt: interval('JWT bearer'),
          cookie: interval('session cookie'),
          database: interval('database token'),
        },
        guard_ratio_jwt_vs_twin: +(ratio('JWT bearer') / ratio('unguarded twin')).toFixed(3),
        // What the response headers alone leave of the bare ceiling, and each variant against the
        // ceiling that sends them too (not targets: where the gap to the bare ceiling is).
        headers_ceiling_ratio: ratio('headers ceiling'),
        vs_headers_ceiling: {
          twin: +(ratio('unguarded twin') / ratio('headers ceiling')).toFixed(3),
          jwt: +(ratio('JWT bearer') / ratio('headers ceiling')).toFixed(3),
          cookie: +(ratio('session cookie') / ratio('headers ceiling')).toFixed(3),
          database: +(ratio('database token') / ratio('headers ceiling')).toFixed(3),
        },
        cpu_ratios: {
          twin: cpuRatio('unguarded twin'),
          jwt: cpuRatio('JWT bearer'),
          cookie: cpuRatio('session cookie'),
          database: cpuRatio('database token'),
        },
        targets: { jwt_ratio: 0.6, cookie_ratio: 0.55, database_ratio: 0.3 },
      }),
    );
  } finally {
    // Waited for, so the login server that starts next has the core to itself.
    await Promise.all(servers.map((s) => stopServer(s.child)));
  }
}

// SSE fan-out benchmark (issue #5, item 13), run by `npm run bench` or on its own:
//
//   npx tsc -p tsconfig.build.json && node bench/sse-fanout.mjs
//
// 1. One room, SUBSCRIBERS players (bearer transport) each following the room's event stream; a
//    player rolls ROLLS times, and for each roll we time from sending POST /rooms/{code}/rolls to
//    the moment the last subscriber has received that roll's event. Prints p50/p99 of that time.
// 2. IDLE_STREAMS idle streams open at once: prints the server's resident memory.
//
// The server runs in a child process (this same file with `--server`), so its RSS, read from
// /proc/<pid>/status, excludes the clients, and the clients do not share its event loop. The
// clients are raw `http` requests (no EventSource). Needs a file-descriptor limit above
// IDLE_STREAMS in both processes (`ulimit -n`).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const ROLLS = Number(process.env.BENCH_ROLLS ?? 50);
const WARMUP_ROLLS = 5;
const IDLE_STREAMS = Number(process.env.BENCH_IDLE_STREAMS ?? 10_000);
const TARGETS = { p99_ms: 50, rss_mb: 400 };
const here = fileURLToPath(import.meta.url);
// The server on one core and the 1 000 clients on the other, as `run.mjs` pins its GET and login
// stages. Before, the server inherited this process's affinity: under `npm run bench` (pinned to
// the load core) the server and every client shared that one core, and the fan-out time measured
// how the core was shared between them (66–77 ms p99 in full runs, 31–47 ms when run unpinned).
const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? '0';
const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '1';
const pinned = process.argv[2] !== '--server' && spawnSync('taskset', ['-V']).status === 0;

if (process.argv[2] === '--server') await runServer();
else if (pinned && process.env.BENCH_SSE_PINNED !== '1') {
  // Re-run pinned to the load core (run.mjs already is; `node bench/sse-fanout.mjs` alone is not).
  const child = spawn('taskset', ['-c', LOAD_CPU, process.execPath, here], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_SSE_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
} else await runBenchmark();

/** The server side: a Gatehouse server with one host account and one room. */
async function runServer() {
  const { buildServer } = await import('../dist/src/server.js');
  const { testConfig } = await import('../dist/src/testing.js');
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sse-bench-'));
  const config = testConfig({
    dataDir: dir,
    databaseUrl: `sqlite:${join(dir, 'bench.db')}`,
    cookieSecure: false,
    logLevel: 'silent',
    roomJoinsPerMinute: 10_000,
    // The measure is subscribers, not players: let each player hold several idle streams.
    maxStreamsPerPlayer: 100,
    // Every subscriber connects from 127.0.0.1 (100 000 is MAX_STREAMS_PER_IP's ceiling), and opens
    // its stream within seconds: lift the open rate limits and the server-wide stream cap
    // (MAX_STREAMS_TOTAL, 5 000 by default) above the idle-stream phase's 10 000.
    maxStreamsPerIp: 100_000,
    maxStreamsTotal: 1_000_000,
    roomStreamOpensPerMinute: 100_000,
    roomStreamOpensPerMinutePerIp: 1_000_000,
    // One room holds every subscriber here: lift the per-room player cap (MAX_PLAYERS_PER_ROOM),
    // and the per-network one (MAX_PLAYERS_PER_ROOM_PER_NETWORK, 25 by default since red-team
    // 2026-12g D4): every player joins from 127.0.0.1, and without it the stage stopped at 409.
    maxPlayersPerRoom: 10_000,
    maxPlayersPerRoomPerNetwork: 10_000,
  });
  const app = await buildServer(config, { logger: false, webUi: false });
  const password = 'correct horse battery';
  const user = await app.gatehouse.users.register({ email: 'host@example.com', password });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${app.server.address().port}`;
  const tokenResponse = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: user.email, password }),
  });
  const { access_token: hostToken } = await tokenResponse.json();
  const roomResponse = await fetch(`${url}/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hostToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Fan-out bench' }),
  });
  const { code } = await roomResponse.json();
  const stop = async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  console.log(JSON.stringify({ url, code, pid: process.pid }));
}

/** The client side: starts the server, opens the streams, measures. */
async function runBenchmark() {
  if (!existsSync(new URL('../dist/src/server.js', import.meta.url))) {
    console.error('dist/ is missing: run `npx tsc -p tsconfig.build.json` first.');
    process.exit(1);
  }
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
  if (limit < IDLE_STREAMS + 1000) {
    console.error(`ulimit -n is ${limit}: raise it above ${IDLE_STREAMS + 1000} (e.g. \`ulimit -n 65536\`).`);
    process.exit(1);
  }

  const [command, ...args] = pinned
    ? ['taskset', '-c', SERVER_CPU, process.execPath, here, '--server']
    : [process.execPath, here, '--server'];
  const server = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const killServer = () => {
    if (server.exitCode === null) server.kill('SIGTERM');
  };
  process.once('exit', killServer);
  const streams = [];
  try {
    const info = await new Promise((resolve, reject) => {
      createInterface({ input: server.stdout }).once('line', (line) => resolve(JSON.parse(line)));
      server.once('exit', (exitCode) => reject(new Error(`bench server exited with ${exitCode}`)));
    });
    const { url, code, pid } = info;
    const rss = () => {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    };

    console.error(`joining ${SUBSCRIBERS} players…`);
    const players = [];
    for (let i = 0; i < SUBSCRIBERS; i += 50) {
      const batch = [];
      for (let j = i; j < Math.min(i + 50, SUBSCRIBERS); j++) batch.push(join1(url, code, `Player ${j}`));
      players.push(...(await Promise.all(batch)));
    }
    const rssBefore = rss();

    // Arrivals of each roll event id: how many subscribers have it, and when the last one did.
    const arrivals = new Map();
    const onRoll = (id) => {
      let entry = arrivals.get(id);
      if (entry === undefined) {
        entry = { count: 0, lastAt: 0, done: undefined };
        arrivals.set(id, entry);
      }
      entry.count += 1;
      if (entry.count === SUBSCRIBERS) {
        entry.lastAt = performance.now();
        entry.done?.();
      }
    };

    console.error(`opening ${SUBSCRIBERS} event streams…`);
    for (let i = 0; i < SUBSCRIBERS; i += 200) {
      const batch = [];
      for (let j = i; j < Math.min(i + 200, SUBSCRIBERS); j++)
        batch.push(openStream(url, code, players[j].token, onRoll));
      streams.push(...(await Promise.all(batch)));
    }

    const roller = players[0];
    const timings = [];
    console.error(`rolling ${WARMUP_ROLLS} + ${ROLLS} times…`);
    for (let i = 0; i < WARMUP_ROLLS + ROLLS; i++) {
      const startedAt = performance.now();
      const response = await fetch(`${url}/rooms/${code}/rolls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${roller.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ notation: '2d20kh1+5' }),
      });
      if (response.status !== 201)
        throw new Error(`roll failed: ${response.status} ${await response.text()}`);
      const { id } = await response.json();
      let entry = arrivals.get(String(id));
      if (entry === undefined) {
        entry = { count: 0, lastAt: 0, done: undefined };
        arrivals.set(String(id), entry);
      }
      if (entry.count < SUBSCRIBERS) {
        await withTimeout(
          new Promise((resolve) => {
            entry.done = resolve;
          }),
          10_000,
          `roll ${id} reached ${entry.count}/${SUBSCRIBERS} subscribers`,
        );
      }
      if (i >= WARMUP_ROLLS) timings.push(entry.lastAt - startedAt);
      await sleep(20);
    }
    timings.sort((a, b) => a - b);
    const fanout = {
      subscribers: SUBSCRIBERS,
      rolls: ROLLS,
      p50_ms: round(percentile(timings, 50)),
      p99_ms: round(percentile(timings, 99)),
      max_ms: round(timings.at(-1)),
    };
    console.error(
      `fan-out to ${SUBSCRIBERS}: p50 ${fanout.p50_ms} ms, p99 ${fanout.p99_ms} ms, max ${fanout.max_ms} ms`,
    );
    const rssWithSubscribers = rss();

    // Idle streams: the players above each open more streams until IDLE_STREAMS are open in all.
    console.error(`opening ${IDLE_STREAMS - streams.length} more streams (${IDLE_STREAMS} idle in all)…`);
    let next = 0;
    while (streams.length < IDLE_STREAMS) {
      const batch = [];
      for (let j = 0; j < 250 && streams.length + batch.length < IDLE_STREAMS; j++) {
        batch.push(openStream(url, code, players[next % players.length].token, () => {}));
        next += 1;
      }
      streams.push(...(await Promise.all(batch)));
    }
    // Let allocation settle (and a GC or two happen) before reading RSS.
    await sleep(3000);
    const rssIdle = rss();
    console.error(
      `server RSS: ${rssBefore} MB before streams, ${rssWithSubscribers} MB with ${SUBSCRIBERS}, ${rssIdle} MB with ${streams.length} idle streams`,
    );

    const summary = {
      bench: 'sse-fanout',
      ...fanout,
      idle_streams: streams.length,
      rss_mb_before_streams: rssBefore,
      rss_mb_with_subscribers: rssWithSubscribers,
      rss_mb_idle_streams: rssIdle,
      targets: TARGETS,
      meets_targets: fanout.p99_ms <= TARGETS.p99_ms && rssIdle <= TARGETS.rss_mb,
    };
    console.log(JSON.stringify(summary));
  } finally {
    for (const stream of streams) stream.destroy();
    killServer();
    if (server.exitCode === null) await new Promise((resolve) => server.once('exit', resolve));
  }
}

/** Joins the room with bearer transport; returns the player's token. */
async function join1(url, code, name) {
  const response = await fetch(`${url}/rooms/${code}/join`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ player: name, transport: 'bearer' }),
  });
  if (response.status !== 201) throw new Error(`join failed: ${response.status} ${await response.text()}`);
  const body = await response.json();
  return { id: body.player.id, token: body.access_token };
}

/**
 * Opens one event stream; resolves once the server has subscribed it (its first frame, `retry:`,
 * is written after the subscription). Calls `onRoll(id)` for every `roll` event.
 */
function openStream(url, code, token, onRoll) {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/rooms/${code}/events`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
      agent: false,
    });
    req.once('error', reject);
    req.once('response', (response) => {
      if (response.statusCode !== 200) {
        reject(new Error(`stream refused: ${response.statusCode}`));
        response.resume();
        return;
      }
      response.setEncoding('utf8');
      let buffer = '';
      let subscribed = false;
      response.on('data', (chunk) => {
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!subscribed && frame.startsWith('retry:')) {
            subscribed = true;
            resolve(req);
          } else if (frame.includes('\nevent: roll\n')) {
            onRoll(frame.slice(4, frame.indexOf('\n')));
          }
          end = buffer.indexOf('\n\n');
        }
      });
      response.once('error', () => {});
    });
    req.end();
  });
}

function percentile(sorted, p) {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

function round(ms) {
  return Math.round(ms * 100) / 100;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

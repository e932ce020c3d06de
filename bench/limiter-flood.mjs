// `node bench/limiter-flood.mjs` (after `npm run build`; not part of `npm test`): issue 8's flood.
// 100 000 failed logins with distinct made-up usernames from one IP against a built server, while
// a prober measures GET /healthz latency; then reports /healthz p99 (target < 50 ms) and the
// server's RSS growth (target < 20 MB). Every username opens a limiter key, so this shows the
// counter store stays bounded (RATE_LIMIT_MAX_KEYS) and O(1) per request whatever it holds.
// FLOOD_REQUESTS, FLOOD_CONCURRENCY and REDIS_URL (shared counters instead of local) are optional.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const REQUESTS = Number(process.env.FLOOD_REQUESTS ?? 100_000);
const CONCURRENCY = Number(process.env.FLOOD_CONCURRENCY ?? 32);
const PROBE_EVERY_MS = 10;

const serverScript = `
  import { mkdtempSync } from 'node:fs';
  import { tmpdir } from 'node:os';
  import { join } from 'node:path';
  import { buildServer } from './dist/src/server.js';
  import { testConfig } from './dist/src/testing.js';
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-flood-'));
  const config = testConfig({
    dataDir: dir,
    databaseUrl: 'sqlite:' + join(dir, 'flood.db'),
    redisUrl: process.env.REDIS_URL || undefined,
  });
  const app = await buildServer(config, { logger: false, webUi: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(JSON.stringify({ url: 'http://127.0.0.1:' + app.server.address().port }) + '\\n');
  process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
`;
const server = spawn(process.execPath, ['--input-type=module', '-e', serverScript], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const { url } = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout }).once('line', (line) => resolve(JSON.parse(line)));
  server.once('exit', (code) => reject(new Error(`flood server exited with ${code}`)));
});

/** The server's resident set in MB, from /proc (Linux). */
const rssMb = () => {
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

/** Probes GET /healthz one request at a time until `done()`, returning the latencies in ms. */
async function probe(done) {
  const latencies = [];
  while (!done()) {
    const start = performance.now();
    const response = await fetch(`${url}/healthz`);
    await response.arrayBuffer();
    latencies.push(performance.now() - start);
    await sleep(PROBE_EVERY_MS);
  }
  return latencies;
}

const statuses = new Map();
let sent = 0;
async function flood() {
  while (sent < REQUESTS) {
    const i = sent++;
    const response = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: `flood-${i}-${Math.random().toString(36).slice(2)}@example.com`,
        password: 'not the password',
      }),
    });
    await response.arrayBuffer();
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  }
}

try {
  // Warm-up: JIT, connection pools, heap sizing, with a small flood of its own; then the baseline,
  // so the growth measured below is the state the flood leaves, not the server's first allocations.
  let warm = false;
  const warmProbe = probe(() => warm);
  const total = REQUESTS;
  sent = total - Math.min(5000, total);
  await Promise.all(Array.from({ length: CONCURRENCY }, flood));
  warm = true;
  const baseline = await warmProbe;
  sent = 0;
  statuses.clear();
  const rssBefore = rssMb();
  const started = performance.now();
  let flooding = true;
  const during = probe(() => !flooding);
  await Promise.all(Array.from({ length: CONCURRENCY }, flood));
  flooding = false;
  const latencies = await during;
  const seconds = (performance.now() - started) / 1000;
  const rssAfter = rssMb();
  const p99 = percentile(latencies, 99);
  const growth = rssAfter - rssBefore;
  console.table([
    { measure: 'failed logins sent', value: REQUESTS },
    { measure: 'statuses', value: JSON.stringify(Object.fromEntries(statuses)) },
    { measure: 'requests/s', value: Math.round(REQUESTS / seconds) },
    { measure: '/healthz p99 before (ms)', value: +percentile(baseline, 99).toFixed(2) },
    { measure: '/healthz p50 during (ms)', value: +percentile(latencies, 50).toFixed(2) },
    { measure: '/healthz p99 during (ms)', value: +p99.toFixed(2) },
    { measure: 'server RSS before (MB)', value: +rssBefore.toFixed(1) },
    { measure: 'server RSS after (MB)', value: +rssAfter.toFixed(1) },
    { measure: 'RSS growth (MB)', value: +growth.toFixed(1) },
  ]);
  console.log(
    `targets: p99 < 50 ms ${p99 < 50 ? 'met' : 'MISSED'}; growth < 20 MB ${growth < 20 ? 'met' : 'MISSED'}`,
  );
} finally {
  server.kill('SIGTERM');
}

// `npm run bench`: throughput of guarded routes against their unguarded twin, in one run on one
// machine, so the ratio cancels out how fast the machine is. Then the SSE fan-out benchmark.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);

const server = spawn(process.execPath, ['bench/server.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
const info = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout }).once('line', (line) => resolve(JSON.parse(line)));
  server.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
});

async function measure(title, path, headers = {}) {
  // A short warm-up fills JIT and caches; only the second run counts.
  await autocannon({ url: info.url + path, headers, connections: CONNECTIONS, duration: 2 });
  const result = await autocannon({
    url: info.url + path,
    headers,
    connections: CONNECTIONS,
    duration: DURATION,
  });
  const bad = result.non2xx + result.errors;
  if (bad > 0) throw new Error(`${title}: ${bad} failed responses`);
  return { title, rps: Math.round(result.requests.average), p99ms: result.latency.p99 };
}

try {
  const bare = await measure('unguarded twin', '/bench/users/me-unguarded');
  const jwt = await measure('GET /users/me, bearer JWT', '/users/me', {
    authorization: `Bearer ${info.token}`,
  });
  const bare2 = await measure('unguarded twin (again)', '/bench/users/me-unguarded');
  const cookie = await measure('GET /users/me, session cookie', '/users/me', { cookie: info.cookie });
  const baseline = (bare.rps + bare2.rps) / 2;
  const rows = [bare, jwt, bare2, cookie].map((r) => ({ ...r, ratio: +(r.rps / baseline).toFixed(3) }));
  console.table(rows);
  const summary = {
    connections: CONNECTIONS,
    seconds: DURATION,
    baseline_rps: Math.round(baseline),
    jwt_ratio: +(jwt.rps / baseline).toFixed(3),
    cookie_ratio: +(cookie.rps / baseline).toFixed(3),
    targets: { jwt_ratio: 0.85, cookie_ratio: 0.7 },
  };
  console.log(JSON.stringify(summary));
} finally {
  server.kill('SIGTERM');
}

if (existsSync('bench/sse-fanout.mjs') && process.env.BENCH_SKIP_SSE !== '1') {
  await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/sse-fanout.mjs'], { stdio: 'inherit' });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`sse-fanout exited with ${code}`)),
    );
  });
}

// RSS of `npm start`'s command (SQLite, no Redis, no one on /docs): idle, then after 10 000
// keep-alive GET /users/me with a bearer token. Prints one JSON line (MiB). Targets (issue 10):
// idle <= 90, after the requests <= 110. Run by bench/run.mjs; alone: `node bench/footprint.mjs`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { startNodeFlags, startScript } from './start-flags.mjs';

const REQUESTS = Number(process.env.BENCH_FOOTPRINT_REQUESTS ?? 10_000);
const SETTLE_MS = Number(process.env.BENCH_FOOTPRINT_SETTLE_MS ?? 5_000);
// Optional second idle reading, this many ms after ready (e.g. 40000): V8's memory reducer runs
// its first compacting GC ≈ 20 s after start-up's last full GC, so the 5-s reading is start-up's
// heap before compaction (bench/README.md, seventh round). Off by default (it adds the wait).
const SETTLED_MS = Number(process.env.BENCH_FOOTPRINT_SETTLED_MS ?? 0);
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-footprint-'));
const port = 20_000 + Math.floor(Math.random() * 20_000);
const url = `http://127.0.0.1:${port}`;
const env = { ...process.env, DATA_DIR: dir, PORT: String(port), LOG_LEVEL: 'warn' };
delete env.DATABASE_URL;
delete env.REDIS_URL;
delete env.METRICS_PORT;
const cpu = process.env.BENCH_SERVER_CPU;
// The same command as `npm start` (read from package.json, so the two never drift apart), pinned
// like the other servers when taskset is there. BENCH_FOOTPRINT_NODE_FLAGS replaces its Node flags
// (e.g. "--max-semi-space-size=4") to compare settings.
const node = [process.execPath, ...startNodeFlags(process.env.BENCH_FOOTPRINT_NODE_FLAGS), ...startScript()];
const child = spawn(
  cpu === undefined ? node[0] : 'taskset',
  cpu === undefined ? node.slice(1) : ['-c', cpu, ...node],
  {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  },
);
const rssMiB = () => {
  const line = readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return line === null ? Number.NaN : +(Number(line[1]) / 1024).toFixed(1);
};
try {
  // /readyz answers 200 once the core has started (the shell answers /healthz before that).
  for (let i = 0; ; i += 1) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 240) throw new Error('the server did not become ready');
    await sleep(250);
  }
  await sleep(SETTLE_MS);
  const idle = rssMiB();
  let settled;
  if (SETTLED_MS > SETTLE_MS) {
    await sleep(SETTLED_MS - SETTLE_MS);
    settled = rssMiB();
  }
  const email = 'footprint@example.com';
  const password = 'correct horse battery staple';
  const registered = await fetch(`${url}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (!registered.ok) throw new Error(`register: ${registered.status}`);
  const token = await fetch(`${url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', username: email, password }),
  }).then((r) => r.json());
  const afterLogin = rssMiB();
  const result = await autocannon({
    url: `${url}/users/me`,
    headers: { authorization: `Bearer ${token.access_token}` },
    connections: 16,
    amount: REQUESTS,
  });
  if (result.non2xx > 0) throw new Error(`${result.non2xx} failed responses`);
  await sleep(1_000);
  process.stdout.write(
    `${JSON.stringify({ command: node.slice(1).join(' '), idle_rss_mib: idle, ...(settled === undefined ? {} : { [`idle_after_${SETTLED_MS}_ms_rss_mib`]: settled }), after_login_rss_mib: afterLogin, [`rss_after_${REQUESTS}_requests_mib`]: rssMiB(), targets: { idle: 90, loaded: 110 } })}\n`,
  );
} finally {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}

// `node bench/import-users.mjs` (not part of `npm test`): `gatehouse import-users` on a generated
// file of BENCH_IMPORT_ROWS rows (1 000 000 by default), through the compiled CLI in a child
// process, printing rows/s and the child's peak RSS (VmHWM from /proc, sampled every 50 ms, and
// its last value before exit). SQLite in a throwaway DATA_DIR by default; with
// DATABASE_URL=postgres://… a throwaway PostgreSQL database is created beside it and dropped.
//
// Every row carries the same passlib bcrypt hash (an import checks hashes, it computes none) and
// a unique email; BENCH_IMPORT_FORMAT=jsonl writes JSON lines instead of CSV.
//
//   BENCH_IMPORT_ROWS=1000000 node bench/import-users.mjs
import { execSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 1_000_000);
const FORMAT = process.env.BENCH_IMPORT_FORMAT === 'jsonl' ? 'jsonl' : 'csv';
const HASH = '$2b$12$ZLmHzH/w2Nru2BK7vLhFe.84ccb9nXqxheNZK7GpwQLFEr2i0vuaO';
const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;

execSync('node scripts/build.mjs --if-needed', { stdio: 'inherit' });
const dir = mkdtempSync(join(tmpdir(), 'gh-bench-import-'));
try {
  const file = join(dir, `users.${FORMAT}`);
  await writeRows(file);
  const env = { PATH: process.env.PATH ?? '', DATA_DIR: join(dir, 'data') };
  if (process.env.BENCH_IMPORT_NODE_OPTIONS) env.NODE_OPTIONS = process.env.BENCH_IMPORT_NODE_OPTIONS;
  const postgres = process.env.DATABASE_URL?.startsWith('postgres') ? await createPostgres() : undefined;
  if (postgres !== undefined) env.DATABASE_URL = postgres.url;
  try {
    const { seconds, peakKiB, code, stdout, stderr } = await importFile(file, env);
    if (code !== 0) throw new Error(`import-users exited ${code}: ${stderr.slice(0, 2000)}`);
    console.log(stdout.trim());
    const mib = (statSync(file).size / 2 ** 20).toFixed(1);
    console.log(
      `${postgres === undefined ? 'sqlite' : 'postgres'} ${FORMAT}: ${ROWS} rows (${mib} MiB) in ${seconds.toFixed(1)} s = ` +
        `${Math.round(ROWS / seconds)} rows/s; peak RSS ${(peakKiB / 1024).toFixed(0)} MiB`,
    );
  } finally {
    await postgres?.drop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function writeRows(file) {
  const out = createWriteStream(file);
  if (FORMAT === 'csv') out.write('email,hashed_password,full_name,disabled,role\n');
  for (let index = 0; index < ROWS; index += 1) {
    const email = `user${index}@bench.example.com`;
    const line =
      FORMAT === 'csv'
        ? `${email},${HASH},User ${index},false,user\n`
        : `${JSON.stringify({ email, hashed_password: HASH, full_name: `User ${index}`, disabled: false })}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Runs the import and samples the child's high-water RSS while it runs. */
async function importFile(file, env) {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'import-users', file], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  let peakKiB = 0;
  const sample = () => {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (match) peakKiB = Math.max(peakKiB, Number(match[1]));
    } catch {
      // The child has exited: the last sample stands.
    }
  };
  const timer = setInterval(sample, 50);
  const [code] = await once(child, 'exit');
  clearInterval(timer);
  return { seconds: (performance.now() - started) / 1000, peakKiB, code, stdout, stderr };
}

async function createPostgres() {
  const { default: pg } = await import('pg');
  const admin = process.env.DATABASE_URL;
  const name = `gh_bench_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

// `node bench/revocations.mjs` (not part of `npm test`): memory, start-up load time and reload
// time of the in-memory revocation list with 1 000 000 historic revoked sessions of which only a
// few are recent, against the same with only a handful of rows. Each measurement runs in a fresh
// child process so RSS is its own. SQLite by default; with DATABASE_URL=postgres://… it also runs
// on a throwaway PostgreSQL database created beside it (and dropped afterwards).
//
//   BENCH_REVOKED=1000000 BENCH_RECENT=20 node bench/revocations.mjs
import { execFileSync, execSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HISTORIC = Number(process.env.BENCH_REVOKED ?? 1_000_000);
const RECENT = Number(process.env.BENCH_RECENT ?? 20);
const RELOADS = 20;
const HOUR = 3_600_000;
const dist = (path) => new URL(`../dist/src/${path}`, import.meta.url).href;

if (process.argv[2] === 'measure') {
  await measure(process.argv[3], process.argv[4]);
} else {
  execSync('node scripts/build.mjs --if-needed', { stdio: 'inherit' });
  await main();
}

async function main() {
  const engines = [{ name: 'sqlite', create: createSqlite }];
  if (process.env.DATABASE_URL?.startsWith('postgres'))
    engines.push({ name: 'postgres', create: createPostgres });
  const rows = [];
  for (const engine of engines) {
    for (const historic of [0, HISTORIC]) {
      const { url, drop } = await engine.create();
      try {
        const seedStart = performance.now();
        await seed(url, historic);
        const seeded = Math.round(performance.now() - seedStart);
        for (const mode of ['incremental', 'full re-read (before)']) {
          if (mode !== 'incremental' && historic === 0) continue;
          const out = execFileSync(
            process.execPath,
            ['--expose-gc', new URL(import.meta.url).pathname, 'measure', url, mode],
            { encoding: 'utf8', maxBuffer: 1 << 20 },
          );
          rows.push({
            engine: engine.name,
            historic,
            recent: RECENT,
            mode,
            seedMs: seeded,
            ...JSON.parse(out),
          });
        }
      } finally {
        await drop();
      }
    }
  }
  console.table(rows);
}

async function createSqlite() {
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-revocations-'));
  return {
    url: `sqlite:${join(dir, 'bench.db')}`,
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
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

/** Migrates and fills: `historic` sessions revoked 2 days ago (sessions still unexpired), plus RECENT revoked a minute ago. */
async function seed(url, historic) {
  const { openDatabase } = await import(dist('storage/open-database.js'));
  const { migrateToLatest } = await import(dist('storage/migrate.js'));
  const { sql } = await import('kysely');
  // Seeding a million rows is one long bulk statement: well past the server's 5 s statement timeout.
  const database = openDatabase(url, { statementTimeoutMs: 600_000 });
  await migrateToLatest(database);
  const now = Date.now();
  const userId = randomUUID();
  await database.db
    .insertInto('users')
    .values({
      id: userId,
      email: 'bench@example.com',
      email_key: 'bench@example.com',
      full_name: null,
      password_hash: 'x',
      role: 'user',
      is_active: 1,
      created_at: now,
      updated_at: now,
    })
    .execute();
  const old = now - 48 * HOUR;
  const expires = now + 20 * 24 * HOUR;
  if (historic > 0) {
    // Generated in SQL: a million parameterised inserts would time the client, not the database.
    const series =
      database.dialect === 'postgres'
        ? sql`select md5(g::text) as id from generate_series(1, ${historic}) as g`
        : sql`with recursive g(n) as (select 1 union all select n + 1 from g where n < ${historic})
              select printf('%032x', n) as id from g`;
    await sql`insert into sessions (id, user_id, transport, scope, created_at, last_used_at, expires_at, revoked_at)
              select s.id, ${userId}, 'bearer', 'me', ${old}, ${old}, ${expires}, ${old} from (${series}) as s`.execute(
      database.db,
    );
  }
  const recent = Array.from({ length: RECENT }, () => ({
    id: randomUUID(),
    user_id: userId,
    transport: 'bearer',
    scope: 'me',
    created_at: now - HOUR,
    last_used_at: now - HOUR,
    expires_at: expires,
    revoked_at: now - 60_000,
  }));
  if (recent.length > 0) await database.db.insertInto('sessions').values(recent).execute();
  if (database.dialect === 'postgres') await sql`analyze sessions`.execute(database.db);
  await database.close();
}

/** Child process: load the list (or, for comparison, re-read every revoked row) and report. */
async function measure(url, mode) {
  const { openDatabase } = await import(dist('storage/open-database.js'));
  const { createSessionStore } = await import(dist('storage/session-store.js'));
  const { createRevocationList, revocationRetentionMs } = await import(dist('sessions/revocation-list.js'));
  const { createMemoryEventBus } = await import(dist('events/event-bus.js'));
  // The "full re-read (before)" comparison reads a million rows in one query: allow it to finish.
  const database = openDatabase(url, { statementTimeoutMs: 600_000 });
  const store = createSessionStore(database.db);
  await store.listRevokedSince(Date.now(), Date.now()); // connect before measuring
  globalThis.gc();
  const rssBefore = process.memoryUsage().rss;
  const start = performance.now();
  let list;
  let reload;
  let size;
  if (mode === 'incremental') {
    list = await createRevocationList({
      store,
      bus: createMemoryEventBus(),
      clock: Date.now,
      retentionMs: revocationRetentionMs({
        accessTokenTtlMs: 900_000,
        cookieRecheckMs: 30_000,
        streamHeartbeatMs: 15_000,
      }),
      reloadIntervalMs: 3_600_000,
      overlapMs: 60_000,
    });
    reload = () => list.reload();
    size = () => list.size;
  } else {
    // What the list did before: every revoked, unexpired session, loaded and re-read whole.
    const map = new Map();
    const all = async () => {
      for (const row of await store.listRevokedSince(0, Date.now())) map.set(row.id, row.expiresAt);
    };
    await all();
    reload = all;
    size = () => map.size;
  }
  const loadMs = performance.now() - start;
  globalThis.gc();
  const rssAfter = process.memoryUsage().rss;
  const times = [];
  // The full re-read takes seconds per round at a million rows; a few rounds show it.
  const rounds = mode === 'incremental' ? RELOADS : 3;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    await reload();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  list?.close();
  await database.close();
  process.stdout.write(
    JSON.stringify({
      entries: size(),
      loadMs: +loadMs.toFixed(1),
      reloadMedianMs: +times[Math.floor(times.length / 2)].toFixed(2),
      reloadMaxMs: +times[times.length - 1].toFixed(2),
      rssBeforeMiB: +(rssBefore / 2 ** 20).toFixed(1),
      rssAfterMiB: +(rssAfter / 2 ** 20).toFixed(1),
    }),
  );
}

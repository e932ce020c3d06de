// A login's SQLite work alone (issue 10, item 5): the store calls `POST /token` makes for a password
// login, in a loop, against a file database migrated like `npm start`'s, with nothing else in the
// process (no HTTP, no hashing, no throttle). Three measures:
//
//   node bench/login-sql.mjs pages   # WAL frames written per login (and by which b-tree), and
//                                    # the distinct pages a checkpoint copies back
//   node bench/login-sql.mjs time    # µs per login, median of alternating batches
//   node bench/login-sql.mjs ir      # instructions per login under valgrind's callgrind (exact to
//                                    # ≈ 0.1 %: nothing but this loop runs)
//
// The loop is the login's: `select * from users where email_key = ?`, the TOTP look-up, then one
// transaction with the session, the refresh token and the `login_succeeded` audit row, through
// the real stores of the build in BENCH_DIST (default `dist`): pointing it at a copy of another
// build's `dist/` compares two schemas or two sets of statements (A/B).
//
// Settings: BENCH_DIST (dist), BENCH_SQL_PRESET (sessions in the database before counting:
// 20 000, so the b-trees have the depth of a server that has run a while), BENCH_SQL_LOGINS
// (logins counted: 2 000), BENCH_SQL_WARMUP (1 000), BENCH_SQL_ACCOUNTS (100).
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { callgrindArgs, callgrindControl, firstDumpInstructions } from './callgrind.mjs';

const DIST = resolve(process.env.BENCH_DIST ?? 'dist');
const PRESET = Number(process.env.BENCH_SQL_PRESET ?? 20_000);
const LOGINS = Number(process.env.BENCH_SQL_LOGINS ?? 2_000);
const WARMUP = Number(process.env.BENCH_SQL_WARMUP ?? 1_000);
const ACCOUNTS = Number(process.env.BENCH_SQL_ACCOUNTS ?? 100);
const mode = process.argv[2] ?? 'pages';

const load = (path) => import(pathToFileURL(join(DIST, path)).href);

/** The login's stores over the database at `path` (migrated on open, as `npm start` does). */
async function openLogin(path) {
  const [{ openDatabase }, { migrateToLatest }, stores, { createMfaStore }, { generateOpaqueToken }] =
    await Promise.all([
      load('src/storage/open-database.js'),
      load('src/storage/migrate.js'),
      Promise.all([
        load('src/storage/user-store.js'),
        load('src/storage/session-store.js'),
        load('src/storage/audit-store.js'),
      ]),
      load('src/mfa/storage/mfa-store.js'),
      load('src/tokens/opaque-token.js'),
    ]);
  const [{ createUserStore }, { createSessionStore }, { createAuditStore }] = stores;
  const database = openDatabase(`sqlite:${path}`);
  await migrateToLatest(database);
  const users = createUserStore(database.db);
  const mfa = createMfaStore(database.db);
  const emailKeys = Array.from({ length: ACCOUNTS }, (_, i) => `login-${i}@example.com`);
  const addAccounts = async () => {
    const now = Date.now();
    for (const emailKey of emailKeys) {
      await users.insertUser({
        id: randomUUID(),
        email: emailKey,
        emailKey,
        fullName: null,
        passwordHash:
          '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',
        role: 'user',
        isActive: true,
        emailVerified: false,
        createdAt: now,
        updatedAt: now,
      });
    }
  };
  let next = 0;
  /** One login's SQL, as `token-grants.ts` → `session-manager.ts` run it (JWT strategy). */
  const login = async () => {
    const user = await users.findUserByEmailKey(emailKeys[next]);
    next = (next + 1) % emailKeys.length;
    await mfa.findTotp(user.id);
    const now = Date.now();
    const session = {
      id: randomUUID(),
      userId: user.id,
      transport: 'bearer',
      scopes: ['profile'],
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + 30 * 86_400_000,
      revokedAt: null,
      userAgent: 'autocannon',
      ip: '127.0.0.1',
      authTime: now,
      amr: ['pwd'],
    };
    const refresh = generateOpaqueToken('ghr');
    await database.transaction(async (trx) => {
      const sessions = createSessionStore(trx);
      await sessions.insertSession(session);
      await sessions.insertRefreshToken(refresh.hash, session.id, now, now + 14 * 86_400_000, 'gatehouse');
      await createAuditStore(trx).insertAuditRow({
        event: 'login_succeeded',
        actor_id: user.id,
        target_id: user.id,
        ip: '127.0.0.1',
        user_agent: 'autocannon',
        details: JSON.stringify({ via: 'token', session: session.id }),
        created_at: now,
      });
    });
  };
  return { database, path, login, addAccounts };
}

/** A fresh database at `dir`/login.db with ACCOUNTS accounts and PRESET sessions, open. */
async function setUp(dir) {
  const opened = await openLogin(join(dir, 'login.db'));
  await opened.addAccounts();
  for (let i = 0; i < PRESET; i += 1) await opened.login();
  return opened;
}

const raw = (database, text) => sql.raw(text).execute(database.db);

/** Page numbers of the frames in a WAL file (a 32-byte header, then 24-byte frame header + page). */
function walFrames(walPath, pageSize) {
  const bytes = readFileSync(walPath);
  const pages = [];
  for (let at = 32; at + 24 + pageSize <= bytes.length; at += 24 + pageSize)
    pages.push(bytes.readUInt32BE(at));
  return pages;
}

async function pages() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-login-sql-'));
  try {
    const { database, path, login } = await setUp(dir);
    for (let i = 0; i < WARMUP; i += 1) await login();
    const [{ page_size: pageSize }] = (await raw(database, 'pragma page_size')).rows;
    // Count every frame of the batch: no automatic checkpoint may reset the WAL meanwhile.
    await raw(database, 'pragma wal_autocheckpoint = 0');
    await raw(database, 'pragma wal_checkpoint(TRUNCATE)');
    for (let i = 0; i < LOGINS; i += 1) await login();
    const frames = walFrames(`${path}-wal`, pageSize);
    const owners = new Map(
      (await raw(database, 'select pageno, name from dbstat')).rows.map((row) => [row.pageno, row.name]),
    );
    const byTree = {};
    for (const page of frames) {
      const name = owners.get(page) ?? '(free or new)';
      byTree[name] = (byTree[name] ?? 0) + 1;
    }
    const perLogin = Object.fromEntries(
      Object.entries(byTree)
        .sort((a, b) => b[1] - a[1])
        .map(([name, count]) => [name, Math.round((count / LOGINS) * 100) / 100]),
    );
    const distinct = new Set(frames).size;
    console.log(
      JSON.stringify({
        dist: DIST,
        preset: PRESET,
        logins: LOGINS,
        frames_per_login: Math.round((frames.length / LOGINS) * 100) / 100,
        distinct_pages_per_login: Math.round((distinct / LOGINS) * 100) / 100,
        database_pages: statSync(path).size / pageSize,
        frames_per_login_by_tree: perLogin,
      }),
    );
    await database.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function time() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-login-sql-'));
  try {
    const { database, login } = await setUp(dir);
    for (let i = 0; i < WARMUP; i += 1) await login();
    // CPU time (user + system) of the process, which a checkpoint's fsync does not inflate as
    // wall time does; and wall time apart.
    const cpu = [];
    const user = [];
    const system = [];
    const wall = [];
    for (let b = 0; b < 7; b += 1) {
      const started = process.hrtime.bigint();
      const usage = process.cpuUsage();
      for (let i = 0; i < LOGINS; i += 1) await login();
      const spent = process.cpuUsage(usage);
      cpu.push((spent.user + spent.system) / LOGINS);
      user.push(spent.user / LOGINS);
      system.push(spent.system / LOGINS);
      wall.push(Number(process.hrtime.bigint() - started) / 1000 / LOGINS);
    }
    const median = (values) => Math.round(values.sort((a, b) => a - b)[3] * 10) / 10;
    console.log(
      JSON.stringify({
        dist: DIST,
        preset: PRESET,
        cpu_us_per_login_median: median(cpu),
        user_us_per_login_median: median(user),
        system_us_per_login_median: median(system),
        wall_us_per_login_median: median(wall),
        cpu_batches: cpu.map((x) => Math.round(x)),
      }),
    );
    await database.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The child of `ir`: sets up, warms up, then runs the counted batch when told to on stdin. */
async function irChild(path) {
  const { database, login } = await openLogin(path);
  for (let i = 0; i < WARMUP; i += 1) await login();
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log('ready');
  await lines.next();
  for (let i = 0; i < LOGINS; i += 1) await login();
  console.log('done');
  await lines.next();
  await database.close();
  process.exit(0);
}

/**
 * Instructions inside better-sqlite3's statement calls (`Statement::JS_run`, `JS_all`, `JS_get`,
 * inclusive): SQLite's own work and the binding's, without V8's and Kysely's, which move with JIT
 * and GC timing from run to run.
 */
function statementInstructions(file) {
  const annotated = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout;
  let sum = 0;
  for (const line of annotated.split('\n')) {
    const match = /^\s*([\d,]+)\s.*Statement::JS_(run|all|get|iterate)\(/.exec(line);
    if (match !== null) sum += Number(match[1].replaceAll(',', ''));
  }
  return sum;
}

async function ir() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-login-sql-ir-'));
  // The preset runs natively (under valgrind it would take minutes); the child reopens the file.
  const prepared = await setUp(dir);
  await prepared.database.close();
  const child = spawn(
    'valgrind',
    callgrindArgs(dir, [...process.execArgv, new URL(import.meta.url).pathname, 'ir-child', prepared.path]),
    { stdio: ['pipe', 'pipe', process.env.BENCH_IR_VERBOSE === '1' ? 'inherit' : 'ignore'] },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const expect = async (word) => {
    const { value } = await lines.next();
    if (value !== word) throw new Error(`expected ${word}, got ${value}`);
  };
  await expect('ready');
  callgrindControl('-i', 'on', String(child.pid));
  child.stdin.write('go\n');
  await expect('done');
  callgrindControl('-d', String(child.pid));
  child.stdin.write('end\n');
  await new Promise((resolve) => child.once('exit', resolve));
  const { main, others, mainFile } = firstDumpInstructions(dir);
  const sqlite = statementInstructions(mainFile);
  console.log(
    JSON.stringify({
      dist: DIST,
      preset: PRESET,
      logins: LOGINS,
      ir_per_login_main_thread: Math.round(main / LOGINS),
      ir_per_login_other_threads: Math.round(others / LOGINS),
      ir_per_login_in_sqlite_statements: Math.round(sqlite / LOGINS),
      ...(process.env.BENCH_IR_KEEP === '1' ? { callgrind_files: dir } : {}),
    }),
  );
  if (process.env.BENCH_IR_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
}

if (mode === 'pages') await pages();
else if (mode === 'time') await time();
else if (mode === 'ir') await ir();
else if (mode === 'ir-child') await irChild(process.argv[3]);
else throw new Error(`unknown mode ${mode}: pages, time or ir`);

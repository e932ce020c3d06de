// Starts a Gatehouse server for the benchmarks (in its own process, so the load generator does
// not share its event loop) plus an unguarded twin of GET /users/me, then prints what the
// benchmark needs as one JSON line: the URL, a bearer token and a session cookie.
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinTickObjectShape } from '../dist/src/lib/tick-object-shape.js';

// As `gatehouse serve` does first thing, before the server's modules load: keeps nextTick on V8's
// fast path for the server's life (src/lib/tick-object-shape.ts). Hence the dynamic imports below.
// BENCH_TICK_PIN=0 leaves it out, for an A/B.
if (process.env.BENCH_TICK_PIN !== '0') pinTickObjectShape();
const { toPublicUser } = await import('../dist/src/accounts/public-user.js');
const { createLoggerOptions } = await import('../dist/src/http/log-options.js');
const { buildServer } = await import('../dist/src/server.js');
const { testConfig } = await import('../dist/src/testing.js');
const { poolThreadIds } = await import('./pool-threads.mjs');

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const config = testConfig({
  dataDir: dir,
  databaseUrl: `sqlite:${join(dir, 'bench.db')}`,
  logLevel: process.env.BENCH_LOG === undefined ? 'silent' : 'info',
  // `BENCH_TOKEN_STRATEGY=database` runs the opaque-token strategy on the same routes.
  tokenStrategy: process.env.BENCH_TOKEN_STRATEGY === 'database' ? 'database' : 'jwt',
  // BENCH_HASH_CONCURRENCY sets PASSWORD_HASH_CONCURRENCY (the server's default otherwise).
  ...(process.env.BENCH_HASH_CONCURRENCY === undefined
    ? {}
    : { passwordHashConcurrency: Number(process.env.BENCH_HASH_CONCURRENCY) }),
});
// BENCH_LOG=1 keeps production's request logging (`npm start`'s logger at info: serializers,
// redaction, one line per request) to /dev/null, to measure what the log lines cost;
// BENCH_LOG=redact passes the same options as a caller's own `logger`, which makes every line,
// "request completed" included, go through pino's redaction (the A/B for http/request-log.ts).
// By default the bench runs without a logger.
const devNull = () => createWriteStream('/dev/null');
const logging =
  process.env.BENCH_LOG === '1'
    ? { logStream: devNull() }
    : process.env.BENCH_LOG === 'redact'
      ? { logger: createLoggerOptions('info', devNull()) }
      : { logger: false };
const app = await buildServer(config, { ...logging, webUi: false });
const password = 'correct horse battery';
const user = await app.gatehouse.users.register({ email: 'bench@example.com', password });
// Accounts for the login flood (BENCH_LOGIN_ACCOUNTS, 0 by default): the login path is measured
// with production's limits, and one account would hit LOGIN_MAX_SUCCESSES_PER_ACCOUNT (60 per
// 15 min) within a second; rotating over N accounts allows N x 60 logins per window.
const loginAccounts = Number(process.env.BENCH_LOGIN_ACCOUNTS ?? 0);
const loginEmails = [];
for (let i = 0; i < loginAccounts; i += 1) {
  const account = await app.gatehouse.users.register({ email: `login-${i}@example.com`, password });
  loginEmails.push(account.email);
}

// The twin: the same handler (synchronous, like /users/me's) and response schema, minus the guard.
app.get('/bench/users/me-unguarded', { schema: { response: { 200: { $ref: 'PublicUser#' } } } }, () =>
  toPublicUser(user),
);

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const url = `http://127.0.0.1:${address.port}`;

const tokenResponse = await fetch(`${url}/token`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'password', username: user.email, password }),
});
const { access_token: token } = await tokenResponse.json();

const csrfResponse = await fetch(`${url}/auth/csrf`);
const csrfCookies = csrfResponse.headers.getSetCookie().map((c) => c.split(';')[0]);
const { csrf_token: csrf } = await csrfResponse.json();
const loginResponse = await fetch(`${url}/auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, cookie: csrfCookies.join('; ') },
  body: JSON.stringify({ email: user.email, password }),
});
const sessionCookie = loginResponse.headers
  .getSetCookie()
  .map((c) => c.split(';')[0])
  .find((c) => c.includes('gatehouse_session='));

// The libuv pool's threads, where argon2 runs: the bench reads their CPU apart from the rest.
const poolThreads = await poolThreadIds();

process.stdout.write(
  `${JSON.stringify({ url, token, cookie: sessionCookie, email: user.email, password, loginEmails, loginMaxSuccessesPerAccount: config.loginMaxSuccessesPerAccount, hashConcurrency: config.passwordHashConcurrency, poolThreads, nodeFlags: process.execArgv })}\n`,
);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));

import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, form, login, PASSWORD, signIn } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { listenOnLoopback } from '../support/listen.js';
import { enrolTotpSignedIn, postMfaGrant, requestMfaToken } from '../support/mfa.js';
import { createRoom, joinAsBot } from '../support/rooms.js';
import { openSse } from '../support/sse-client.js';

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ metricsPort: 0 }, { webUi: false });
  });
  afterAll(async () => app.close());

  it('are off by default: no listener, and never on the public port', async () => {
    const plain = await buildTestServer({}, { webUi: false });
    try {
      expect(plain.metricsUrl).toBeUndefined();
      expect((await plain.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    } finally {
      await plain.close();
    }
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
  });

  // Operator red-team 2026-12-04: the listener (often on 0.0.0.0 in a cluster) took any number of
  // idle sockets, each held up to Node's default 300 s, spending the process's file descriptors.
  it('holds at most 16 connections at once and still answers a scrape when they go', async () => {
    const url = new URL(app.metricsUrl ?? '');
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 20; i += 1) {
        const socket = connect(Number(url.port), url.hostname);
        await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        sockets.push(socket);
      }
      // The server closes what comes beyond its cap at once: at most 16 stay open.
      const closed = await Promise.all(
        sockets.map(
          (socket) =>
            new Promise<boolean>((resolve) => {
              socket.once('close', () => resolve(true));
              setTimeout(() => resolve(socket.destroyed), 500);
            }),
        ),
      );
      expect(closed.filter((gone) => !gone).length).toBeLessThanOrEqual(16);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    // Once the server has seen them go (a scrape arriving first is refused like the others).
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt += 1) {
      status = await fetch(`${url.origin}/metrics`, { signal: AbortSignal.timeout(2_000) }).then(
        (response) => response.status,
        () => 0,
      );
    }
    expect(status).toBe(200);
  });

  // Ops review 2026-12s O3: a peer that kept re-opening 16 half-sent requests (reconnecting as soon
  // as one closed) held every slot, and each scrape was refused on accept: the target looked down.
  it('a peer holding every slot with half-sent requests does not keep a scrape out', async () => {
    const url = new URL(app.metricsUrl ?? '');
    const held = new Set<Socket>();
    let stop = false;
    const holdOne = async (): Promise<void> => {
      while (!stop) {
        const socket = connect(Number(url.port), url.hostname);
        socket.on('error', () => {});
        const opened = await new Promise<boolean>((resolve) => {
          socket.once('connect', () => resolve(true));
          socket.once('close', () => resolve(false));
        });
        if (!opened) continue;
        held.add(socket);
        socket.write('GET /metrics HTTP/1.1\r\n'); // the headers never end
        await new Promise((resolve) => socket.once('close', resolve));
        held.delete(socket);
      }
    };
    const holders = Array.from({ length: 16 }, () => holdOne());
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const statuses: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        statuses.push(
          await fetch(`${url.origin}/metrics`, { signal: AbortSignal.timeout(2_000) }).then(
            (response) => response.status,
            () => 0,
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
    } finally {
      stop = true;
      for (const socket of held) socket.destroy();
      await Promise.all(holders);
    }
  });

  it('answer only a Host that is an IP address, localhost or in METRICS_ALLOWED_HOSTS (DNS rebinding)', async () => {
    // Red-team 2026-12h C1: any Host was answered, so a page whose name rebinds to 127.0.0.1 (or a
    // pod address) read the metrics from a visitor's browser.
    const named = await buildTestServer(
      { metricsPort: 0, metricsAllowedHosts: ['gatehouse.monitoring.svc', 'gatehouse_app.'] },
      { webUi: false },
    );
    try {
      const url = new URL(named.metricsUrl ?? '');
      const scrape = (host: string) =>
        new Promise<number>((resolve, reject) => {
          httpRequest(
            { host: url.hostname, port: url.port, path: '/metrics', headers: { host } },
            (answer) => {
              answer.resume();
              resolve(answer.statusCode ?? 0);
            },
          )
            .on('error', reject)
            .end();
        });
      for (const host of [
        url.host,
        '10.0.3.7:9464',
        '[::1]:9464',
        'localhost:9464',
        'LOCALHOST',
        'gatehouse.monitoring.svc:9464',
        'gatehouse.monitoring.svc.:9464',
        'gatehouse_app:9464',
      ])
        expect(await scrape(host), host).toBe(200);
      for (const host of [
        'attacker.example:9464',
        'localhost.attacker.example',
        '127.0.0.1.nip.io',
        'monitoring.svc',
      ])
        expect(await scrape(host), host).toBe(421);
    } finally {
      await named.close();
    }
  });

  it('are scraped in Prometheus text format, labelled by route template only', async () => {
    // Its own server: the counts below are exact whatever the other tests here did first.
    const app = await buildTestServer({ metricsPort: 0 }, { webUi: false });
    try {
      const user = await createUser(app);
      await app.inject({ method: 'GET', url: '/healthz' });
      await app.inject({ method: 'GET', url: '/healthz' });
      await app.inject({ method: 'GET', url: '/users/me' });
      await app.inject({ method: 'GET', url: '/clothes/12345' });
      await app.inject({ method: 'GET', url: '/no/such/path-secret-123' });
      const token = (body: Record<string, string>) =>
        app.inject({
          method: 'POST',
          url: '/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: form(body),
        });
      expect(
        (await token({ grant_type: 'password', username: user.email, password: 'wrong one!' })).statusCode,
      ).toBe(400); // RFC 6749 §5.2 invalid_grant
      expect(
        (await token({ grant_type: 'password', username: user.email, password: user.password })).statusCode,
      ).toBe(200);

      const url = app.metricsUrl;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/plain');
      const text = await response.text();

      expect(sample(text, 'gatehouse_http_requests_total{method="GET",route="/healthz",status="200"}')).toBe(
        2,
      );
      expect(sample(text, 'gatehouse_http_requests_total{method="GET",route="/users/me",status="401"}')).toBe(
        1,
      );
      // Templates, not paths: the id and the unmatched path never become label values.
      expect(text).toContain('route="/clothes/:id"');
      expect(
        sample(text, 'gatehouse_http_requests_total{method="GET",route="unmatched",status="404"}'),
      ).toBeGreaterThanOrEqual(1);
      expect(text).not.toContain('12345');
      expect(text).not.toContain('path-secret-123');
      expect(
        sample(text, 'gatehouse_http_request_duration_seconds_count{method="GET",route="/healthz"}'),
      ).toBe(2);
      expect(sample(text, 'gatehouse_logins_total{route="/token",outcome="rejected"}')).toBe(1);
      expect(sample(text, 'gatehouse_logins_total{route="/token",outcome="success"}')).toBe(1);
      expect(sample(text, 'gatehouse_revoked_sessions')).toBe(0);
      expect(text).toContain('# TYPE gatehouse_process_resident_memory_bytes gauge');
      expect((await fetch(`${url}/other`)).status).toBe(404);
    } finally {
      await app.close();
    }
  });

  // Ops review 2026-12s O4: the outcome came from the status alone. A right password on an account
  // with a second factor counted as `rejected` at /token (a 400 mfa_required) and as `success` at
  // /auth/login (a 200 with no session yet); the second step and passkeys counted nowhere; and a
  // cross-site request refused before any password check counted as a rejected login.
  it('count logins by what happened: a second step required, a wrong code, none for a CSRF refusal', async () => {
    const scrape = async () => (await fetch(`${app.metricsUrl}/metrics`)).text();
    const count = async (route: string, outcome: string) =>
      sample(await scrape(), `gatehouse_logins_total{route="${route}",outcome="${outcome}"}`) ?? 0;
    const counts = async () => ({
      tokenMfa: await count('/token', 'mfa_required'),
      tokenRejected: await count('/token', 'rejected'),
      tokenFailed: await count('/token', 'mfa_failed'),
      loginMfa: await count('/auth/login', 'mfa_required'),
      loginSuccess: await count('/auth/login', 'success'),
      loginRejected: await count('/auth/login', 'rejected'),
      stepFailed: await count('/auth/login/mfa', 'mfa_failed'),
      loginDisabled: await count('/auth/login', 'disabled'),
    });
    const before = await counts();
    const { user } = await enrolTotpSignedIn(app, Date.now());
    const mfaToken = await requestMfaToken(app, user.email);
    expect((await postMfaGrant(app, mfaToken, '000000')).statusCode).toBe(400);
    const browser = new Browser(app);
    const first = await browser.login(user.email);
    expect(first.json()).toMatchObject({ mfa_required: true });
    const step = await browser.request('POST', '/auth/login/mfa', {
      headers: { 'x-csrf-token': await browser.csrf() },
      payload: { mfa_token: first.json().mfa_token, otp: '000000' },
    });
    expect(step.statusCode).toBe(400);
    // Cross-site: refused before the password is looked at.
    const crossSite = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
      payload: JSON.stringify({ email: user.email, password: PASSWORD }),
    });
    expect(crossSite.statusCode).toBe(403);
    // A right password on a disabled account: its own outcome (review of 27000c8: counted nowhere).
    const disabled = await createUser(app);
    await gatehouseCore(app.gatehouse).users.updateUser(disabled.id, { isActive: false }, Date.now());
    expect((await new Browser(app).login(disabled.email)).json()).toMatchObject({ code: 'ACCOUNT_DISABLED' });
    expect(await counts()).toEqual({
      ...before,
      loginDisabled: before.loginDisabled + 1,
      tokenMfa: before.tokenMfa + 1,
      tokenFailed: before.tokenFailed + 1,
      loginMfa: before.loginMfa + 1,
      stepFailed: before.stepFailed + 1,
    });
  });

  // Ops review 2026-12s O5: SQLite's gauge said idle (in_use 0, waiting 0) while five sign-ups
  // queued behind another process's write lock: it looked at `inTransaction` only.
  it('show the SQLite connection in use, and who waits for it, while writes queue behind a lock', async () => {
    const { default: SQLite } = await import('better-sqlite3');
    const { join } = await import('node:path');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'gh-pool-gauge-')), 'pool.db');
    const own = await buildTestServer(
      { databaseUrl: `sqlite:${file}`, metricsPort: 0, registrationsPerHour: 1000 },
      { webUi: false },
    );
    const other = new SQLite(file);
    try {
      const gauge = async (state: string) =>
        sample(
          await (await fetch(`${own.metricsUrl}/metrics`)).text(),
          `gatehouse_database_connections{state="${state}"}`,
        );
      expect(await gauge('in_use')).toBe(0);
      other.exec('begin immediate');
      const pending = Array.from({ length: 5 }, (_, i) =>
        own.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: `q${i}@example.com`, password: PASSWORD },
        }),
      );
      await expect.poll(() => gauge('waiting'), { timeout: 5_000, interval: 50 }).toBeGreaterThan(0);
      expect(await gauge('in_use')).toBe(1);
      other.exec('rollback');
      expect((await Promise.all(pending)).map((r) => r.statusCode)).toEqual([201, 201, 201, 201, 201]);
      await expect.poll(() => gauge('waiting'), { timeout: 5_000, interval: 50 }).toBe(0);
      expect(await gauge('in_use')).toBe(0);
    } finally {
      if (other.inTransaction) other.exec('rollback');
      other.close();
      await own.close();
    }
  });

  it('report security notices: queued, delivered, failed takes, expired', async () => {
    const own = await buildTestServer({ metricsPort: 0 }, { webUi: false });
    try {
      const user = await createUser(own);
      const { access_token: token } = await login(own, user.email);
      const changed = await own.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(token),
        payload: { password: 'a brand new passphrase', current_password: PASSWORD },
      });
      expect(changed.statusCode).toBe(200);
      await gatehouseCore(own.gatehouse).lifecycle.idle();
      const text = await (await fetch(`${own.metricsUrl}/metrics`)).text();
      expect(sample(text, 'gatehouse_security_notices_queued')).toBe(0);
      expect(sample(text, 'gatehouse_security_notices_total{outcome="delivered"}')).toBe(1);
      expect(sample(text, 'gatehouse_security_notices_total{outcome="failed_take"}')).toBe(0);
      expect(sample(text, 'gatehouse_security_notices_total{outcome="expired"}')).toBe(0);
    } finally {
      await own.close();
    }
  });

  it('report hashing, caches, the database pool, open event streams and the bus', async () => {
    const scrape = async () => (await fetch(`${app.metricsUrl}/metrics`)).text();
    const host = await signIn(app);
    // The same token twice: one signature check (miss), then the verified-token cache (hit); the
    // user comes from the user cache after the first read.
    for (let i = 0; i < 2; i += 1)
      await app.inject({ method: 'GET', url: '/users/me', headers: host.headers });
    const room = await createRoom(app, host);
    const player = await joinAsBot(app, room.code, 'Metrics Bot');
    const base = await listenOnLoopback(app);
    const stream = await openSse(`${base}/rooms/${room.code}/events`, player.headers);
    try {
      const text = await scrape();
      expect(sample(text, 'gatehouse_event_streams_open')).toBe(1);
      expect(sample(text, 'gatehouse_cache_lookups_total{cache="jwt",result="hit"}')).toBeGreaterThanOrEqual(
        1,
      );
      expect(sample(text, 'gatehouse_cache_lookups_total{cache="jwt",result="miss"}')).toBeGreaterThanOrEqual(
        1,
      );
      expect(sample(text, 'gatehouse_cache_lookups_total{cache="user",result="hit"}')).toBeGreaterThanOrEqual(
        1,
      );
      expect(
        sample(text, 'gatehouse_cache_lookups_total{cache="user",result="miss"}'),
      ).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'gatehouse_cache_lookups_total{cache="cookie",result="hit"}')).toBe(0);
      expect(sample(text, 'gatehouse_cache_lookups_total{cache="opaque",result="miss"}')).toBe(0);
      // Every login and sign-up so far hashed once each; none had to wait on this idle server.
      expect(sample(text, 'gatehouse_password_hashes_total')).toBeGreaterThanOrEqual(2);
      expect(sample(text, 'gatehouse_password_hash_wait_seconds_total')).toBeGreaterThanOrEqual(0);
      expect(sample(text, 'gatehouse_password_hash_queue_depth{lane="shared"}')).toBe(0);
      expect(sample(text, 'gatehouse_password_hash_queue_depth{lane="reserved"}')).toBe(0);
      expect(sample(text, 'gatehouse_password_hash_running')).toBe(0);
      // Nothing imported here: refusals are not padded.
      expect(sample(text, 'gatehouse_login_refusal_floor_seconds')).toBe(0);
      expect(sample(text, 'gatehouse_database_connections_max')).toBe(1);
      expect(sample(text, 'gatehouse_database_connections{state="waiting"}')).toBe(0);
      expect(sample(text, 'gatehouse_database_connections{state="idle"}')).toBe(1);
      expect(sample(text, 'gatehouse_database_unreachable')).toBe(0);
      // No Redis here: no reconnects, no cross-instance messages.
      expect(sample(text, 'gatehouse_redis_reconnects_total')).toBe(0);
      expect(sample(text, 'gatehouse_bus_messages_total')).toBe(0);
    } finally {
      stream.close();
    }
    // The stream's entry leaves with its socket.
    let open: number | undefined = 1;
    for (let attempt = 0; attempt < 100 && open !== 0; attempt += 1) {
      await new Promise((resolve) => setImmediate(resolve));
      open = sample(await scrape(), 'gatehouse_event_streams_open');
    }
    expect(open).toBe(0);
  });

  it('counts throttled requests', async () => {
    const user = await createUser(app);
    let status = 0;
    for (let attempt = 0; attempt < 20 && status !== 429; attempt += 1) {
      status = (
        await app.inject({
          method: 'POST',
          url: '/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: form({ grant_type: 'password', username: user.email, password: 'wrong again!' }),
        })
      ).statusCode;
    }
    expect(status).toBe(429);
    const text = await (await fetch(`${app.metricsUrl}/metrics`)).text();
    expect(sample(text, 'gatehouse_throttled_requests_total{route="/token"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'gatehouse_logins_total{route="/token",outcome="throttled"}')).toBeGreaterThanOrEqual(
      1,
    );
  });
});

import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { GatehouseConfig } from '../src/config/config.js';
import { ConfigError } from '../src/errors.js';
import { gatehouseCore } from '../src/gatehouse-core.js';
import { requestTimeouts, startServer } from '../src/start-server.js';
import { pingDatabase } from '../src/storage/ping-database.js';
import { testConfig } from '../src/testing.js';
import { PASSWORD } from './support/accounts.js';
import { rawRequest } from './support/listen.js';
import { freePort } from './support/private-postgres.js';
import { openSse } from './support/sse-client.js';

/**
 * Sends one keep-alive `GET /healthz` on `socket` and resolves with what came back before the first
 * answer ended or the socket closed: '' when the server closed the connection without answering.
 */
function answerOn(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let received = '';
    const done = () => {
      socket.off('data', onData);
      socket.off('close', done);
      socket.off('error', done);
      resolve(received);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (received.includes('\r\n\r\n{')) done();
    };
    socket.on('data', onData);
    // A refused connection may also report ECONNRESET; that is an answer of '' too, never a throw.
    if (socket.listenerCount('error') === 0) socket.on('error', () => {});
    socket.once('close', done);
    socket.once('error', done);
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  });
}

/**
 * Connections to the server at `url` from chosen loopback addresses: every address of 127.0.0.0/8
 * is this machine's, so each is another client network. `sockets` holds them for the cleanup.
 */
function loopbackClients(url: string) {
  const sockets: Socket[] = [];
  const from = (localAddress: string) => {
    const socket = connect({ port: Number(new URL(url).port), host: '127.0.0.1', localAddress });
    sockets.push(socket);
    return socket;
  };
  return { sockets, from };
}

/**
 * The smallest connection budget the start-up check accepts (128, with 56 streams and 8 exports),
 * and 32 connections per network: four networks' sockets can fill it.
 */
function crowdedConfig() {
  return testConfig({
    port: 0,
    maxConnections: 128,
    maxConnectionsPerNetwork: 32,
    maxStreamsTotal: 56,
    maxExportsTotal: 8,
  });
}

async function getJson(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** One GET over `agent`, leaving its keep-alive socket open and idle afterwards. */
function keepAliveGet(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A host account with one room, and a player joined to it by bearer token. */
async function hostRoomAndJoin(url: string, app: FastifyInstance) {
  const user = await gatehouseCore(app.gatehouse).accounts.register({
    email: 'host@example.com',
    password: PASSWORD,
  });
  const tokens = await getJson(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      username: user.email,
      password: PASSWORD,
    }).toString(),
  });
  const room = await getJson(`${url}/rooms`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${String(tokens.body.access_token)}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ name: 'Streams' }),
  });
  const code = String(room.body.code);
  const joined = await getJson(`${url}/rooms/${code}/join`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ player: 'Bot', transport: 'bearer' }),
  });
  return { code, playerAuth: { authorization: `Bearer ${String(joined.body.access_token)}` } };
}

/** Starts a server on `config` (the right secret, after a refused one) and checks it gets ready. */
async function expectStarts(config: GatehouseConfig): Promise<void> {
  const server = await startServer(config, { logger: false, webUi: false });
  try {
    expect(await server.ready).toBeDefined();
  } finally {
    await server.close();
  }
}

describe('startServer', () => {
  it('listens while the database is down: /healthz 200, everything else 503 until started', async () => {
    // Nothing listens on this port: every start-up attempt is refused, then retried.
    const port = await freePort();
    const server = await startServer(
      testConfig({ port: 0, databaseUrl: `postgres://postgres@127.0.0.1:${port}/postgres` }),
      { logger: false, initialRetryDelayMs: 50, maxRetryDelayMs: 200 },
    );
    try {
      expect(await getJson(`${server.url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });
      const ready = await getJson(`${server.url}/readyz`);
      expect(ready).toMatchObject({ status: 503, body: { status: 'starting', database: 'down' } });
      const me = await getJson(`${server.url}/users/me`, { headers: { authorization: 'Bearer x' } });
      expect(me.status).toBe(503);
      expect(me.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(Number(me.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(me.body).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      const token = await getJson(`${server.url}/token`, { method: 'POST' });
      expect(token.status).toBe(503);
    } finally {
      await server.close();
    }
    // Closed before the core ever started: nothing to hand back, nothing left running.
    expect(await server.ready).toBeUndefined();
  });

  it('answers an expectation it cannot meet with 417 problem+json on its own HTTP server too, and meets 100-continue', async () => {
    const server = await startServer(testConfig({ port: 0 }), { logger: false, webUi: false });
    try {
      if ((await server.ready) === undefined) throw new Error('the server did not start');
      const port = Number(new URL(server.url).port);
      const send = (request: string) => rawRequest(port, request);
      const refused = await send('GET /healthz HTTP/1.1\r\nHost: localhost\r\nExpect: 200-ok\r\n\r\n');
      expect(refused).toMatch(/^HTTP\/1\.1 417 /);
      expect(refused).toMatch(/content-type: application\/problem\+json/i);
      expect(refused).toMatch(/connection: close/i);
      expect(refused).toContain('"code":"EXPECTATION_FAILED"');
      const met = await send(
        'GET /healthz HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
      );
      expect(met).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    } finally {
      await server.close();
    }
  });

  it('answers two Host lines, or none, with 400 problem+json on its own HTTP server too (red-team 2026-12m M2)', async () => {
    const config = testConfig({ port: 0, logLevel: 'warn' });
    const server = await startServer(config, { logger: false, webUi: false });
    try {
      if ((await server.ready) === undefined) throw new Error('the server did not start');
      const port = Number(new URL(server.url).port);
      const send = (request: string) => rawRequest(port, request);
      for (const hosts of ['Host: evil.example\r\nHost: localhost\r\n', '']) {
        const answer = await send(`GET /healthz HTTP/1.1\r\n${hosts}Connection: close\r\n\r\n`);
        expect(answer).toMatch(/^HTTP\/1\.1 400 /);
        expect(answer).toMatch(/content-type: application\/problem\+json/i);
      }
    } finally {
      await server.close();
    }
  });

  // The grace period is long on purpose: close() must not need it, so a hang fails this test.
  it('shuts down with an idle keep-alive client and an open event stream, then closes the core', {
    timeout: 10_000,
  }, async () => {
    const config = testConfig({ port: 0, cookieSecure: false, shutdownGracePeriodMs: 60_000 });
    config.databaseUrl = `sqlite:${join(config.dataDir, 'gatehouse.db')}`;
    const server = await startServer(config, { logger: false, webUi: false });
    const app = await server.ready;
    if (app === undefined) throw new Error('the server did not start');
    expect((await getJson(`${server.url}/readyz`)).body).toEqual({
      status: 'ready',
      database: 'up',
      redis: 'disabled',
    });

    const { code, playerAuth } = await hostRoomAndJoin(server.url, app);
    const stream = await openSse(`${server.url}/rooms/${code}/events`, playerAuth);
    expect(stream.status).toBe(200);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect(await keepAliveGet(`${server.url}/healthz`, agent)).toBe(200);

    await server.close();
    await stream.ended;
    agent.destroy();
    // The core was closed last: its database no longer answers.
    expect(await pingDatabase(gatehouseCore(app.gatehouse).database, 200)).toBe('down');
  });

  it('closes a connection whose request body trickles in slower than the request timeout (red-team F6)', {
    timeout: 30_000,
  }, async () => {
    const config = testConfig({ port: 0 });
    const server = await startServer(config, { logger: false, webUi: false, requestTimeoutMs: 1_000 });
    try {
      await server.ready;
      const { port } = new URL(server.url);
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write(
        'POST /auth/register HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n' +
          'content-length: 100\r\n\r\n{',
      );
      // One more byte every 200 ms: the connection stays busy but never finishes its request.
      const trickle = setInterval(() => socket.write(' '), 200);
      await closed;
      clearInterval(trickle);
      expect(received).toMatch(/^HTTP\/1\.1 408/);
      expect(received).toMatch(/content-type: application\/problem\+json/i);
      expect(received).toContain('"code":"REQUEST_TIMEOUT"');
    } finally {
      await server.close();
    }
  });

  it('destroys a connection whose client stops reading its answer (red-team G5)', {
    timeout: 30_000,
  }, async () => {
    let aborted: () => void = () => {};
    const abortLogged = new Promise<void>((resolve) => {
      aborted = resolve;
    });
    const server = await startServer(testConfig({ port: 0, logLevel: 'info' }), {
      webUi: false,
      sendTimeoutMs: 1_000,
      logStream: {
        write(line) {
          if (line.includes('"request aborted"')) aborted();
        },
      },
    });
    try {
      const app = await server.ready;
      // Swagger UI is built on its first request; on a loaded machine that took longer than this
      // test's 1 s send timeout, which then closed the fetch's socket before any answer ("other side
      // closed"). Built here first, with no socket to time out.
      await app?.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
      const script = `${server.url}/docs/static/swagger-ui-bundle.js`;
      const { byteLength } = await (await fetch(script)).arrayBuffer();
      expect(byteLength).toBeGreaterThan(1_000_000);
      // Eight pipelined requests for the 1.6 MB script: more than the kernel's socket buffers hold,
      // so the server is left with unsent bytes once the client stops reading.
      const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
      socket.write('GET /docs/static/swagger-ui-bundle.js HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(8));
      socket.pause();
      // Without a send timeout nothing ever ends the stuck answer, and this waits for ever.
      await abortLogged;
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.byteLength;
      });
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.resume();
      // The server closed the connection: what was already in the kernel's buffers arrives, the
      // rest of the eight answers never does.
      await closed;
      expect(received).toBeLessThan(8 * byteLength);
    } finally {
      await server.close();
    }
  });

  it('keeps an event stream whose heartbeat is slower than the send timeout (red-team G5)', {
    timeout: 30_000,
  }, async () => {
    // A heartbeat every 1.5 s against a 1 s send timeout: the stream raises its own socket's.
    const config = testConfig({ port: 0, roomHeartbeatInterval: 1.5 });
    config.databaseUrl = `sqlite:${join(config.dataDir, 'gatehouse.db')}`;
    const server = await startServer(config, { logger: false, webUi: false, sendTimeoutMs: 1_000 });
    try {
      const app = await server.ready;
      if (app === undefined) throw new Error('the server did not start');
      const { code, playerAuth } = await hostRoomAndJoin(server.url, app);
      const stream = await openSse(`${server.url}/rooms/${code}/events`, playerAuth);
      expect(stream.status).toBe(200);
      // Two heartbeats are three seconds with nothing else to say: a socket on the 1 s timeout
      // would have been destroyed before the first.
      const heartbeats = () => stream.comments.filter((comment) => comment === 'heartbeat').length;
      await stream.nextComment(() => heartbeats() >= 2, 10_000);
      expect(heartbeats()).toBeGreaterThanOrEqual(2);
      stream.close();
    } finally {
      await server.close();
    }
  });

  it('lets in-flight requests finish before it closes the core', { timeout: 20_000 }, async () => {
    const config = testConfig({ port: 0, registrationsPerHour: 1000, shutdownGracePeriodMs: 60_000 });
    config.databaseUrl = `sqlite:${join(config.dataDir, 'gatehouse.db')}`;
    const server = await startServer(config, { logger: false, webUi: false });
    const app = await server.ready;
    if (app === undefined) throw new Error('the server did not start');
    // Eight registrations, each held at its password hash until all eight have reached the server:
    // the shutdown then begins with every one of them in flight, whatever the machine's load.
    const { hasher } = gatehouseCore(app.gatehouse);
    const hash = hasher.hash.bind(hasher);
    let arrived = 0;
    let allArrived: () => void = () => {};
    const inFlight = new Promise<void>((resolve) => {
      allArrived = resolve;
    });
    hasher.hash = async (password, lane) => {
      arrived += 1;
      if (arrived === 8) allArrived();
      await inFlight;
      return hash(password, lane);
    };
    const register = (n: number) =>
      fetch(`${server.url}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `inflight${n}@example.com`, password: PASSWORD }),
      }).then((response) => response.status);
    const pending = Array.from({ length: 8 }, (_, n) => register(n));
    await inFlight;
    const closed = server.close();
    expect(await Promise.all(pending)).toEqual(Array.from({ length: 8 }, () => 201));
    await closed;
  });
  it('closes a connection beyond MAX_CONNECTIONS at once; service resumes when connections go', {
    timeout: 30_000,
  }, async () => {
    // The smallest budget the check accepts: 128 connections, a tenth (64) kept from streams and exports.
    const config = testConfig({ port: 0, maxConnections: 128, maxStreamsTotal: 56, maxExportsTotal: 8 });
    const server = await startServer(config, { logger: false, webUi: false });
    const sockets: Socket[] = [];
    try {
      await server.ready;
      const port = Number(new URL(server.url).port);
      // Each connection is answered once and then held idle (keep-alive): the server has accepted it.
      for (let i = 0; i < 128; i++) {
        const socket = connect(port, '127.0.0.1');
        sockets.push(socket);
        expect(await answerOn(socket)).toMatch(/^HTTP\/1\.1 200/);
      }
      // The 129th is accepted by the kernel and closed by Node before any HTTP: no answer at all.
      const extra = connect(port, '127.0.0.1');
      expect(await answerOn(extra)).toBe('');
      // The connections already open keep their service.
      expect(await answerOn(sockets[0] as Socket)).toMatch(/^HTTP\/1\.1 200/);
      for (const socket of sockets.splice(0, 10)) socket.destroy();
      // Once the server has seen them go, a new connection is served (bounded wait, no fixed sleep).
      let answer = '';
      for (const deadline = Date.now() + 5000; answer === '' && Date.now() < deadline; ) {
        const fresh = connect(port, '127.0.0.1');
        answer = await answerOn(fresh);
        fresh.destroy();
      }
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('closes a connection beyond MAX_CONNECTIONS_PER_NETWORK; other networks are served meanwhile', {
    timeout: 30_000,
  }, async () => {
    const lines: string[] = [];
    const server = await startServer(testConfig({ port: 0, maxConnectionsPerNetwork: 4, logLevel: 'warn' }), {
      logStream: { write: (line: string) => void lines.push(line) },
      webUi: false,
    });
    const { sockets, from } = loopbackClients(server.url);
    try {
      await server.ready;
      for (let i = 0; i < 4; i++) expect(await answerOn(from('127.0.0.1'))).toMatch(/^HTTP\/1\.1 200/);
      // A fifth idle socket from the same network is closed unanswered: one client cannot hoard them.
      expect(await answerOn(from('127.0.0.1'))).toBe('');
      expect(await answerOn(from('127.0.0.2'))).toMatch(/^HTTP\/1\.1 200/);
      sockets[0]?.destroy();
      let answer = '';
      for (const deadline = Date.now() + 5000; answer === '' && Date.now() < deadline; ) {
        answer = await answerOn(from('127.0.0.1'));
      }
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      // The operator learns which setting refused whom and what to change; one line however many
      // were refused (the test ends well within the minute between two warnings).
      const warnings = lines
        .map((line) => JSON.parse(line) as { code?: string; msg: string; network?: string; max?: number })
        .filter((entry) => entry.code === 'TOO_MANY_CONNECTIONS_FROM_NETWORK');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ network: '127.0.0.1', max: 4 });
      expect(warnings[0]?.msg).toMatch(/MAX_CONNECTIONS_PER_NETWORK \(4\).*NAT.*TRUST_PROXY/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('keeps room for other networks: near MAX_CONNECTIONS a newcomer closes an idle socket of the network holding the most (red-team 2026-12l N3)', {
    timeout: 30_000,
  }, async () => {
    // The smallest budget the check accepts (128), and 32 per network: four networks' idle
    // keep-alive sockets filled every connection, and each other client's was closed unanswered.
    const config = crowdedConfig();
    const server = await startServer(config, { logger: false, webUi: false });
    const { sockets, from } = loopbackClients(server.url);
    try {
      await server.ready;
      const attackers = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
      const held: Socket[] = [];
      for (const address of attackers) {
        for (let i = 0; i < 32; i++) {
          const socket = from(address);
          // Answered, then held idle. Near the cap some of the earlier networks' sockets are closed
          // to make room, so a later one is answered too.
          expect(await answerOn(socket)).toMatch(/^HTTP\/1\.1 200/);
          held.push(socket);
        }
      }
      // Every newcomer is served, each closing one idle socket of the network holding the most.
      for (const address of ['127.0.0.250', '127.0.0.251', '127.0.0.252']) {
        expect(await answerOn(from(address))).toMatch(/^HTTP\/1\.1 200/);
      }
      const closed = held.filter((socket) => socket.destroyed || socket.readyState !== 'open').length;
      expect(closed).toBeGreaterThan(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('makes no room for a connection its own network’s cap refuses', { timeout: 30_000 }, async () => {
    const config = crowdedConfig();
    const server = await startServer(config, { logger: false, webUi: false });
    const { sockets, from } = loopbackClients(server.url);
    try {
      await server.ready;
      // 32 + 32 + 32 + 16 = 112 open: at the point where room is made (128 less 16).
      const byNetwork = new Map<string, Socket[]>();
      for (const [address, count] of [
        ['127.0.0.2', 32],
        ['127.0.0.3', 32],
        ['127.0.0.4', 32],
        ['127.0.0.5', 16],
      ] as const) {
        const held: Socket[] = [];
        for (let i = 0; i < count; i++) {
          const socket = from(address);
          expect(await answerOn(socket)).toMatch(/^HTTP\/1\.1 200/);
          held.push(socket);
        }
        byNetwork.set(address, held);
      }
      // A network at its cap is refused; each refusal closed an idle socket of another network.
      for (let i = 0; i < 5; i++) expect(await answerOn(from('127.0.0.3'))).toBe('');
      for (const socket of byNetwork.get('127.0.0.2') ?? []) {
        expect(await answerOn(socket)).toMatch(/^HTTP\/1\.1 200/);
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('leaves the per-network cap to the proxy when TRUST_PROXY says there is one', async () => {
    const config = testConfig({ port: 0, maxConnectionsPerNetwork: 2, trustProxy: ['127.0.0.1'] });
    const server = await startServer(config, { logger: false, webUi: false });
    const sockets: Socket[] = [];
    try {
      await server.ready;
      for (let i = 0; i < 4; i++) {
        const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
        sockets.push(socket);
        expect(await answerOn(socket)).toMatch(/^HTTP\/1\.1 200/);
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('refuses to start when the stream and export caps could hold every connection', async () => {
    const config = testConfig({ port: 0, maxConnections: 1000, maxStreamsTotal: 900, maxExportsTotal: 64 });
    const started = startServer(config, { logger: false, webUi: false });
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toThrow(/MAX_CONNECTIONS .*1000.*MAX_STREAMS_TOTAL \(900\).*at least 1072/);
  });

  // Red-team 2026-12-05 R3: a key no SECRET_KEY opens was retried for ever: never ready, never gone.
  it('stops with the key error as a setting when no SECRET_KEY opens the signing keys', async () => {
    const config = testConfig({ port: 0, jwtAlgorithm: 'ES256', logLevel: 'warn' });
    const shared = { databaseUrl: `sqlite:${join(config.dataDir, 'keys.db')}`, dataDir: config.dataDir };
    const first = await startServer({ ...config, ...shared }, { logger: false, webUi: false });
    if ((await first.ready) === undefined) throw new Error('the first server did not start');
    await first.close();
    const other = testConfig({ port: 0, jwtAlgorithm: 'ES256', ...shared });
    const startOther = () =>
      startServer(other, { logger: false, webUi: false, initialRetryDelayMs: 50, maxRetryDelayMs: 100 });
    // The database knows which secret its instances use (red-team 2026-12q Q2): refused before the keys.
    const second = await startOther();
    try {
      await expect(second.ready).rejects.toThrow(ConfigError);
      await expect(second.ready).rejects.toThrow(/SECRET_KEY is not the secret the other instances/);
    } finally {
      await second.close();
    }
    // A database from before that check (no fingerprint): the keys refuse the secret, and the
    // failed start records no fingerprint of it (the right secret must still be able to start).
    const raw = new SQLite(join(config.dataDir, 'keys.db'));
    raw.prepare('DELETE FROM secret_key_check').run();
    const third = await startOther();
    try {
      await expect(third.ready).rejects.toThrow(/cannot be decrypted/);
      expect(raw.prepare('SELECT count(*) AS n FROM secret_key_check').get()).toEqual({ n: 0 });
    } finally {
      await third.close();
      raw.close();
    }
    await expectStarts({ ...config, ...shared });
  });

  // Under JWT_ALG=HS256 (the default) the access-token keyring opens nothing sealed, so it proves
  // nothing about the secret; the ID-token keys stored in the database do.
  it('records no fingerprint of a secret the stored ID-token keys refuse (HS256, database from before 036a)', async () => {
    const config = testConfig({ port: 0, logLevel: 'warn' });
    const shared = { databaseUrl: `sqlite:${join(config.dataDir, 'hs.db')}`, dataDir: config.dataDir };
    const first = await startServer({ ...config, ...shared }, { logger: false, webUi: false });
    try {
      const app = await first.ready;
      if (app === undefined) throw new Error('the first server did not start');
      // ID tokens' ES256 keys are made on first use, sealed under the first secret.
      const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      expect(jwks.json<{ keys: unknown[] }>().keys.length).toBeGreaterThan(0);
    } finally {
      await first.close();
    }
    const raw = new SQLite(join(config.dataDir, 'hs.db'));
    try {
      raw.prepare('DELETE FROM secret_key_check').run();
      const other = testConfig({ port: 0, logLevel: 'silent', ...shared });
      const wrong = await startServer(other, { logger: false, webUi: false });
      await wrong.ready.catch(() => undefined);
      await wrong.close();
      expect(raw.prepare('SELECT count(*) AS n FROM secret_key_check').get()).toEqual({ n: 0 });
    } finally {
      raw.close();
    }
    await expectStarts({ ...config, ...shared });
  });

  it('gives headers half of the request timeout, 15 s of the default 30 s, checked every 5 s', () => {
    // What `gatehouse serve` runs with (it passes no requestTimeoutMs).
    expect(requestTimeouts()).toEqual({
      requestTimeout: 30_000,
      headersTimeout: 15_000,
      connectionsCheckingInterval: 5_000,
    });
    expect(requestTimeouts(1_000)).toEqual({
      requestTimeout: 1_000,
      headersTimeout: 500,
      connectionsCheckingInterval: 250,
    });
  });

  // The defaults' proportions at a fifth of their length (the defaults above took 15–20 s of wall
  // clock to wait out): a 6 s request timeout gives headers 3 s, checked every 1.5 s, and the
  // client sends a byte every 2 s, as it sent one every 10 s against 15 s.
  it('cuts a client that sends its headers one byte at a time at the headers timeout (slowloris)', {
    timeout: 40_000,
  }, async () => {
    const { headersTimeout, connectionsCheckingInterval } = requestTimeouts(6_000);
    const byteEvery = 2_000;
    const server = await startServer(testConfig({ port: 0 }), {
      logger: false,
      webUi: false,
      requestTimeoutMs: 6_000,
    });
    try {
      await server.ready;
      const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      const started = Date.now();
      const header = `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ${'a'.repeat(100)}`;
      let sent = 0;
      const write = () => {
        if (!socket.destroyed) socket.write(header[sent++] ?? 'a');
      };
      write();
      // Each byte re-arms the 60 s send timeout, so only the headers timeout can end this.
      const trickle = setInterval(write, byteEvery);
      await closed;
      clearInterval(trickle);
      const elapsed = Date.now() - started;
      expect(received).toMatch(/^HTTP\/1\.1 408/);
      // The headers timeout, plus at most one pass of Node's connection check (and the same 0.5 s
      // and 2 s of slack as at full length).
      const latest = headersTimeout + connectionsCheckingInterval + 2_000;
      expect(elapsed).toBeGreaterThanOrEqual(headersTimeout - 500);
      expect(elapsed).toBeLessThan(latest);
      expect(sent).toBeLessThanOrEqual(Math.ceil(latest / byteEvery));
    } finally {
      await server.close();
    }
  });
});

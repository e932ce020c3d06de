import { connect, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PrivatePostgres,
  runPostgresFaultTests,
  startPrivatePostgres,
} from '../support/private-postgres.js';
import { callServer, jsonPost, passwordGrant, readinessBecomes } from '../support/server-calls.js';
import { type ServerProcess, startServerProcess } from '../support/server-process.js';
import {
  runStalledResolverTests,
  type StalledResolver,
  startStalledResolver,
} from '../support/stalled-resolver.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

/**
 * Fault review, third part: a DNS server that stops answering, for the Redis host name and then
 * for the database's. `getaddrinfo` runs on libuv's thread pool, which runs at most two look-ups
 * at once (half its four threads) and queues the rest; the clients abandon a look-up at their
 * connect timeout but the thread stays blocked until the resolver times out. The real server
 * process, in a mount namespace whose resolv.conf names a resolver that never answers (10 s per
 * look-up) and whose hosts file names the database; PostgreSQL is private, reached over TCP
 * through a proxy to its Unix socket so that connecting takes a look-up.
 */

const PASSWORD = 'correct horse battery';
const CONNECT_TIMEOUT_MS = 2000;
/** The connect timeout plus slack for two busy cores: an answer later than this is a hang. */
const HANG_BOUND_MS = CONNECT_TIMEOUT_MS + 3000;
/** Calls that must succeed (sign-up, logins: real argon2id hashing) get a wide bound. */
const SUCCESS_BOUND_MS = 30_000;
const DATABASE_HOST = 'db.fault.test';
const REDIS_HOST = 'redis.stall.test';

const call = (server: ServerProcess, path: string, init: RequestInit = {}, boundMs = HANG_BOUND_MS) =>
  callServer(server, path, init, boundMs);

/** A TCP listener on 127.0.0.1 that pipes each connection to the private cluster's Unix socket. */
async function proxyToSocket(socketPath: string): Promise<{ server: Server; port: number }> {
  const server = createServer((client) => {
    const upstream = connect(socketPath);
    client.pipe(upstream).pipe(client);
    // pg_terminate_backend closes the upstream side: the server under test must see its socket end.
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0 };
}

describe.skipIf(!runPostgresFaultTests || !runStalledResolverTests)(
  'a DNS resolver that never answers (stalled getaddrinfo, real server process)',
  // One outage told in order: Redis's name stalls, then the database's, then it answers again.
  { shuffle: false },
  () => {
    let postgres: PrivatePostgres;
    let resolver: StalledResolver;
    let proxy: Server;
    let server: ServerProcess;
    const email = `dns.${process.pid}@example.com`;

    /** Ends the server's PostgreSQL connections, so the next query must connect (and look up). */
    const dropConnections = () =>
      Number(
        postgres.psql(
          "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'gatehouse_dns_test') t",
        ),
      );

    beforeAll(async () => {
      postgres = await startPrivatePostgres();
      const socketDir = new URL(postgres.url).searchParams.get('host') ?? '';
      const proxied = await proxyToSocket(`${socketDir}/.s.PGSQL.${postgres.port}`);
      proxy = proxied.server;
      resolver = await startStalledResolver({ [DATABASE_HOST]: '127.0.0.1' }, 10);
      server = await startServerProcess(
        {
          DATA_DIR: tempDir('gh-dns-'),
          DATABASE_URL: `postgres://postgres@${DATABASE_HOST}:${proxied.port}/postgres?application_name=gatehouse_dns_test`,
          DATABASE_CONNECT_TIMEOUT: `${CONNECT_TIMEOUT_MS}ms`,
          DATABASE_STATEMENT_TIMEOUT: '2s',
          REDIS_URL: `redis://${REDIS_HOST}:6379`,
          REDIS_CONNECT_TIMEOUT: '1s',
          REDIS_MAX_RECONNECT_DELAY: '200ms',
          SECRET_KEY: 'fault-test-secret-fault-test-secret-0123456789',
          LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
        },
        resolver.wrapper,
      );
      await server.waitFor(/Gatehouse is ready/, 60_000);
      expect(
        (await call(server, '/auth/register', jsonPost({ email, password: PASSWORD }), SUCCESS_BOUND_MS))
          .status,
      ).toBe(201);
    });

    afterAll(async () => {
      if (server?.alive()) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
      await resolver?.stop();
      proxy?.close();
      postgres?.dispose();
    });

    it('keeps new database connections (and logins) working while the Redis host name stalls', async () => {
      await resolver.queried(REDIS_HOST);
      // Three rounds, each forcing new pooled connections: meanwhile ioredis reconnects its two
      // connections every ~1.2 s, each attempt a look-up. Before the fix those look-ups filled
      // both of libuv's look-up threads and queued behind them (eight outstanding after 20 s), so
      // the database's name, which the hosts file answers at once, waited past the connect
      // timeout: 503 DATABASE_UNAVAILABLE with a healthy database.
      for (let round = 0; round < 3; round += 1) {
        const login = await call(server, '/token', passwordGrant(email, PASSWORD), SUCCESS_BOUND_MS);
        expect(login.status, `${JSON.stringify(login.body)}\n${server.output().slice(-3000)}`).toBe(200);
        const before = server.output().match(/database connection lost/g)?.length ?? 0;
        const dropped = dropConnections();
        expect(dropped).toBeGreaterThan(0);
        // Every ended connection is logged once: the next login must not pick one still closing.
        await server.waitFor(new RegExp(`(database connection lost[\\s\\S]*){${before + dropped}}`));
      }
      const login = await call(server, '/token', passwordGrant(email, PASSWORD), SUCCESS_BOUND_MS);
      expect(login.status, `${JSON.stringify(login.body)}\n${server.output().slice(-3000)}`).toBe(200);
      // One look-up of Redis's name at a time, however many reconnects (before: one per connection).
      expect(resolver.mostOutstanding(REDIS_HOST)).toBe(1);
      expect((await call(server, '/readyz')).body).toMatchObject({
        status: 'ready',
        database: 'up',
        redis: 'down',
      });
    });

    it('answers 503 within the connect timeout while the database name stalls, with one look-up outstanding', async () => {
      resolver.setHosts({});
      dropConnections();
      // A burst of logins, each needing a connection: the pool tries one connect per waiting
      // client, and before the fix each queued a look-up of its own.
      const logins = await Promise.all(
        Array.from({ length: 12 }, () => call(server, '/token', passwordGrant(email, PASSWORD))),
      );
      for (const login of logins) {
        expect(login.status).toBe(503);
        expect(login.body).toMatchObject({ error: 'temporarily_unavailable', code: 'DATABASE_UNAVAILABLE' });
        expect(Number(login.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      expect((await call(server, '/healthz')).status).toBe(200);
      expect(resolver.mostOutstanding(DATABASE_HOST)).toBe(1);
      expect(server.alive()).toBe(true);
    });

    it('is ready and signs in again once the name resolves, with no restart', async () => {
      resolver.setHosts({ [DATABASE_HOST]: '127.0.0.1' });
      // The look-up outstanding when the name came back still waits out the resolver's timeout:
      // connects that join it fail until then (at most one resolver timeout).
      const ready = await readinessBecomes(server, 200, HANG_BOUND_MS, resolver.timeoutMs + 10_000);
      expect(ready.body).toMatchObject({ status: 'ready', database: 'up' });
      expect((await call(server, '/token', passwordGrant(email, PASSWORD), SUCCESS_BOUND_MS)).status).toBe(
        200,
      );
    });
  },
);

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from './support/run-cli.js';
import { useTempDirs } from './support/temp-dirs.js';

const tempDir = useTempDirs();

/**
 * A stand-in for PostgreSQL's first answer: node-postgres opens with an SSLRequest (8 bytes) when
 * the URL asks for TLS; the server answers `N` (no TLS here) or `S` and then the TLS handshake.
 * Nothing past that is needed: the client fails at the handshake.
 */
function startFakePostgres(answer: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.once('data', () => answer(socket));
    socket.on('error', () => {});
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : 0 });
    });
  });
}

/** A self-signed certificate for `db.internal`, as a private CA-less database would present. */
function selfSignedCertificate(): { key: Buffer; cert: Buffer } {
  const dir = tempDir('gh-tls-');
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  execFileSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=db.internal',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

describe('CLI commands on a PostgreSQL whose TLS does not fit DATABASE_URL', { timeout: 60_000 }, () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
  });

  // Red-team 2026-12q Q1: `sslmode=require` (the common production setting) against a server
  // without TLS, or one whose certificate Node does not trust, exited 70 "internal error …
  // report it": a setting to fix, said as a bug.
  it('says TLS failed and names DATABASE_URL (78) when the server has no TLS', async () => {
    const { server, port } = await startFakePostgres((socket) => socket.write('N'));
    servers.push(server);
    const result = await run(['migrate'], {
      DATA_DIR: tempDir('gh-tls-'),
      DATABASE_URL: `postgres://gatehouse:hunter2@127.0.0.1:${port}/gatehouse?sslmode=require`,
    });
    expect(result.code).toBe(78);
    const lines = result.stderr.split('\n').filter((line) => line.startsWith('gatehouse:'));
    expect(lines).toEqual([
      expect.stringMatching(
        /^gatehouse: TLS to the database at postgres:\/\/gatehouse:\*\*\*@127\.0\.0\.1:\d+\/gatehouse\?sslmode=require failed \(The server does not support SSL connections\): fix DATABASE_URL/,
      ),
    ]);
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stderr).not.toContain('internal error');
  });

  it('says TLS failed (78) when the certificate is not trusted', async () => {
    const { key, cert } = selfSignedCertificate();
    const { server, port } = await startFakePostgres((socket) => {
      socket.write('S');
      const tls = new TLSSocket(socket, { isServer: true, key, cert });
      tls.on('error', () => {});
    });
    servers.push(server);
    const result = await run(
      ['create-user', '--email', 'a@example.com'],
      {
        DATA_DIR: tempDir('gh-tls-'),
        DATABASE_URL: `postgres://gatehouse@127.0.0.1:${port}/gatehouse?sslmode=verify-full`,
      },
      'correct horse battery staple\n',
    );
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(
      /^gatehouse: TLS to the database at postgres:\/\/gatehouse@127\.0\.0\.1:\d+\/gatehouse\?sslmode=verify-full failed \(self[- ]signed certificate\): fix DATABASE_URL/m,
    );
  });
});

/**
 * PostgreSQL's ErrorResponse (protocol 3.0, §55.7): severity, SQLSTATE and message fields, as a
 * server sends it to a startup message it turns down, before closing the connection.
 */
function errorResponse(sqlstate: string, message: string): Buffer {
  const fields = Buffer.concat(
    [`SFATAL`, `VFATAL`, `C${sqlstate}`, `M${message}`].map((field) => Buffer.from(`${field}\0`)),
  );
  const body = Buffer.concat([fields, Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

describe('gatehouse serve on a PostgreSQL that turns DATABASE_URL down', { timeout: 60_000 }, () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
  });

  // Newcomer review 2026-12-06: a misspelt database name was retried for ever ("start-up attempt
  // failed; retrying", the server never ready), though the README lists a refused DATABASE_URL
  // under exit 78; the other commands stopped with it.
  it.each([
    ['no such database', '3D000', 'database "nosuchdb" does not exist'],
    ['a wrong password', '28P01', 'password authentication failed for user "gatehouse"'],
  ])('stops with the refusal and exit 78 (%s), without retrying', async (_case, sqlstate, message) => {
    const { server, port } = await startFakePostgres((socket) =>
      socket.end(errorResponse(sqlstate, message)),
    );
    servers.push(server);
    const result = await run(
      ['serve'],
      {
        DATA_DIR: tempDir('gh-refused-'),
        PORT: '0',
        DATABASE_URL: `postgres://gatehouse:hunter2@127.0.0.1:${port}/nosuchdb`,
      },
      undefined,
      { killAfterMs: 20_000 },
    );
    expect(result.code, result.stdout).toBe(78);
    const lines = result.stderr.split('\n').filter((line) => line.startsWith('gatehouse:'));
    expect(lines).toEqual([
      `gatehouse: the database at postgres://gatehouse:***@127.0.0.1:${port}/nosuchdb refused: ${message}; fix DATABASE_URL`,
    ]);
    expect(result.stdout).not.toContain('retrying');
    expect(result.stdout + result.stderr).not.toContain('hunter2');
  });

  it('stops with exit 78 when the TLS DATABASE_URL asks for cannot work', async () => {
    const { server, port } = await startFakePostgres((socket) => socket.write('N'));
    servers.push(server);
    const result = await run(
      ['serve'],
      {
        DATA_DIR: tempDir('gh-refused-'),
        PORT: '0',
        DATABASE_URL: `postgres://gatehouse@127.0.0.1:${port}/gatehouse?sslmode=require`,
      },
      undefined,
      { killAfterMs: 20_000 },
    );
    expect(result.code, result.stdout).toBe(78);
    expect(result.stderr).toMatch(/^gatehouse: TLS to the database at .* failed .*: fix DATABASE_URL/m);
  });

  it('still waits for a database that does not answer (an outage, not a setting)', async () => {
    const result = await run(
      ['serve'],
      {
        DATA_DIR: tempDir('gh-refused-'),
        PORT: '0',
        DATABASE_URL: 'postgres://gatehouse@127.0.0.1:1/gatehouse',
      },
      undefined,
      { killAfterMs: 3_000 },
    );
    expect(result.code).toBeNull();
    expect(result.stdout).toContain('start-up attempt failed; retrying');
  });
});

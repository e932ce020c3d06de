import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ServerProcess, startServerProcess } from '../support/server-process.js';

const PASSWORD = 'correct horse battery';
/**
 * Logins sent at once, each to an account of its own (one password check per account runs at a
 * time): one hashing, 64 queued (the queue's bound at concurrency 1), the rest refused (503).
 */
const LOGINS = 80;

/**
 * SIGTERM while the password-hash queue is full (a login flood, or a rolling deploy in one): every
 * queued login is an in-flight request. With time enough they all finish; with a grace period
 * shorter than the queue, the rest are cut off. Either way the process exits 0, and no client
 * gets a 500 or half an answer.
 */
describe('SIGTERM with a full password-hash queue (real process)', () => {
  const servers: ServerProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) if (server.alive()) server.child.kill('SIGKILL');
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  const serve = async (grace: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-shutdown-'));
    dirs.push(dir);
    const server = await startServerProcess({
      DATA_DIR: dir,
      COOKIE_SECURE: 'false',
      PASSWORD_HASH_CONCURRENCY: '1',
      SHUTDOWN_GRACE_PERIOD: grace,
      REGISTRATIONS_PER_HOUR: String(LOGINS),
      // "incoming request" lines are logged at debug: the test waits until every login arrived.
      LOG_LEVEL: 'debug',
    });
    servers.push(server);
    await server.waitFor(/Gatehouse is ready/);
    return server;
  };

  /** Logins the server has received so far (its "incoming request" log lines). */
  const arrived = (server: ServerProcess) =>
    server
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"incoming request"') && line.includes('"url":"/token"')).length;

  /**
   * Registers the accounts and sends every login at once; resolves once the server has received
   * them all (one hashing, the rest queued or refused), with the outcomes to come (status, or 0:
   * no answer).
   */
  const flood = async (server: ServerProcess) => {
    const emails = Array.from({ length: LOGINS }, (_, i) => `flood-${i}@example.com`);
    for (const email of emails) {
      const registered = await fetch(`${server.url}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: PASSWORD }),
      });
      expect(registered.status).toBe(201);
    }
    const outcomes = Promise.all(
      Array.from({ length: LOGINS }, async (_, i) => {
        try {
          const response = await fetch(`${server.url}/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
            body: new URLSearchParams({
              grant_type: 'password',
              username: emails[i] ?? '',
              password: PASSWORD,
            }),
          });
          const body = await response.text();
          // A whole answer: JSON (tokens, an RFC 6749 error, or problem+json), never a torn body.
          expect(() => JSON.parse(body), body).not.toThrow();
          return response.status;
        } catch {
          return 0;
        }
      }),
    );
    while (arrived(server) < LOGINS) await new Promise((resolve) => setTimeout(resolve, 5));
    return { outcomes };
  };

  it('lets every queued login finish within the grace period, then exits 0', {
    timeout: 60_000,
  }, async () => {
    const server = await serve('30s');
    const { outcomes } = await flood(server);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const statuses = await outcomes;
    // 200, or 503 for a login the full queue refused on arrival: nothing cut off, nothing failed.
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(60);
    expect(statuses.filter((status) => status !== 200 && status !== 503)).toEqual([]);
    expect(server.output()).toMatch(/"msg":"stopped"/);
    expect(server.output()).not.toMatch(/unhandled|uncaught|"level":(50|60)/i);
  });

  it('cuts the queue off after a short grace period and still exits 0, with no 500', {
    timeout: 60_000,
  }, async () => {
    const server = await serve('100ms');
    const { outcomes } = await flood(server);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const statuses = await outcomes;
    // 64 queued hashes take far longer than 100 ms: some logins were cut off (no answer) ...
    expect(statuses.filter((status) => status === 0).length).toBeGreaterThan(0);
    // ... and every answer that was sent is a whole one: a login, or 503.
    expect(statuses.filter((status) => status !== 0 && status !== 200 && status !== 503)).toEqual([]);
    expect(server.output()).toMatch(/"msg":"stopped"/);
    expect(server.output()).not.toMatch(/unhandled|uncaught|"level":60/i);
  });
});

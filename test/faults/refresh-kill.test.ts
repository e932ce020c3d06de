import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startServerProcess } from '../support/server-process.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

const CLIENTS = 6;
const PASSWORD = 'correct horse battery';

/**
 * Starts `gatehouse serve` on a free port and resolves once it is ready: it listens at once but
 * answers 503 until its core has started (see start-server.ts).
 */
async function serve(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const server = await startServerProcess({
    DATA_DIR: dataDir,
    REGISTRATIONS_PER_HOUR: '1000',
    // Generous for a loaded 2-core CI machine: the retries below come within a few seconds.
    REFRESH_REUSE_INTERVAL: '60',
  });
  await server.waitFor(/Gatehouse is ready/);
  return { child: server.child, url: server.url };
}

async function postToken(url: string, params: Record<string, string>) {
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

describe('refresh grace across a SIGKILL (compiled server, SQLite)', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('every client that retries its last refresh token after the restart keeps its session', async () => {
    const dataDir = tempDir('gh-refresh-kill-');
    const first = await serve(dataDir);
    children.push(first.child);

    // Each client: an account, a session, and the refresh token it would retry with.
    const last: string[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const email = `client${i}@example.com`;
      const registered = await fetch(`${first.url}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: PASSWORD }),
      });
      expect(registered.status).toBe(201);
      const login = await postToken(first.url, {
        grant_type: 'password',
        username: email,
        password: PASSWORD,
      });
      expect(login.status).toBe(200);
      last.push(login.body.refresh_token as string);
    }

    // Every client rotates in a loop; the server is killed once enough rotations went through,
    // so requests are in flight (some committed with their response lost, some not) when it dies.
    let rotations = 0;
    let killed = false;
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    const loops = last.map(async (_, i) => {
      for (;;) {
        const sent = last[i] as string;
        let result: Awaited<ReturnType<typeof postToken>>;
        try {
          result = await postToken(first.url, { grant_type: 'refresh_token', refresh_token: sent });
        } catch {
          return; // the server died under this request: `sent` is what the client retries
        }
        // Before the kill every rotation must succeed: the clients are honest.
        expect(result.status).toBe(200);
        last[i] = result.body.refresh_token as string;
        rotations += 1;
        if (rotations >= CLIENTS * 5 && !killed) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    });
    await Promise.all(loops);
    await exited;
    expect(killed).toBe(true);

    const second = await serve(dataDir);
    children.push(second.child);
    for (const [i, token] of last.entries()) {
      const retried = await postToken(second.url, { grant_type: 'refresh_token', refresh_token: token });
      expect(retried.status, `client ${i}: ${JSON.stringify(retried.body)}`).toBe(200);
      const me = await fetch(`${second.url}/users/me`, {
        headers: { authorization: `Bearer ${retried.body.access_token}` },
      });
      expect(me.status).toBe(200);
      // And the session goes on rotating normally.
      const next = await postToken(second.url, {
        grant_type: 'refresh_token',
        refresh_token: retried.body.refresh_token as string,
      });
      expect(next.status).toBe(200);
    }
    second.child.kill('SIGKILL');
  });
});

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where fault tests find Redis; they skip without it only when REQUIRE_SERVICES is not 1. */
const REDIS_SERVER = 'redis-server';

/** True when fault tests that need a private Redis can run (or must, in CI). */
export const runPrivateRedisTests = hasRedisServer() || process.env.REQUIRE_SERVICES === '1';

function hasRedisServer(): boolean {
  try {
    execFileSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A Redis server this test owns, listening on its own Unix socket only (`port 0` + `unixsocket` in
 * a private folder): fault tests kill, freeze and restart it without touching the machine's shared
 * Redis. Over TCP its port was free while the test had it killed, so under load another process
 * could take it and the server under test reconnect to somebody else's Redis (the race that broke
 * the PostgreSQL fault test, see private-postgres.ts); nothing else can create this socket file.
 * Nothing is persisted (`--save ""`, no AOF).
 */
export interface PrivateRedis {
  /** The socket file's absolute path. */
  readonly socketPath: string;
  /** `unix://<socketPath>`: what `REDIS_URL` / `redisUrl` take. */
  readonly url: string;
  /** ioredis options that reach this server (ioredis itself reads no `unix://` URL). */
  readonly clientOptions: { readonly path: string };
  /** SIGKILL, resolved once the process has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing answers, like a partition or a GC pause. */
  freeze(): void;
  /** SIGCONT after {@link freeze}. */
  thaw(): void;
  /** Starts a fresh server on the same socket (after {@link kill}); resolves when it accepts connections. */
  restart(): Promise<void>;
  /** Kills the server if it runs (thawing it first) and deletes its folder. */
  stop(): Promise<void>;
}

/** Spawns redis-server and resolves once it logs that it accepts connections. */
function launch(socketPath: string, dir: string): Promise<ChildProcess> {
  // A SIGKILLed server leaves its socket file behind; a new one unlinks it before binding.
  rmSync(socketPath, { force: true });
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      '0',
      '--unixsocket',
      socketPath,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // Redis 7 says "ready to accept connections at <socket>" (unix) or "... tcp": either case.
      if (/ready to accept connections/i.test(output)) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.resume();
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
  });
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

/** Starts a {@link PrivateRedis}. Always `stop()` it (e.g. in `afterAll`). */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-redis-'));
  const socketPath = join(dir, 'redis.sock');
  let child: ChildProcess | undefined = await launch(socketPath, dir);
  const kill = async () => {
    const current = child;
    child = undefined;
    if (current === undefined) return;
    current.kill('SIGCONT');
    current.kill('SIGKILL');
    await exited(current);
  };
  return {
    socketPath,
    url: `unix://${socketPath}`,
    clientOptions: { path: socketPath },
    kill,
    freeze() {
      child?.kill('SIGSTOP');
    },
    thaw() {
      child?.kill('SIGCONT');
    },
    async restart() {
      await kill();
      child = await launch(socketPath, dir);
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

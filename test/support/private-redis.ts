import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { freePort } from './private-postgres.js';

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
 * A Redis server this test owns, on a free port: fault tests kill, freeze and restart it without
 * touching the machine's shared Redis. Nothing is persisted (`--save ""`, no AOF).
 */
export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL, resolved once the process has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing answers, like a partition or a GC pause. */
  freeze(): void;
  /** SIGCONT after {@link freeze}. */
  thaw(): void;
  /** Starts a fresh server on the same port (after {@link kill}); resolves when it accepts connections. */
  restart(): Promise<void>;
  /** Kills the server if it runs (thawing it first). */
  stop(): Promise<void>;
}

/** Spawns redis-server and resolves once it logs that it accepts connections. */
function launch(port: number): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
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
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port);
  const kill = async () => {
    const current = child;
    child = undefined;
    if (current === undefined) return;
    current.kill('SIGCONT');
    current.kill('SIGKILL');
    await exited(current);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    freeze() {
      child?.kill('SIGSTOP');
    },
    thaw() {
      child?.kill('SIGCONT');
    },
    async restart() {
      await kill();
      child = await launch(port);
    },
    stop: kill,
  };
}

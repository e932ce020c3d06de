import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** The compiled CLI (`npm test`'s global setup builds dist/). */
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

/**
 * `gatehouse serve` as a real child process, so a crash shows as what it is: an exit. Its JSON log
 * lines are collected and can be awaited.
 */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output (already there or to come). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** True while the process runs. */
  alive(): boolean;
  /** Base URL, known once the server listens. */
  url: string;
}

/**
 * Starts `gatehouse serve` on a free port with `env` and waits until it listens. `wrapper` is an
 * argv prefix that runs it (e.g. a stalled resolver's namespace); it must `exec` the server, so
 * the child's PID is the server's.
 */
export async function startServerProcess(
  env: Record<string, string>,
  wrapper: readonly string[] = [],
): Promise<ServerProcess> {
  const [command = process.execPath, ...args] = [...wrapper, process.execPath, CLI, 'serve'];
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      running = false;
      for (const listener of listeners) listener();
      resolve(code);
    });
  });
  const waitFor = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(text);
        if (match !== null) {
          done();
          resolve(match);
        } else if (!running) {
          done();
          reject(new Error(`server exited before printing ${pattern}:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${pattern}:\n${text.slice(-3000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  const server: ServerProcess = {
    child,
    output: () => text,
    waitFor,
    exited,
    alive: () => running,
    url: '',
  };
  // A server that never says where it listens is never handed to the caller, so nobody else could
  // stop it: it outlived the test run (found by the fault review, two strays after a LOG_LEVEL=warn try).
  const [, url] = await waitFor(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/).catch((error: unknown) => {
    if (running) child.kill('SIGKILL');
    throw error;
  });
  server.url = url ?? '';
  return server;
}

/**
 * For a `describe` whose tests start real servers: `serve(env)` starts one and waits until it is
 * ready; every server still running is killed after each test.
 */
export function useServerProcesses(): (env: Record<string, string>) => Promise<ServerProcess> {
  const servers: ServerProcess[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) if (server.alive()) server.child.kill('SIGKILL');
  });
  return async (env) => {
    const server = await startServerProcess(env);
    servers.push(server);
    await server.waitFor(/Gatehouse is ready/);
    return server;
  };
}

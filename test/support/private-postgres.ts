import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PostgreSQL 15's server binaries (Debian's layout). */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * Fault tests run where the binaries are installed, and always in CI (REQUIRE_SERVICES=1), where a
 * missing binary must fail the run rather than skip it.
 */
export const runPostgresFaultTests =
  (existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'pg_ctl'))) ||
  process.env.REQUIRE_SERVICES === '1';

/**
 * A PostgreSQL server this test process started and alone controls (never the shared one): it can
 * be stopped, killed, frozen and restarted at will. Each control waits until it has taken effect.
 */
export interface PrivatePostgres {
  /** TCP port on 127.0.0.1. */
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  /** Starts the server (again) and waits until it accepts connections. */
  start(): void;
  /** Fast shutdown (`pg_ctl stop -m fast`): sessions are disconnected, then the server exits. */
  stop(): void;
  /** SIGKILL to the postmaster and every backend: a crash, no goodbye to clients. */
  kill(): void;
  /** SIGSTOP to every server process: connections stay open but nothing answers (a partition). */
  freeze(): void;
  /** SIGCONT to every server process. */
  thaw(): void;
  /** Runs one SQL statement through `psql` (e.g. `pg_terminate_backend`) and returns its output. */
  psql(statement: string): string;
  /** Stops the server (immediately) and deletes its files. Safe to call twice. */
  dispose(): void;
}

/** The state letter in `/proc/<pid>/stat` (R, S, T, Z, …), or undefined once the process is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}

function isZombie(pid: number): boolean {
  const state = processState(pid);
  return state === undefined || state === 'Z';
}

/** Blocks the thread for `ms` (the fault helpers are synchronous on purpose). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Finds a free TCP port on 127.0.0.1 by binding port 0 and releasing it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function asPostgres(command: string, args: string[]): string {
  // initdb, pg_ctl and postgres refuse to run as root; run them as the postgres OS user.
  const argv = process.getuid?.() === 0 ? ['-u', 'postgres', '--', command, ...args] : args;
  return execFileSync(process.getuid?.() === 0 ? 'runuser' : command, argv, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Creates a cluster in a fresh temporary folder (trust auth, fsync off: it is thrown away; commits
 * synchronous, so a killed server keeps what it committed) and
 * starts it on a free port. The server is stopped and deleted when the process exits, even if the
 * test forgets to dispose it.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const root = mkdtempSync(join(tmpdir(), 'gh-pg-'));
  const data = join(root, 'data');
  const socketDir = join(root, 'sock');
  chmodSync(root, 0o755);
  const pgUser = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const pgGroup = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  if (process.getuid?.() === 0) chownSync(root, pgUser, pgGroup);
  asPostgres(join(PG_BIN, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
    '-E',
    'UTF8',
  ]);
  asPostgres('mkdir', ['-p', socketDir]);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    `-k ${socketDir}`,
    // Unix socket only, in this cluster's own folder. Over TCP, the port picked by freePort() is
    // free again while the test has the server stopped or killed, and anything else on the machine
    // (another suite's server, an ephemeral client port) could take it: the restarted cluster then
    // fails to bind, or worse, the server under test reconnects to somebody else's PostgreSQL
    // (seen in CI: logins answered invalid_grant, pg_terminate_backend found no connections).
    "-c listen_addresses=''",
    // fsync and full-page writes only guard against the OS crashing, which no test does. Commits
    // stay synchronous: a killed server must keep what it had committed, as a real one does
    // (with synchronous_commit=off a kill lost a session revocation committed just before it, and
    // mfa-login-database.test.ts then found that session live).
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=50',
  ].join(' ');
  const log = join(root, 'server.log');
  const pgCtl = (...args: string[]) => asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, ...args]);

  const serverPids = (): number[] => {
    const pidFile = join(data, 'postmaster.pid');
    if (!existsSync(pidFile)) return [];
    const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(postmaster) || postmaster <= 0) return [];
    // The postmaster forks one process per connection and background worker: freezing or killing
    // the server means signalling all of them, found through /proc's parent links.
    const children = readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
        } catch {
          return false;
        }
      })
      .map(Number);
    return [postmaster, ...children];
  };
  const signalAll = (signal: NodeJS.Signals) => {
    for (const pid of serverPids()) {
      try {
        process.kill(pid, signal);
      } catch {}
    }
  };

  let disposed = false;
  const disposeAtExit = () => server.dispose();
  const server: PrivatePostgres = {
    port,
    // node-postgres reads `host` from the query string as the socket folder (libpq does the same).
    url: `postgres://postgres@localhost:${port}/postgres?host=${encodeURIComponent(socketDir)}`,
    start: () => {
      try {
        pgCtl('-o', options, '-l', log, '-w', '-t', '30', 'start');
      } catch (error) {
        throw new Error(`private PostgreSQL did not start:\n${readFileSync(log, 'utf8').slice(-2000)}`, {
          cause: error,
        });
      }
    },
    stop: () => {
      pgCtl('-m', 'fast', '-w', 'stop');
    },
    kill: () => {
      const pids = serverPids();
      signalAll('SIGKILL');
      // Wait until they are really gone: a backend still holding the shared memory segment makes
      // the next start refuse ("pre-existing shared memory block is still in use").
      const deadline = Date.now() + 10_000;
      while (pids.some((pid) => existsSync(`/proc/${pid}`) && !isZombie(pid)) && Date.now() < deadline) {
        sleepSync(20);
      }
      // The next start must not find stale lock files left by the dead postmaster.
      rmSync(join(data, 'postmaster.pid'), { force: true });
      rmSync(join(socketDir, `.s.PGSQL.${port}.lock`), { force: true });
      rmSync(join(socketDir, `.s.PGSQL.${port}`), { force: true });
    },
    freeze: () => {
      // Stop the postmaster first so it forks no more backends, then every child, scanning again
      // until a scan finds none not yet stopped: a backend forked for a connection while the first
      // scan ran was missed before and went on answering queries (a login answered 200 "while
      // frozen" in CI).
      const stopped = new Set<number>();
      for (let scan = 0; scan < 20; scan++) {
        const fresh = serverPids().filter((pid) => !stopped.has(pid));
        if (fresh.length === 0 && scan > 0) break;
        for (const pid of fresh) {
          try {
            process.kill(pid, 'SIGSTOP');
          } catch {}
          stopped.add(pid);
        }
        // A fork the postmaster was inside when the signal came finishes first: wait until it is
        // really stopped before the next scan.
        const deadline = Date.now() + 1000;
        const running = (pid: number) => !['T', 'Z', undefined].includes(processState(pid));
        while ([...stopped].some(running)) {
          if (Date.now() > deadline) break;
          sleepSync(5);
        }
      }
    },
    thaw: () => signalAll('SIGCONT'),
    psql: (statement) =>
      asPostgres(join(PG_BIN, 'psql'), [
        '-h',
        socketDir,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-Atc',
        statement,
      ]),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      // A disposed server needs no exit hook: one left per server tripped Node's listener-leak warning.
      process.off('exit', disposeAtExit);
      signalAll('SIGCONT');
      try {
        pgCtl('-m', 'immediate', '-w', 'stop');
      } catch {
        signalAll('SIGKILL');
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  process.once('exit', disposeAtExit);
  server.start();
  return server;
}

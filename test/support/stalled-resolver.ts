import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A resolver that receives every DNS query and never answers, and the wrapper that runs a process
 * with it as its only name server. Deterministic and offline: glibc's `getaddrinfo` then blocks for
 * the resolver timeout written here (one try), exactly what a black-holed DNS server does to a
 * real host. The process runs in a mount namespace of its own (`unshare --mount`) where this
 * resolv.conf and hosts file are bind-mounted over /etc's: nothing else on the machine sees them.
 * Needs root (the fault tests run as root already: see private-postgres.ts).
 */
export interface StalledResolver {
  /** Argv prefix: `[...wrapper, command, ...args]` runs `command` with this resolver. */
  readonly wrapper: readonly string[];
  /** The resolver timeout written to resolv.conf: how long each look-up blocks, in ms. */
  readonly timeoutMs: number;
  /**
   * The most look-ups of `name` outstanding at once so far: glibc sends each look-up's queries
   * from a socket of its own, so a look-up is a source port, outstanding for {@link timeoutMs}
   * after its first query (less a second of margin).
   */
  mostOutstanding(name: string): number;
  /** Resolves once a query for `name` has arrived. */
  queried(name: string): Promise<void>;
  /**
   * Rewrites the hosts file in place (the bind mount keeps pointing at it; glibc reads it on every
   * look-up): a name taken out of it goes to the stalled resolver from the next look-up on.
   */
  setHosts(hosts: Record<string, string>): void;
  /** Closes the resolver and deletes its files. */
  stop(): Promise<void>;
}

/** True where the wrapper can run: as root, with util-linux's `unshare`; always in CI. */
export const runStalledResolverTests = canUnshare() || process.env.REQUIRE_SERVICES === '1';

function canUnshare(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('unshare', ['--mount', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The question's name of a DNS query (RFC 1035 §4.1.2: labels after the 12-byte header). */
function questionName(message: Buffer): string {
  const labels: string[] = [];
  let offset = 12;
  while (offset < message.length) {
    const length = message[offset] ?? 0;
    if (length === 0) break;
    labels.push(message.subarray(offset + 1, offset + 1 + length).toString('ascii'));
    offset += 1 + length;
  }
  return labels.join('.').toLowerCase();
}

/**
 * Starts a {@link StalledResolver} on a random loopback address (port 53, as resolv.conf allows no
 * other), with `hosts` (name → address) as the process's /etc/hosts besides `localhost`.
 */
export async function startStalledResolver(
  hosts: Record<string, string>,
  timeoutSeconds = 30,
): Promise<StalledResolver> {
  const socket = createSocket('udp4');
  // Look-ups by name: source port → when its first query came.
  const seen = new Map<string, Map<number, number>>();
  const waiters = new Map<string, Array<() => void>>();
  socket.on('message', (message, remote) => {
    const name = questionName(message);
    const ports = seen.get(name) ?? new Map<number, number>();
    seen.set(name, ports);
    if (!ports.has(remote.port)) ports.set(remote.port, performance.now());
    for (const wake of waiters.get(name)?.splice(0) ?? []) wake();
  });
  const address = await new Promise<string>((resolve, reject) => {
    const attempt = (triesLeft: number) => {
      // 127/8 is all loopback on Linux: a random address keeps parallel files apart.
      const candidate = `127.${53 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
      const onError = (error: Error) => (triesLeft > 0 ? attempt(triesLeft - 1) : reject(error));
      socket.once('error', onError);
      socket.bind(53, candidate, () => {
        socket.off('error', onError);
        resolve(candidate);
      });
    };
    attempt(5);
  });
  const dir = mkdtempSync(join(tmpdir(), 'gh-resolver-'));
  const resolvConf = join(dir, 'resolv.conf');
  const hostsFile = join(dir, 'hosts');
  writeFileSync(resolvConf, `nameserver ${address}\noptions timeout:${timeoutSeconds} attempts:1\n`);
  const setHosts = (entries: Record<string, string>) =>
    writeFileSync(
      hostsFile,
      `${['127.0.0.1 localhost', ...Object.entries(entries).map(([name, ip]) => `${ip} ${name}`)].join('\n')}\n`,
    );
  setHosts(hosts);
  const timeoutMs = timeoutSeconds * 1000;
  return {
    // `unshare` without --fork execs: the command keeps the child's PID, so killing it kills it.
    wrapper: [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"',
      'sh',
      resolvConf,
      hostsFile,
    ],
    timeoutMs,
    setHosts,
    mostOutstanding(name) {
      const starts = [...(seen.get(name)?.values() ?? [])].sort((a, b) => a - b);
      const window = timeoutMs - 1000;
      let most = 0;
      for (const [index, start] of starts.entries()) {
        most = Math.max(most, starts.filter((other, j) => j >= index && other - start < window).length);
      }
      return most;
    },
    queried(name) {
      if (seen.has(name.toLowerCase())) return Promise.resolve();
      return new Promise((resolve) => {
        const list = waiters.get(name.toLowerCase()) ?? [];
        list.push(resolve);
        waiters.set(name.toLowerCase(), list);
      });
    },
    async stop() {
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

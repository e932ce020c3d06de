import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** The compiled CLI (the global setup builds dist/ before any test runs). */
export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

/** What a CLI run printed and how it exited. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the compiled CLI with `args`, only `env` (and PATH) set, and `input` on stdin. With
 * `killAfterMs`, a run still going then is killed (SIGKILL; `code` null): for a command that must
 * stop by itself, so that the bug (it never stops) fails the test instead of hanging it.
 */
export function run(
  args: string[],
  env: Record<string, string>,
  input?: string,
  options: { killAfterMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    if (options.killAfterMs !== undefined) {
      const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
      child.on('close', () => clearTimeout(timer));
    }
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** A confidential `client_credentials` client made with `gatehouse clients create`. */
export interface ServiceClient {
  clientId: string;
  clientSecret: string;
  /** Its `Authorization: Basic` header value (RFC 6749 §2.3.1: id and secret form-encoded first). */
  basic: string;
}

/**
 * Registers a confidential client for the `client_credentials` grant with `scope`, through the
 * compiled CLI on `env`'s database (throws, with the CLI's stderr, when the command fails).
 */
export async function createServiceClient(
  env: Record<string, string>,
  scope: string,
  name = 'Billing',
): Promise<ServiceClient> {
  const created = await run(
    [
      'clients',
      'create',
      '--name',
      name,
      '--confidential',
      '--grant',
      'client_credentials',
      '--scope',
      scope,
    ],
    env,
  );
  if (created.code !== 0) throw new Error(`clients create exited ${created.code}: ${created.stderr}`);
  const client = JSON.parse(created.stdout) as { client_id: string; client_secret: string };
  const pair = `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`;
  return {
    clientId: client.client_id,
    clientSecret: client.client_secret,
    basic: `Basic ${Buffer.from(pair).toString('base64')}`,
  };
}

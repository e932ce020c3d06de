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

/** Runs the compiled CLI with `args`, only `env` (and PATH) set, and `input` on stdin. */
export function run(args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
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

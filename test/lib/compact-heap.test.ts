import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const MODULE = join(import.meta.dirname, '..', '..', 'dist', 'src', 'lib', 'compact-heap.js');

/**
 * compactHeap changes V8 flags of the whole process, so it runs in a child of its own. The child
 * fragments its old generation the way start-up does (many objects promoted, most of them then
 * dropped), compacts, and reports what it saw. V8's `cachedDataVersionTag()` hashes every flag's
 * value, so an unchanged tag shows the flags were all put back.
 */
const CHILD = `
import { cachedDataVersionTag } from 'node:v8';
import { runInNewContext } from 'node:vm';
const { compactHeap } = await import(${JSON.stringify(MODULE)});
const kept = [];
let all = [];
for (let i = 0; i < 200_000; i += 1) all.push({ i, text: 'x'.repeat(40) + i });
// Survive two scavenges, so they are promoted to the old generation.
await new Promise((resolve) => setTimeout(resolve, 50));
for (let i = 0; i < all.length; i += 10) kept.push(all[i]);
all = [];
const tag = cachedDataVersionTag();
const hadGc = typeof globalThis.gc;
const result = compactHeap();
const again = compactHeap();
process.stdout.write('RESULT ' + JSON.stringify({
  result,
  again,
  kept: kept.length,
  hadGc,
  gcAfter: typeof globalThis.gc,
  gcInNewContext: runInNewContext('typeof gc'),
  flagsRestored: cachedDataVersionTag() === tag,
}) + '\\n');
`;

interface ChildReport {
  result: { ok: boolean; heapBeforeBytes: number; heapAfterBytes: number; cpuMs: number };
  again: { ok: boolean };
  kept: number;
  hadGc: string;
  gcAfter: string;
  gcInNewContext: string;
  flagsRestored: boolean;
}

async function compactInChild(flags: string[]): Promise<{ report: ChildReport; gcLines: string[] }> {
  const { stdout } = await run(
    process.execPath,
    [...flags, '--trace-gc', '--input-type=module', '-e', CHILD],
    { env: { PATH: process.env.PATH ?? '' } },
  );
  const line = stdout.split('\n').find((text) => text.startsWith('RESULT '));
  if (line === undefined) throw new Error(`no result from the child:\n${stdout}`);
  return {
    report: JSON.parse(line.slice('RESULT '.length)) as ChildReport,
    // --trace-gc names a collection asked for through gc() "testing".
    gcLines: stdout.split('\n').filter((text) => /Mark-Compact .* testing/.test(text)),
  };
}

describe('compactHeap', { timeout: 60_000 }, () => {
  it('without --expose-gc: releases the fragmented pages, leaves no gc() behind and every V8 flag as it was', async () => {
    const { report, gcLines } = await compactInChild(['--max-semi-space-size=1']);
    expect(report.result.ok).toBe(true);
    expect(report.again.ok).toBe(true);
    expect(report.kept).toBe(20_000);
    // 180 000 of 200 000 promoted objects were dropped: compacting frees most of their pages
    // (≈ 55 → 11 MB committed; a plain gc() frees the objects but keeps ≈ 49 MB of pages).
    expect(report.result.heapAfterBytes).toBeLessThan(report.result.heapBeforeBytes / 2);
    expect(report.result.cpuMs).toBeGreaterThan(0);
    // One full collection per call, no more.
    expect(gcLines).toHaveLength(2);
    // The application's global scope never gains gc(), nor do contexts created afterwards.
    expect(report.hadGc).toBe('undefined');
    expect(report.gcAfter).toBe('undefined');
    expect(report.gcInNewContext).toBe('undefined');
    expect(report.flagsRestored).toBe(true);
  });

  it('with --expose-gc: uses the process gc() and keeps it', async () => {
    const { report, gcLines } = await compactInChild(['--expose-gc', '--max-semi-space-size=1']);
    expect(report.result.ok).toBe(true);
    expect(report.result.heapAfterBytes).toBeLessThan(report.result.heapBeforeBytes / 2);
    expect(gcLines).toHaveLength(2);
    expect(report.hadGc).toBe('function');
    expect(report.gcAfter).toBe('function');
    expect(report.flagsRestored).toBe(true);
  });
});

import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogDestination, LOG_RETRY_MS } from '../../src/lib/log-destination.js';
import { createTestClock } from '../../src/testing.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();
const opened: number[] = [];
const open = (path: string, flags: number) => {
  const fd = openSync(path, flags);
  opened.push(fd);
  return fd;
};
afterEach(() => {
  for (const fd of opened.splice(0)) closeSync(fd);
});

/** Resolves once the thread pool has had time to answer the writes in flight. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('createLogDestination', () => {
  it('writes lines in order, batching those that arrive while a write is in flight', async () => {
    const file = join(tempDir('gh-log-'), 'out.log');
    const fd = open(file, constants.O_WRONLY | constants.O_CREAT);
    const destination = createLogDestination(fd, createTestClock());
    for (let i = 0; i < 100; i += 1) destination.write(`line ${i}\n`);
    await settle();
    destination.flushSync(); // nothing held: a no-op
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(new Set(lines).size).toBe(100);
    expect(lines.toSorted((a, b) => Number(a.slice(5)) - Number(b.slice(5)))).toEqual(lines);
    expect(destination.dropped).toBe(0);
  });

  // Review of 719acbb: flushSync wrote what was held while an earlier chunk was still being written
  // by the thread pool, and the last line landed inside a 512 KiB one, tearing both.
  it('at exit, drops what is held rather than write it into a chunk still being written', async () => {
    const file = join(tempDir('gh-log-'), 'out.log');
    const fd = open(file, constants.O_WRONLY | constants.O_CREAT);
    const destination = createLogDestination(fd, createTestClock());
    const big = `${'x'.repeat(512 * 1024)}\n`;
    destination.write(big);
    destination.write('LAST\n');
    destination.flushSync();
    await settle();
    expect(readFileSync(file, 'utf8')).toBe(big);
    expect(destination.dropped).toBe(1);
  });

  // Ops review 2026-12s O1: with pino's own stream, the first refused write was an uncaught
  // exception, and the exit handler's flushSync then retried it every 100 ms for ever.
  it('on a destination that refuses every write (ENOSPC): never throws, holds a bounded amount, and exits', async () => {
    const fd = open('/dev/full', constants.O_WRONLY);
    const destination = createLogDestination(fd, createTestClock(), 1024);
    expect(destination.write('x'.repeat(100))).toBe(true);
    await expect.poll(() => destination.failing, { timeout: 10_000 }).toBe(true);
    for (let i = 0; i < 50; i += 1) expect(destination.write('y'.repeat(100))).toBe(true);
    // 1 024 bytes held at most: the first line and nine more; the other 41 are dropped.
    expect(destination.dropped).toBe(41);
    const started = Date.now();
    destination.flushSync();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(destination.dropped).toBe(42);
  });

  it('holds lines while a slow reader lets its pipe fill (EAGAIN), and writes them once it drains', async () => {
    const fifo = join(tempDir('gh-log-fifo-'), 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    const clock = createTestClock();
    const destination = createLogDestination(writer, clock);
    const line = (i: number) => `${String(i).padStart(8, '0')}${'.'.repeat(1015)}\n`;
    // 512 KiB: far past what a pipe takes (64 KiB on Linux) before its reader reads.
    for (let i = 0; i < 512; i += 1) destination.write(line(i));
    // Several thread-pool round trips (a line, then a partial write, then EAGAIN): waited for as a
    // condition, not for 50 ms, which a loaded CI machine overran (fresh-clone CI on a2bc21a).
    await expect.poll(() => destination.failing, { timeout: 10_000 }).toBe(true);
    let received = '';
    const drain = () => {
      const buffer = Buffer.alloc(1 << 16);
      for (;;) {
        let n = 0;
        try {
          n = readSync(reader, buffer);
        } catch {
          return; // EAGAIN: empty for now
        }
        if (n === 0) return;
        received += buffer.subarray(0, n).toString();
      }
    };
    for (let round = 0; round < 100 && received.length < 512 * 1024; round += 1) {
      drain();
      clock.advance(LOG_RETRY_MS);
      await settle();
    }
    drain();
    expect(received.length).toBe(512 * 1024);
    expect(received).toBe(Array.from({ length: 512 }, (_, i) => line(i)).join(''));
    expect(destination.failing).toBe(false);
    expect(destination.dropped).toBe(0);
  });
});

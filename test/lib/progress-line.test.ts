import { describe, expect, it } from 'vitest';
import { createProgressLine, formatProgressLine } from '../../src/lib/progress-line.js';

function terminal(isTTY: boolean) {
  const writes: string[] = [];
  return { isTTY, writes, write: (text: string) => writes.push(text) };
}

describe('progress line', () => {
  it('formats rows, percentage of bytes and rate', () => {
    expect(
      formatProgressLine({
        label: 'importing u.csv',
        done: 120_000,
        bytes: { read: 45, total: 100 },
        elapsedMs: 1500,
      }),
    ).toBe('importing u.csv: 120,000 rows, 45 %, 80,000 rows/s');
    // No rate before a second has passed (it would be noise), no percentage for an empty file.
    expect(formatProgressLine({ label: 'x', done: 3, bytes: { read: 0, total: 0 }, elapsedMs: 10 })).toBe(
      'x: 3 rows',
    );
  });

  it('redraws in place on a terminal, at most once per interval unless forced', () => {
    const tty = terminal(true);
    let now = 0;
    const line = createProgressLine(tty, () => now, 200);
    const progress = { label: 'p', done: 1, elapsedMs: 0 };
    line.update(progress);
    line.update({ ...progress, done: 2 });
    now = 250;
    line.update({ ...progress, done: 3 });
    line.update({ ...progress, done: 4 }, true);
    expect(tty.writes).toEqual(['\r\x1b[Kp: 1 rows', '\r\x1b[Kp: 3 rows', '\r\x1b[Kp: 4 rows']);
  });

  it('prints other lines above it, and erases it when cleared', () => {
    const tty = terminal(true);
    const line = createProgressLine(tty, () => 0);
    line.update({ label: 'p', done: 1, elapsedMs: 0 });
    line.print('u.csv:3: bad\n');
    line.update({ label: 'p', done: 2, elapsedMs: 0 });
    line.clear();
    line.clear();
    expect(tty.writes).toEqual([
      '\r\x1b[Kp: 1 rows',
      '\r\x1b[K',
      'u.csv:3: bad\n',
      '\r\x1b[Kp: 2 rows',
      '\r\x1b[K',
    ]);
  });

  it('writes no control characters to a pipe or file: only the printed lines', () => {
    const pipe = terminal(false);
    const line = createProgressLine(pipe, () => 0);
    line.update({ label: 'p', done: 1, elapsedMs: 0 }, true);
    line.print('u.csv:3: bad\n');
    line.clear();
    expect(pipe.writes).toEqual(['u.csv:3: bad\n']);
  });
});

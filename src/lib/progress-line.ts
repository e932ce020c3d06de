/** What a long-running command has done so far, for {@link formatProgressLine}. */
export interface Progress {
  /** What is being done, e.g. `importing users.csv`. */
  label: string;
  /** Units done (rows). */
  done: number;
  /** Bytes of input consumed and the input's size, for a percentage; omitted when unknown. */
  bytes?: { read: number; total: number } | undefined;
  /** Milliseconds since the work started, for the rate. */
  elapsedMs: number;
}

const COUNT = new Intl.NumberFormat('en-US');

/**
 * One terminal line of progress: `importing users.csv: 120,000 rows, 45 %, 80,000 rows/s`.
 * Plain text; the caller rewrites it in place (`\r` and erase-line) on a terminal only.
 */
export function formatProgressLine({ label, done, bytes, elapsedMs }: Progress): string {
  const parts = [`${label}: ${COUNT.format(done)} rows`];
  if (bytes !== undefined && bytes.total > 0) {
    parts.push(`${Math.min(100, Math.floor((bytes.read / bytes.total) * 100))} %`);
  }
  if (elapsedMs >= 1000) parts.push(`${COUNT.format(Math.round((done * 1000) / elapsedMs))} rows/s`);
  return parts.join(', ');
}

/** Where a progress line goes: a terminal (anything else gets no progress line at all). */
export interface ProgressTerminal {
  isTTY?: boolean;
  write(text: string): unknown;
}

/** A progress line kept in place on a terminal, that other output can print above. */
export interface ProgressLine {
  /** Redraws the line (at most every `intervalMs`, unless `force`). */
  update(progress: Progress, force?: boolean): void;
  /** Prints `text` (ending in a newline) above the progress line. */
  print(text: string): void;
  /** Erases the line for good. */
  clear(): void;
}

/**
 * A {@link ProgressLine} on `terminal` when it is a TTY (redrawn at most every `intervalMs`, so a
 * fast import does not spend its time writing to the terminal); on a pipe or file, `update`
 * writes nothing and `print` writes through, so logs get no control characters.
 */
export function createProgressLine(
  terminal: ProgressTerminal,
  now: () => number = Date.now,
  intervalMs = 200,
): ProgressLine {
  const tty = terminal.isTTY === true;
  let shown = false;
  let lastDrawn = Number.NEGATIVE_INFINITY;
  const erase = () => {
    if (shown) terminal.write('\r\x1b[K');
    shown = false;
  };
  return {
    update(progress, force = false) {
      if (!tty) return;
      const at = now();
      if (!force && at - lastDrawn < intervalMs) return;
      lastDrawn = at;
      terminal.write(`\r\x1b[K${formatProgressLine(progress)}`);
      shown = true;
    },
    print(text) {
      erase();
      terminal.write(text);
      // Redrawn by the next update: a problem line never leaves the progress line half erased.
      lastDrawn = Number.NEGATIVE_INFINITY;
    },
    clear: erase,
  };
}

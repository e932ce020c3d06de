import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { GatehouseError } from '../errors.js';
import type { ImportRecord } from './user-import.js';

/** Formats `gatehouse import-users` reads. */
export type ImportFormat = 'csv' | 'jsonl';

/**
 * Longest line (JSON lines) or record (CSV) read, in bytes: far above any account row, and what
 * bounds the memory one malformed line without an end can take.
 */
export const MAX_IMPORT_LINE_BYTES = 64 * 1024;

/** Columns an import needs; `full_name`, `disabled` and `role` are optional, others ignored. */
const REQUIRED_COLUMNS = ['email', 'hashed_password'] as const;
const KNOWN_COLUMNS: ReadonlySet<string> = new Set([...REQUIRED_COLUMNS, 'full_name', 'disabled', 'role']);

/**
 * The format a file name implies (`.csv`; `.jsonl`, `.ndjson`, `.json`), or undefined when it
 * implies none (the caller then asks for `--format`).
 */
export function formatOfFileName(name: string): ImportFormat | undefined {
  const lowered = name.toLowerCase();
  if (lowered.endsWith('.csv')) return 'csv';
  if (lowered.endsWith('.jsonl') || lowered.endsWith('.ndjson') || lowered.endsWith('.json')) return 'jsonl';
  return undefined;
}

/**
 * Streams the records of an import file, one at a time (never the whole file in memory), each
 * with its line number. A malformed line becomes an `error` record and reading goes on; only a
 * file that cannot be an import at all (a CSV header without `email` or `hashed_password`) throws
 * `VALIDATION_FAILED`.
 */
export function readImportRecords(input: Readable, format: ImportFormat): AsyncIterable<ImportRecord> {
  return format === 'csv' ? readCsv(input) : readJsonLines(input);
}

/** Splits a byte stream into lines, bounded: a line over the limit is reported, then skipped. */
async function* splitLines(
  input: Readable,
): AsyncGenerator<{ line: number; text: string } | { line: number; tooLong: true }> {
  let line = 1;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overflow = false;
  for await (const chunk of input) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    let start = 0;
    for (let end = bytes.indexOf(10, start); end !== -1; end = bytes.indexOf(10, start)) {
      const piece = bytes.subarray(start, end);
      if (overflow || pendingBytes + piece.length > MAX_IMPORT_LINE_BYTES) yield { line, tooLong: true };
      else yield { line, text: Buffer.concat([...pending, piece]).toString('utf8') };
      pending = [];
      pendingBytes = 0;
      overflow = false;
      line += 1;
      start = end + 1;
    }
    const rest = bytes.subarray(start);
    if (overflow || pendingBytes + rest.length > MAX_IMPORT_LINE_BYTES) {
      // Only the fact is kept, never the bytes: an endless line costs no memory.
      overflow = true;
      pending = [];
      pendingBytes = 0;
    } else if (rest.length > 0) {
      pending.push(Buffer.from(rest));
      pendingBytes += rest.length;
    }
  }
  if (overflow) yield { line, tooLong: true };
  else if (pendingBytes > 0) yield { line, text: Buffer.concat(pending).toString('utf8') };
}

async function* readJsonLines(input: Readable): AsyncGenerator<ImportRecord> {
  for await (const item of splitLines(input)) {
    if ('tooLong' in item) {
      yield { line: item.line, error: `line longer than ${MAX_IMPORT_LINE_BYTES} bytes` };
      continue;
    }
    const text = item.text.replace(/^\uFEFF/, '').trim();
    if (text === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      yield { line: item.line, error: 'not valid JSON' };
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      yield { line: item.line, error: 'not a JSON object' };
      continue;
    }
    yield { line: item.line, fields: value as Record<string, unknown> };
  }
}

interface CsvRow {
  record: string[];
  info: { lines: number };
}

function isCsvRow(value: unknown): value is CsvRow {
  return (
    typeof value === 'object' &&
    value !== null &&
    'record' in value &&
    Array.isArray(value.record) &&
    'info' in value &&
    typeof value.info === 'object' &&
    value.info !== null &&
    'lines' in value.info &&
    typeof value.info.lines === 'number'
  );
}

async function* readCsv(input: Readable): AsyncGenerator<ImportRecord> {
  // Records the parser had to skip (an unclosed quote, an oversized record), in file order.
  const skipped: ImportRecord[] = [];
  const parser = input.pipe(
    parse({
      bom: true,
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      max_record_size: MAX_IMPORT_LINE_BYTES,
      on_skip: (error) => {
        const line =
          error !== undefined && 'lines' in error && typeof error.lines === 'number' ? error.lines : 0;
        skipped.push({ line, error: `not a valid CSV record (${error?.code ?? 'error'})` });
        return undefined;
      },
    }),
  );
  input.on('error', (error) => parser.destroy(error));
  let header: string[] | undefined;
  for await (const row of parser) {
    yield* skipped.splice(0);
    if (!isCsvRow(row)) continue;
    const { record, info } = row;
    if (header === undefined) {
      header = record.map((name) => name.trim().toLowerCase());
      const missing = REQUIRED_COLUMNS.filter((name) => !header?.includes(name));
      if (missing.length > 0) {
        throw new GatehouseError(
          'VALIDATION_FAILED',
          `the CSV header (line ${info.lines}) has no ${missing.join(' or ')} column`,
        );
      }
      continue;
    }
    if (record.length !== header.length) {
      // The usual cause: an argon2 hash (`m=…,t=…,p=…`) or a name with a comma, left unquoted.
      const hint = record.length > header.length ? ' (quote fields that contain commas)' : '';
      yield {
        line: info.lines,
        error: `${record.length} fields where the header has ${header.length}${hint}`,
      };
      continue;
    }
    // Only the known columns are copied (an `id` or `is_superuser` column of the old app is
    // ignored), so no header name can reach an object's prototype (`__proto__`).
    const fields: Record<string, unknown> = {};
    header.forEach((name, index) => {
      if (KNOWN_COLUMNS.has(name)) fields[name] = record[index];
    });
    yield { line: info.lines, fields };
  }
  yield* skipped.splice(0);
  if (header === undefined) throw new GatehouseError('VALIDATION_FAILED', 'the file is empty: no CSV header');
}

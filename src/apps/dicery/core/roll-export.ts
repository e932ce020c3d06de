/**
 * The history exports (issue 14, item 4): CSV rows and JSON, built from rolls as the caller may see
 * them (secret rolls stay placeholders).
 *
 * @module
 */
import type { RollView } from '../shared/wire.js';

/** The CSV header row. */
export const ROLL_CSV_COLUMNS = [
  'id',
  'rolled_at',
  'player',
  'visibility',
  'label',
  'notation',
  'dice',
  'total',
  'hash',
];

/** A decimal number and nothing else: what a spreadsheet stores as a number, not a formula. */
const PLAIN_NUMBER = /^[+-]?\d{1,15}(?:\.\d{1,15})?$/;

/**
 * One CSV cell. Text that a spreadsheet would read as a formula (a first character of `=`, `+`,
 * `-`, `@`, tab or carriage return) gets a leading `'` (OWASP, "CSV Injection"); then every cell is
 * quoted with inner quotes doubled (RFC 4180 §2), so commas, quotes and line breaks stay inside it.
 * Player names, labels and notation are player input, so every text cell goes through this. A cell
 * that is a plain decimal number (`-1`, `+2.5`) is left alone: a spreadsheet reads it as a number,
 * never a formula, and the `'` would only show (red-team F11).
 */
export function csvCell(value: string | number | null): string {
  if (value === null) return '""';
  // Integers the server computed cannot carry a formula (a lone "-3" is a number to a spreadsheet).
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : '""';
  const text = /^[=+\-@\t\r]/.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
  return `"${text.replace(/"/g, '""')}"`;
}

/**
 * The dice of a roll in one cell: each term's dice, kept ones plain, dropped ones in parentheses,
 * e.g. `[4 (1)] -[2] +3`. The first term has no `+`, so a dice cell begins with a formula character
 * (and gets the `'`) only when the notation itself begins with a minus.
 */
function diceText(roll: RollView): string | null {
  if (roll.hidden === true) return null;
  return roll.terms
    .map((term, index) => {
      const sign = term.sign < 0 ? '-' : index === 0 ? '' : '+';
      return term.kind === 'constant'
        ? `${sign}${term.value}`
        : `${sign}[${term.dice.map((die) => (die.kept ? `${die.value}` : `(${die.value})`)).join(' ')}]`;
    })
    .join(' ');
}

/** One CSV line (with its CRLF, RFC 4180) for a roll. */
export function rollCsvLine(roll: RollView): string {
  const hidden = roll.hidden === true;
  const cells = [
    csvCell(roll.id),
    csvCell(roll.rolled_at),
    csvCell(roll.player.name),
    csvCell(roll.visibility ?? 'room'),
    csvCell(hidden ? null : roll.label),
    csvCell(hidden ? null : roll.notation),
    csvCell(diceText(roll)),
    hidden ? csvCell(null) : csvCell(roll.total),
    csvCell(roll.hash ?? null),
  ];
  return `${cells.join(',')}\r\n`;
}

/** The CSV header line. */
export function rollCsvHeader(): string {
  return `${ROLL_CSV_COLUMNS.join(',')}\r\n`;
}

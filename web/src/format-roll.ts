/**
 * How a roll reads: the pieces the roll log renders (each die, kept or dropped) and a one-line
 * plain-text version for titles and tests. Pure functions, no DOM.
 */
import type { DiceTermData, Roll, RolledDie, RollTerm } from './types.js';

/** One piece of a rendered roll, in display order. */
export type RollPart =
  | { kind: 'operator'; text: '+' | '−' }
  | { kind: 'dice'; notation: string; dice: RolledDie[]; subtotal: number }
  | { kind: 'constant'; value: number };

/** Canonical notation of a dice term: `4d6kh3`, `d20` for one die is written `1d20`. */
export function termNotation(term: Pick<DiceTermData, 'count' | 'sides' | 'keep'>): string {
  const keep = term.keep ? `${term.keep.mode}${term.keep.n}` : '';
  return `${term.count}d${term.sides}${keep}`;
}

/**
 * Splits the terms of a roll into display parts with the operators between them. A leading
 * negative term gets a leading minus; a leading positive one no plus. The minus is U+2212, which
 * screen readers say as "minus" (a hyphen is often skipped).
 */
export function rollParts(terms: readonly RollTerm[]): RollPart[] {
  const parts: RollPart[] = [];
  terms.forEach((term, index) => {
    if (index > 0 || term.sign < 0) parts.push({ kind: 'operator', text: term.sign < 0 ? '−' : '+' });
    if (term.kind === 'constant') parts.push({ kind: 'constant', value: term.value });
    else {
      parts.push({
        kind: 'dice',
        notation: termNotation(term),
        dice: Array.isArray(term.dice) ? term.dice : [],
        subtotal: term.subtotal,
      });
    }
  });
  return parts;
}

/**
 * The whole roll as one line of text, e.g.
 * `Alice rolled 2d20kh1+5 (Stealth): 2d20kh1 [17, 3 dropped] + 5 = 22`.
 */
export function describeRoll(roll: Pick<Roll, 'player' | 'notation' | 'label' | 'terms' | 'total'>): string {
  const label = roll.label ? ` (${roll.label})` : '';
  const breakdown = rollParts(roll.terms)
    .map((part) => {
      if (part.kind === 'operator') return part.text;
      if (part.kind === 'constant') return String(part.value);
      const dice = part.dice.map((die) => (die.kept ? String(die.value) : `${die.value} dropped`)).join(', ');
      return `${part.notation} [${dice}]`;
    })
    .join(' ');
  return `${roll.player.name} rolled ${roll.notation}${label}: ${breakdown} = ${roll.total}`;
}

/** A notation split around the character an error points at, for highlighting it. */
export interface NotationSplit {
  before: string;
  /** The offending character, or '' when the error is at the end (something is missing). */
  at: string;
  after: string;
}

/**
 * Splits `notation` at a 0-based error `position` (as in `INVALID_DICE_NOTATION`). Positions past
 * the end are clamped to the end. Surrogate pairs are kept whole, so an emoji is highlighted
 * rather than cut in half.
 */
export function splitAtPosition(notation: string, position: number): NotationSplit {
  const index = Math.min(Math.max(0, Math.trunc(position)), notation.length);
  const codePoint = notation.codePointAt(index);
  const width = codePoint === undefined ? 0 : codePoint > 0xffff ? 2 : 1;
  return {
    before: notation.slice(0, index),
    at: notation.slice(index, index + width),
    after: notation.slice(index + width),
  };
}

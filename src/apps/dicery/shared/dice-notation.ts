/**
 * Parser for dice notation such as `4d6kh3`, `2d20kl1+5` or `3d8 + 2d6 - 1`.
 *
 * Grammar (case-insensitive, whitespace allowed at the ends and around `+`/`-`,
 * but not inside a term, so `4d6kh3` is one token and `4d 6` is an error):
 *
 * ```text
 * expression = [sign] term { sign term }
 * sign       = "+" | "-"
 * term       = dice | integer
 * dice       = [integer] "d" ( integer | "%" ) [ keep integer ]
 * keep       = "kh" | "kl" | "dh" | "dl" | "k"      ("k" means "kh")
 * ```
 *
 * The parser is total: it never throws and returns either an expression or an
 * error carrying the 0-based index of the offending character, so callers can
 * point at the mistake in the user's own input.
 *
 * @module
 */

/**
 * Upper bounds enforced by {@link parseNotation}. They keep the work done by a
 * single roll tiny and predictable, whatever a client sends.
 */
export const DICE_LIMITS = {
  /** Longest accepted input, in UTF-16 code units. */
  maxInputLength: 64,
  /** Most dice rolled across all terms of one expression. */
  maxTotalDice: 100,
  /**
   * Fewest sides a die may have. `d1` is allowed: it is pointless but
   * harmless (it always rolls 1), and rejecting it buys nothing.
   */
  minSides: 1,
  /** Most sides a die may have. */
  maxSides: 1000,
  /** Largest magnitude of a single constant term. */
  maxModifier: 100_000,
} as const;

/**
 * Longest digit run we are willing to convert to a number. Anything longer is
 * out of range for every field anyway, and rejecting it by length means a
 * number is never built from an unbounded string.
 */
const MAX_DIGITS = 7;

/**
 * How a dice term keeps or drops dice after rolling:
 * `kh` keep highest, `kl` keep lowest, `dh` drop highest, `dl` drop lowest.
 */
export type KeepMode = 'kh' | 'kl' | 'dh' | 'dl';

/**
 * A keep/drop rule. For `kh`/`kl`, `n` is in `1..count`; for `dh`/`dl`, `n` is
 * in `0..count-1`. Either way at least one die is kept.
 */
export interface KeepRule {
  readonly mode: KeepMode;
  readonly n: number;
}

/** `NdM` with an optional keep/drop rule, added (`sign` 1) or subtracted (-1). */
export interface DiceTerm {
  readonly kind: 'dice';
  readonly sign: 1 | -1;
  /** Number of dice rolled, at least 1. */
  readonly count: number;
  /** Faces per die, numbered `1..sides`; `d%` gives 100. */
  readonly sides: number;
  readonly keep?: KeepRule;
}

/** An integer modifier; `value` is non-negative and `sign` carries the direction. */
export interface ConstantTerm {
  readonly kind: 'constant';
  readonly sign: 1 | -1;
  readonly value: number;
}

/** One term of a {@link DiceExpression}. */
export type Term = DiceTerm | ConstantTerm;

/** A parsed, validated expression: a signed sum of terms with at least one dice term. */
export interface DiceExpression {
  readonly terms: readonly Term[];
}

/**
 * Why notation was rejected. `NOTATION_SYNTAX` means it is malformed;
 * `NOTATION_LIMIT` means it is well-formed but a number or size is out of range.
 */
export interface NotationError {
  readonly code: 'NOTATION_SYNTAX' | 'NOTATION_LIMIT';
  readonly message: string;
  /** 0-based index into the original input of the offending character. */
  readonly position: number;
}

/** Result of {@link parseNotation}; errors are values, never exceptions. */
export type ParseResult =
  | { readonly ok: true; readonly expression: DiceExpression }
  | { readonly ok: false; readonly error: NotationError };

/** Internal control flow only: thrown inside the parser, caught in {@link parseNotation}. */
class NotationFailure extends Error {
  readonly detail: NotationError;

  constructor(detail: NotationError) {
    super(detail.message);
    this.detail = detail;
  }
}

function fail(code: NotationError['code'], message: string, position: number): never {
  throw new NotationFailure({ code, message, position });
}

/**
 * Parses dice notation into a {@link DiceExpression}.
 *
 * Never throws: any input, including arbitrary or hostile strings, yields
 * either `{ ok: true, expression }` or `{ ok: false, error }`.
 *
 * @param input - Notation such as `1d20+5`, `4d6kh3` or `d%`.
 * @returns The parsed expression, or the first error found with its position.
 *
 * @example
 * ```ts
 * const result = parseNotation('2d20kh1+5');
 * if (result.ok) rollDice(result.expression);
 * else console.error(result.error.message, 'at', result.error.position);
 * ```
 */
export function parseNotation(input: string): ParseResult {
  // Check length first so nothing below ever scans an oversized string.
  if (input.length > DICE_LIMITS.maxInputLength) {
    return {
      ok: false,
      error: {
        code: 'NOTATION_LIMIT',
        message: `Notation must be at most ${DICE_LIMITS.maxInputLength} characters`,
        position: DICE_LIMITS.maxInputLength,
      },
    };
  }
  try {
    return { ok: true, expression: new Parser(input).parseExpression() };
  } catch (error) {
    if (error instanceof NotationFailure) return { ok: false, error: error.detail };
    // Only a bug could land here; rethrowing would break the never-throw
    // contract, so report it as a syntax error at the start instead.
    return {
      ok: false,
      error: { code: 'NOTATION_SYNTAX', message: 'Invalid dice notation', position: 0 },
    };
  }
}

/** Single-use recursive-descent parser over one input string. */
class Parser {
  private readonly input: string;
  private pos = 0;
  private totalDice = 0;

  constructor(input: string) {
    this.input = input;
  }

  parseExpression(): DiceExpression {
    const terms: Term[] = [];
    this.skipSpaces();
    // A leading sign is optional, so `-1+1d20` reads naturally.
    let sign = this.readSign() ?? 1;
    for (;;) {
      this.skipSpaces();
      terms.push(this.parseTerm(sign));
      this.skipSpaces();
      if (this.atEnd()) break;
      const next = this.readSign();
      if (next === undefined) {
        fail('NOTATION_SYNTAX', `Unexpected "${this.peek()}"; expected "+" or "-"`, this.pos);
      }
      sign = next;
    }
    if (!terms.some((term) => term.kind === 'dice')) {
      fail('NOTATION_SYNTAX', 'Notation must contain at least one dice term, such as 1d20', 0);
    }
    return { terms };
  }

  private parseTerm(sign: 1 | -1): Term {
    const start = this.pos;
    const count = this.readInteger();
    if (this.peekLower() !== 'd') {
      if (count === undefined) {
        const what = this.atEnd() ? 'end of input' : `"${this.peek()}"`;
        fail('NOTATION_SYNTAX', `Unexpected ${what}; expected a dice term or a number`, start);
      }
      if (count > DICE_LIMITS.maxModifier) {
        fail('NOTATION_LIMIT', `Modifiers must be at most ${DICE_LIMITS.maxModifier}`, start);
      }
      return { kind: 'constant', sign, value: count };
    }
    return this.parseDice(sign, start, count ?? 1);
  }

  /** Parses the part of a dice term from the `d` onwards; `start` is where the term began. */
  private parseDice(sign: 1 | -1, start: number, count: number): DiceTerm {
    if (count < 1) fail('NOTATION_LIMIT', 'Dice count must be at least 1', start);
    if (count > DICE_LIMITS.maxTotalDice) {
      fail('NOTATION_LIMIT', `At most ${DICE_LIMITS.maxTotalDice} dice may be rolled`, start);
    }
    this.pos++; // the "d"

    const sidesAt = this.pos;
    let sides: number;
    if (this.peek() === '%') {
      this.pos++;
      sides = 100;
    } else {
      const parsed = this.readInteger();
      if (parsed === undefined) fail('NOTATION_SYNTAX', 'Expected the number of sides after "d"', sidesAt);
      if (parsed < DICE_LIMITS.minSides || parsed > DICE_LIMITS.maxSides) {
        fail(
          'NOTATION_LIMIT',
          `Dice must have between ${DICE_LIMITS.minSides} and ${DICE_LIMITS.maxSides} sides`,
          sidesAt,
        );
      }
      sides = parsed;
    }

    const keep = this.parseKeep(count);

    // Checked after the term is fully read so a syntax error inside it wins,
    // but reported at the term start: that is the term that broke the budget.
    this.totalDice += count;
    if (this.totalDice > DICE_LIMITS.maxTotalDice) {
      fail('NOTATION_LIMIT', `At most ${DICE_LIMITS.maxTotalDice} dice may be rolled in total`, start);
    }

    // Omit `keep` rather than set it to undefined, so the shape stays clean
    // under `exactOptionalPropertyTypes` and in deep-equality checks.
    return keep === undefined
      ? { kind: 'dice', sign, count, sides }
      : { kind: 'dice', sign, count, sides, keep };
  }

  private parseKeep(count: number): KeepRule | undefined {
    const modeAt = this.pos;
    const first = this.peekLower();
    if (first !== 'k' && first !== 'd') return undefined;
    this.pos++;
    const second = this.peekLower();
    let mode: KeepMode;
    if (second === 'h' || second === 'l') {
      this.pos++;
      mode = first === 'k' ? (second === 'h' ? 'kh' : 'kl') : second === 'h' ? 'dh' : 'dl';
    } else if (first === 'k') {
      mode = 'kh'; // bare "k" is the common shorthand for keep-highest
    } else {
      fail('NOTATION_SYNTAX', 'Expected "dh" or "dl" after the dice', modeAt);
    }

    const nAt = this.pos;
    const n = this.readInteger();
    if (n === undefined) fail('NOTATION_SYNTAX', `Expected a number after "${mode}"`, nAt);
    // Both ranges guarantee at least one die survives, so a subtotal always exists.
    const keeping = mode === 'kh' || mode === 'kl';
    const [min, max] = keeping ? [1, count] : [0, count - 1];
    if (n < min || n > max) {
      fail('NOTATION_LIMIT', `"${mode}" needs a number from ${min} to ${max} for ${count} dice`, nAt);
    }
    return { mode, n };
  }

  /**
   * Reads a run of ASCII digits. Returns undefined if there is none; rejects
   * runs longer than {@link MAX_DIGITS} before converting them.
   */
  private readInteger(): number | undefined {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.pos === start) return undefined;
    if (this.pos - start > MAX_DIGITS) fail('NOTATION_LIMIT', 'Number is too large', start);
    return Number(this.input.slice(start, this.pos));
  }

  private readSign(): 1 | -1 | undefined {
    const char = this.peek();
    if (char !== '+' && char !== '-') return undefined;
    this.pos++;
    return char === '+' ? 1 : -1;
  }

  private skipSpaces(): void {
    while (isSpace(this.peek())) this.pos++;
  }

  private atEnd(): boolean {
    return this.pos >= this.input.length;
  }

  /** Current character, or '' at the end (so comparisons need no undefined checks). */
  private peek(): string {
    return this.input.charAt(this.pos);
  }

  /**
   * Current character with ASCII letters lower-cased. Deliberately not
   * `toLowerCase()` on everything: that maps e.g. the Kelvin sign to "k".
   */
  private peekLower(): string {
    const char = this.peek();
    return char >= 'A' && char <= 'Z' ? char.toLowerCase() : char;
  }
}

// Explicit ASCII sets: \s would also match Unicode spaces, and Number() is
// only ever handed a plain run of 0-9. `char` is one code unit or '' (see peek).
function isDigit(char: string): boolean {
  return char >= '0' && char <= '9';
}

function isSpace(char: string): boolean {
  return char === ' ' || char === '\t';
}

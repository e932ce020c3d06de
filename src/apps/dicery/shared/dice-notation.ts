/**
 * Parser for dice notation such as `4d6kh3`, `2d20kl1+5`, `3d8 + 2d6 - 1`, `6d10!>=8`, `4dF`,
 * `1d20adv + 5 [to hit]`.
 *
 * Grammar (case-insensitive, whitespace allowed at the ends and around `+`/`-` and labels, but not
 * inside a term, so `4d6kh3` is one token and `4d 6` is an error):
 *
 * ```text
 * expression = [sign] term [label] { sign term [label] }
 * sign       = "+" | "-"
 * label      = "[" 1..24 characters, none of "[", "]" or a control character "]"
 * term       = dice | integer
 * dice       = [integer] "d" ( integer | "%" | "F" ) { modifier }     each modifier at most once
 * modifier   = explode | reroll | keep | success | "adv" | "dis"
 * explode    = "!"                                  a die showing its maximum adds another die
 * reroll     = ( "ro" | "r" ) [ compare ] integer   ro: once; r: while it matches (capped)
 * keep       = ( "kh" | "kl" | "dh" | "dl" | "k" ) integer                ("k" means "kh")
 * success    = compare integer                      the term counts dice meeting it
 * compare    = "<=" | ">=" | "<" | ">" | "="
 * ```
 *
 * `1d20adv` is `2d20kh1` and `1d20dis` is `2d20kl1` (one die only, and no other keep rule).
 * `dF` is a Fate/Fudge die (−1, 0 or +1); it takes keep and success rules but neither explodes
 * nor rerolls.
 *
 * **Bounded work.** Every construct has a hard cap checked here, so a roll never does more than
 * `maxTotalDice × (1 + maxExplosionsPerDie) × (1 + maxRerollsPerDie)` draws whatever is sent:
 * explosions and repeating rerolls stop after their caps (the last value stands), a reroll
 * condition may not cover every face, and `d1` cannot explode.
 *
 * The parser is total: it never throws and returns either an expression or an error carrying the
 * 0-based index of the offending character, so callers can point at the mistake in the user's own
 * input.
 *
 * @module
 */

/**
 * Upper bounds enforced by {@link parseNotation}. They keep the work done by a
 * single roll tiny and predictable, whatever a client sends.
 */
export const DICE_LIMITS = {
  /** Longest accepted input, in UTF-16 code units (room for a few labelled terms). */
  maxInputLength: 128,
  /** Most dice rolled across all terms of one expression (before explosions and rerolls). */
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
  /** Extra dice one exploding die may add in a chain (`!`); the chain stops there. */
  maxExplosionsPerDie: 10,
  /** Times a repeating reroll (`r`) rerolls one die; the last value then stands. */
  maxRerollsPerDie: 10,
  /**
   * Most values one roll may draw in all, explosions and rerolls included. The per-die caps bound
   * the work (100 × 11 × 11 draws) but not the size of the result: every drawn die is stored,
   * signed into the room log, fanned out to every stream and returned by every history read, so
   * `100d2r1!` alone made an 88 KB roll. Once a roll has drawn this many values, no die explodes
   * or is rerolled any more (its value stands, as at the per-die caps); the dice asked for
   * (at most `maxTotalDice`) are always drawn.
   */
  maxDrawsPerRoll: 300,
  /** Longest term label, in UTF-16 code units. */
  maxLabelLength: 24,
  /** Most terms in one expression. */
  maxTerms: 20,
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

/** A comparison of a die's value with `value`, for rerolls and success counting. */
export interface Comparison {
  readonly op: '<' | '<=' | '=' | '>=' | '>';
  readonly value: number;
}

/** A reroll rule: reroll dice matching `when`, once (`ro`) or while they match (`r`, capped). */
export interface RerollRule {
  readonly once: boolean;
  readonly when: Comparison;
}

/**
 * `NdM` with its modifiers, added (`sign` 1) or subtracted (-1). Optional fields are omitted
 * (never undefined) when the notation has no such modifier.
 */
export interface DiceTerm {
  readonly kind: 'dice';
  readonly sign: 1 | -1;
  /** Number of dice rolled, at least 1 (before explosions). */
  readonly count: number;
  /** Faces per die, numbered `1..sides`; `d%` gives 100; a Fate die has 3 (−1, 0, +1). */
  readonly sides: number;
  /** True for Fate/Fudge dice (`dF`): faces −1, 0 and +1. */
  readonly fate?: true;
  /** `!`: a die showing its maximum adds another die (at most `maxExplosionsPerDie` per die). */
  readonly explode?: true;
  readonly reroll?: RerollRule;
  readonly keep?: KeepRule;
  /** `>=5` etc.: the term's value is the number of kept dice meeting it, not their sum. */
  readonly success?: Comparison;
  /** `[label]` after the term. */
  readonly label?: string;
}

/** An integer modifier; `value` is non-negative and `sign` carries the direction. */
export interface ConstantTerm {
  readonly kind: 'constant';
  readonly sign: 1 | -1;
  readonly value: number;
  /** `[label]` after the term. */
  readonly label?: string;
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

/** Whether `value` meets `comparison`. */
export function compareDie(value: number, comparison: Comparison): boolean {
  switch (comparison.op) {
    case '<':
      return value < comparison.value;
    case '<=':
      return value <= comparison.value;
    case '=':
      return value === comparison.value;
    case '>=':
      return value >= comparison.value;
    case '>':
      return value > comparison.value;
  }
}

/** The faces of a die of `term`, lowest first (`-1..1` for Fate, else `1..sides`). */
export function faceRange(term: Pick<DiceTerm, 'sides' | 'fate'>): { min: number; max: number } {
  return term.fate === true ? { min: -1, max: 1 } : { min: 1, max: term.sides };
}

/**
 * Parses dice notation into a {@link DiceExpression}.
 *
 * Never throws: any input, including arbitrary or hostile strings, yields
 * either `{ ok: true, expression }` or `{ ok: false, error }`.
 *
 * @param input - Notation such as `1d20+5`, `4d6kh3`, `d%`, `8d6!`, `4dF`, `1d20adv [init]`.
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

/** Mutable while a dice term's modifiers are read; frozen into a {@link DiceTerm}. */
interface DiceDraft {
  count: number;
  sides: number;
  fate: boolean;
  explode: boolean;
  reroll: RerollRule | undefined;
  keep: KeepRule | undefined;
  success: Comparison | undefined;
  /** `adv`/`dis` were used (they set `keep` and double a single die). */
  advantage: boolean;
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
      const termAt = this.pos;
      if (terms.length >= DICE_LIMITS.maxTerms) {
        fail('NOTATION_LIMIT', `At most ${DICE_LIMITS.maxTerms} terms`, termAt);
      }
      const term = this.parseTerm(sign);
      this.skipSpaces();
      const label = this.parseLabel();
      terms.push(label === undefined ? term : { ...term, label });
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

  /** `[text]`: 1..maxLabelLength characters, no brackets, no control characters. */
  private parseLabel(): string | undefined {
    if (this.peek() !== '[') return undefined;
    const openAt = this.pos;
    this.pos++;
    const start = this.pos;
    while (!this.atEnd() && this.peek() !== ']') {
      if (this.peek() === '[') fail('NOTATION_SYNTAX', 'Labels may not contain "["', this.pos);
      this.pos++;
    }
    if (this.atEnd()) fail('NOTATION_SYNTAX', 'Label is missing its closing "]"', openAt);
    const raw = this.input.slice(start, this.pos);
    // Control, format (bidi, zero-width), private-use, unassigned and lone surrogate code points
    // could disguise a label in every client that shows it; the same rule as display names.
    const bad = FORBIDDEN_LABEL_CHARACTER.exec(raw);
    if (bad !== null)
      fail('NOTATION_SYNTAX', 'Labels may not contain control or format characters', start + bad.index);
    const text = raw.trim();
    if (text === '') fail('NOTATION_SYNTAX', 'Label must not be empty', openAt);
    if (text.length > DICE_LIMITS.maxLabelLength) {
      fail('NOTATION_LIMIT', `Labels must be at most ${DICE_LIMITS.maxLabelLength} characters`, start);
    }
    this.pos++; // the "]"
    return text;
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
    const draft: DiceDraft = {
      count,
      sides: 0,
      fate: false,
      explode: false,
      reroll: undefined,
      keep: undefined,
      success: undefined,
      advantage: false,
    };
    if (this.peek() === '%') {
      this.pos++;
      draft.sides = 100;
    } else if (this.peekLower() === 'f') {
      this.pos++;
      draft.sides = 3;
      draft.fate = true;
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
      draft.sides = parsed;
    }

    // Modifiers, in any order, each at most once: a repeat is reported where it starts.
    while (this.parseModifier(draft)) {
      // parseModifier advanced past one modifier
    }

    // Checked after the term is fully read so a syntax error inside it wins,
    // but reported at the term start: that is the term that broke the budget.
    this.totalDice += draft.count;
    if (this.totalDice > DICE_LIMITS.maxTotalDice) {
      fail('NOTATION_LIMIT', `At most ${DICE_LIMITS.maxTotalDice} dice may be rolled in total`, start);
    }

    // Optional fields are omitted rather than set to undefined, so the shape stays clean under
    // `exactOptionalPropertyTypes` and in deep-equality checks.
    const term: { -readonly [K in keyof DiceTerm]: DiceTerm[K] } = {
      kind: 'dice',
      sign,
      count: draft.count,
      sides: draft.sides,
    };
    if (draft.fate) term.fate = true;
    if (draft.explode) term.explode = true;
    if (draft.reroll !== undefined) term.reroll = draft.reroll;
    if (draft.keep !== undefined) term.keep = draft.keep;
    if (draft.success !== undefined) term.success = draft.success;
    return term;
  }

  /** Reads one modifier into `draft`; false when the next character starts none. */
  private parseModifier(draft: DiceDraft): boolean {
    const at = this.pos;
    const first = this.peekLower();
    const second = this.peekLower(1);
    const third = this.peekLower(2);
    if (first === '!') {
      if (draft.explode) fail('NOTATION_SYNTAX', 'Only one "!" per dice term', at);
      if (draft.fate) fail('NOTATION_SYNTAX', 'Fate dice cannot explode', at);
      // A die whose every face is its maximum would explode on every roll.
      if (draft.sides < 2) fail('NOTATION_LIMIT', 'Exploding dice need at least 2 sides', at);
      this.pos++;
      draft.explode = true;
      return true;
    }
    if (
      (first === 'a' && second === 'd' && third === 'v') ||
      (first === 'd' && second === 'i' && third === 's')
    ) {
      if (draft.advantage || draft.keep !== undefined) {
        fail('NOTATION_SYNTAX', 'Only one keep rule (or adv/dis) per dice term', at);
      }
      if (draft.count !== 1)
        fail('NOTATION_SYNTAX', `"${first === 'a' ? 'adv' : 'dis'}" takes one die, as in 1d20adv`, at);
      this.pos += 3;
      draft.advantage = true;
      draft.count = 2;
      draft.keep = { mode: first === 'a' ? 'kh' : 'kl', n: 1 };
      return true;
    }
    if (first === 'r') {
      if (draft.reroll !== undefined) fail('NOTATION_SYNTAX', 'Only one reroll rule per dice term', at);
      if (draft.fate) fail('NOTATION_SYNTAX', 'Fate dice cannot be rerolled', at);
      this.pos++;
      const once = this.peekLower() === 'o';
      if (once) this.pos++;
      const valueAt = this.pos;
      const when = this.readComparison('=');
      if (when === undefined)
        fail('NOTATION_SYNTAX', `Expected a number after "${once ? 'ro' : 'r'}"`, this.pos);
      if (when.value < 1 || when.value > draft.sides) {
        fail('NOTATION_LIMIT', `Reroll values must be from 1 to ${draft.sides}`, valueAt);
      }
      // A condition every face meets would reroll for ever (`r` ) or never settle anything (`ro`).
      let matching = 0;
      for (let face = 1; face <= draft.sides; face++) if (compareDie(face, when)) matching++;
      if (matching === draft.sides) fail('NOTATION_LIMIT', 'A reroll rule may not match every face', valueAt);
      draft.reroll = { once, when };
      return true;
    }
    if (first === 'k' || (first === 'd' && (second === 'h' || second === 'l'))) {
      if (draft.keep !== undefined)
        fail('NOTATION_SYNTAX', 'Only one keep rule (or adv/dis) per dice term', at);
      draft.keep = this.parseKeep(draft.count);
      return true;
    }
    if (first === 'd') fail('NOTATION_SYNTAX', 'Expected "dh" or "dl" after the dice', at);
    if (first === '<' || first === '>' || first === '=') {
      if (draft.success !== undefined) fail('NOTATION_SYNTAX', 'Only one success rule per dice term', at);
      const when = this.readComparison(undefined);
      if (when === undefined) fail('NOTATION_SYNTAX', 'Expected a number after the comparison', this.pos);
      draft.success = when;
      return true;
    }
    return false;
  }

  /** `[compare] integer`; without an operator, `implicit` (or undefined: an operator is required). */
  private readComparison(implicit: Comparison['op'] | undefined): Comparison | undefined {
    let op: Comparison['op'] | undefined;
    const first = this.peek();
    if (first === '<' || first === '>') {
      this.pos++;
      if (this.peek() === '=') {
        this.pos++;
        op = first === '<' ? '<=' : '>=';
      } else op = first;
    } else if (first === '=') {
      this.pos++;
      op = '=';
    } else op = implicit;
    if (op === undefined) return undefined;
    const value = this.readInteger();
    if (value === undefined) return undefined;
    return { op, value };
  }

  private parseKeep(count: number): KeepRule {
    const first = this.peekLower();
    this.pos++;
    const second = this.peekLower();
    let mode: KeepMode;
    if (second === 'h' || second === 'l') {
      this.pos++;
      mode = first === 'k' ? (second === 'h' ? 'kh' : 'kl') : second === 'h' ? 'dh' : 'dl';
    } else {
      mode = 'kh'; // bare "k" is the common shorthand for keep-highest (only "k" reaches here)
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

  /** Character `ahead` places on, or '' past the end (so comparisons need no undefined checks). */
  private peek(ahead = 0): string {
    return this.input.charAt(this.pos + ahead);
  }

  /**
   * Character `ahead` places on with ASCII letters lower-cased. Deliberately not
   * `toLowerCase()` on everything: that maps e.g. the Kelvin sign to "k".
   */
  private peekLower(ahead = 0): string {
    const char = this.peek(ahead);
    return char >= 'A' && char <= 'Z' ? char.toLowerCase() : char;
  }
}

const FORBIDDEN_LABEL_CHARACTER = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}]/u;

// Explicit ASCII sets: \s would also match Unicode spaces, and Number() is
// only ever handed a plain run of 0-9. `char` is one code unit or '' (see peek).
function isDigit(char: string): boolean {
  return char >= '0' && char <= '9';
}

function isSpace(char: string): boolean {
  return char === ' ' || char === '\t';
}

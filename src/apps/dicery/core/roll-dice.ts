/**
 * Rolling a parsed {@link DiceExpression}.
 *
 * @module
 */

import { randomInt as cryptoRandomInt } from 'node:crypto';
import type { ConstantTerm, DiceExpression, DiceTerm } from '../shared/dice-notation.js';
import { compareDie, DICE_LIMITS, faceRange } from '../shared/dice-notation.js';

/**
 * Source of uniform random integers in `[min, maxExclusive)`, the same
 * contract as `crypto.randomInt`. Inject one to make rolls deterministic in tests.
 */
export type RandomInt = (min: number, maxExclusive: number) => number;

/**
 * One rolled die. `kept` is false when a keep/drop rule discarded it, or when it was rerolled.
 * Flags are present only when true, so a plain roll's dice stay `{ value, kept }`.
 */
export interface RolledDie {
  readonly value: number;
  readonly kept: boolean;
  /** This die showed its maximum and added the die after it (`!`). */
  readonly exploded?: true;
  /** This value was rerolled away (`r`, `ro`); the die after it replaces it. */
  readonly rerolled?: true;
  /** This kept die meets the term's success rule. */
  readonly success?: true;
}

/** A dice term with the dice actually rolled, in roll order. */
export interface RolledDiceTerm extends DiceTerm {
  readonly dice: readonly RolledDie[];
  /** Sum of the kept dice (or, with a success rule, how many kept dice succeed), before `sign`. */
  readonly subtotal: number;
}

/** A term as rolled: dice terms gain their dice; constants pass through unchanged. */
export type RolledTerm = RolledDiceTerm | ConstantTerm;

/** Everything about one roll, detailed enough to show the player how the total came about. */
export interface RollOutcome {
  readonly terms: readonly RolledTerm[];
  /** Signed sum of all constant terms. */
  readonly modifier: number;
  /** Signed sum of every dice subtotal, plus `modifier`. */
  readonly total: number;
}

// Wrapped rather than passed directly: crypto.randomInt is overloaded (it also
// has a callback form), and this pins the synchronous one.
const secureRandomInt: RandomInt = (min, maxExclusive) => cryptoRandomInt(min, maxExclusive);

/**
 * Rolls every term of an expression.
 *
 * Uses `node:crypto` by default, so results are unpredictable even to someone
 * who has seen earlier rolls; a plain PRNG such as `Math.random` is not.
 *
 * @param expression - A result of `parseNotation`. Hand-built expressions must
 *   respect the same limits; a count, sides or keep value out of range is a
 *   programming error and throws `RangeError` rather than doing unbounded work.
 * @param randomInt - Random source; defaults to `crypto.randomInt`.
 * @returns Each die rolled, which were kept, and the total.
 */
export function rollDice(expression: DiceExpression, randomInt: RandomInt = secureRandomInt): RollOutcome {
  const terms: RolledTerm[] = [];
  // Draws beyond the dice asked for (explosions, rerolls) share one budget across the terms, so a
  // roll never records more than DICE_LIMITS.maxDrawsPerRoll values (see there for why).
  let asked = 0;
  for (const term of expression.terms) if (term.kind === 'dice') asked += term.count;
  const budget = { extra: Math.max(0, DICE_LIMITS.maxDrawsPerRoll - asked) };
  let modifier = 0;
  let total = 0;
  for (const term of expression.terms) {
    if (term.kind === 'constant') {
      modifier += term.sign * term.value;
      terms.push(term);
      continue;
    }
    const rolled = rollTerm(term, randomInt, budget);
    total += term.sign * rolled.subtotal;
    terms.push(rolled);
  }
  return { terms, modifier, total: total + modifier };
}

/** Draws left for explosions and rerolls in the current roll; spent as they happen. */
interface DrawBudget {
  extra: number;
}

function rollTerm(term: DiceTerm, randomInt: RandomInt, budget: DrawBudget): RolledDiceTerm {
  assertRollable(term);
  const { min, max } = faceRange(term);
  const draw = () => randomInt(min, max + 1);
  // Every loop below is capped by a DICE_LIMITS constant, so one term draws at most
  // count × (1 + maxExplosionsPerDie) × (1 + maxRerollsPerDie) values, whatever the dice show,
  // and the whole roll at most maxDrawsPerRoll (the shared budget for extra draws).
  const extraDraw = () => {
    if (budget.extra === 0) return false;
    budget.extra--;
    return true;
  };
  const rerollCap = term.reroll === undefined ? 0 : term.reroll.once ? 1 : DICE_LIMITS.maxRerollsPerDie;
  const rolled: { value: number; exploded: boolean; rerolled: boolean }[] = [];
  for (let i = 0; i < term.count; i++) {
    for (let explosions = 0; ; explosions++) {
      let value = draw();
      for (let rerolls = 0; term.reroll !== undefined && rerolls < rerollCap; rerolls++) {
        if (!compareDie(value, term.reroll.when) || !extraDraw()) break;
        rolled.push({ value, exploded: false, rerolled: true });
        value = draw();
      }
      const explodes =
        term.explode === true && value === max && explosions < DICE_LIMITS.maxExplosionsPerDie && extraDraw();
      rolled.push({ value, exploded: explodes, rerolled: false });
      if (!explodes) break;
    }
  }
  const standing = rolled.filter((die) => !die.rerolled).map((die) => die.value);
  const keptStanding = keptFlags(standing, term);
  let next = 0;
  let subtotal = 0;
  const dice = rolled.map((die): RolledDie => {
    const kept = !die.rerolled && keptStanding[next++] === true;
    const success = kept && term.success !== undefined && compareDie(die.value, term.success);
    if (kept) subtotal += term.success === undefined ? die.value : success ? 1 : 0;
    return {
      value: die.value,
      kept,
      ...(die.exploded ? { exploded: true as const } : {}),
      ...(die.rerolled ? { rerolled: true as const } : {}),
      ...(success ? { success: true as const } : {}),
    };
  });
  return { ...term, dice, subtotal };
}

/**
 * Decides which dice survive the term's keep/drop rule. Ties are broken by
 * roll order (earlier dice are picked first) so the result is deterministic.
 */
function keptFlags(values: readonly number[], term: DiceTerm): boolean[] {
  const { keep } = term;
  if (keep === undefined) return values.map(() => true);

  // "Picked" dice are the n highest (kh, dh) or n lowest (kl, dl)...
  const highFirst = keep.mode === 'kh' || keep.mode === 'dh';
  const ranked = values
    .map((value, index) => ({ value, index }))
    .sort((a, b) => (highFirst ? b.value - a.value : a.value - b.value) || a.index - b.index);
  const picked = new Set(ranked.slice(0, keep.n).map((die) => die.index));
  // ...and are kept by kh/kl, discarded by dh/dl.
  const keepPicked = keep.mode === 'kh' || keep.mode === 'kl';
  return values.map((_, index) => picked.has(index) === keepPicked);
}

function assertRollable(term: DiceTerm): void {
  const { count, sides, keep } = term;
  if ((term.fate === true && sides !== 3) || (term.explode === true && sides < 2)) {
    throw new RangeError(`Dice term out of range: ${JSON.stringify(term)}`);
  }
  const inRange = (value: number, min: number, max: number) =>
    Number.isInteger(value) && value >= min && value <= max;
  const ok =
    inRange(count, 1, DICE_LIMITS.maxTotalDice) &&
    inRange(sides, DICE_LIMITS.minSides, DICE_LIMITS.maxSides) &&
    (keep === undefined ||
      (keep.mode === 'kh' || keep.mode === 'kl' ? inRange(keep.n, 1, count) : inRange(keep.n, 0, count - 1)));
  if (!ok) throw new RangeError(`Dice term out of range: ${JSON.stringify(term)}`);
}

/**
 * Dice notation parsing and cryptographically secure rolling.
 *
 * @example
 * ```ts
 * import { parseNotation, rollDice } from './dice.js';
 * const parsed = parseNotation('4d6kh3');
 * if (parsed.ok) console.log(rollDice(parsed.expression).total);
 * ```
 *
 * @module
 */

export type {
  ConstantTerm,
  DiceExpression,
  DiceTerm,
  KeepMode,
  KeepRule,
  NotationError,
  ParseResult,
  Term,
} from '../shared/dice-notation.js';
export { DICE_LIMITS, parseNotation } from '../shared/dice-notation.js';
export type { RandomInt, RolledDiceTerm, RolledDie, RolledTerm, RollOutcome } from './roll-dice.js';
export { rollDice } from './roll-dice.js';

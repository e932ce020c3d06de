import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { DiceExpression, DiceTerm, KeepMode } from '../../../../src/apps/dicery/core/dice.js';
import { DICE_LIMITS, parseNotation, rollDice } from '../../../../src/apps/dicery/core/dice.js';

function parse(input: string): DiceExpression {
  const result = parseNotation(input);
  if (!result.ok) throw new Error(`failed to parse ${input}: ${result.error.message}`);
  return result.expression;
}

/** A random source that replays `values` in order. */
function sequence(...values: number[]) {
  let i = 0;
  return (_min: number, _maxExclusive: number) => {
    const value = values[i++];
    if (value === undefined) throw new Error('sequence exhausted');
    return value;
  };
}

function keptCount(term: DiceTerm): number {
  if (term.keep === undefined) return term.count;
  return term.keep.mode === 'kh' || term.keep.mode === 'kl' ? term.keep.n : term.count - term.keep.n;
}

/** Smallest and largest possible totals, computed independently of rollDice. */
function totalRange(expression: DiceExpression): [number, number] {
  let min = 0;
  let max = 0;
  for (const term of expression.terms) {
    const [lo, hi] =
      term.kind === 'constant' ? [term.value, term.value] : [keptCount(term), keptCount(term) * term.sides];
    if (term.sign === 1) {
      min += lo;
      max += hi;
    } else {
      min -= hi;
      max -= lo;
    }
  }
  return [min, max];
}

describe('rollDice', () => {
  it('sums dice and modifiers with their signs', () => {
    const outcome = rollDice(parse('2d6 - 1d4 + 3 - 1'), sequence(5, 2, 4));
    expect(outcome.modifier).toBe(2);
    expect(outcome.total).toBe(5 + 2 - 4 + 2);
    expect(outcome.terms).toStrictEqual([
      {
        kind: 'dice',
        sign: 1,
        count: 2,
        sides: 6,
        dice: [
          { value: 5, kept: true },
          { value: 2, kept: true },
        ],
        subtotal: 7,
      },
      { kind: 'dice', sign: -1, count: 1, sides: 4, dice: [{ value: 4, kept: true }], subtotal: 4 },
      { kind: 'constant', sign: 1, value: 3 },
      { kind: 'constant', sign: -1, value: 1 },
    ]);
  });

  it('asks the random source for 1..sides', () => {
    const randomInt = vi.fn((min: number) => min);
    rollDice(parse('d%+2d8'), randomInt);
    expect(randomInt.mock.calls).toStrictEqual([
      [1, 101],
      [1, 9],
      [1, 9],
    ]);
  });

  it.each<[string, KeepMode, boolean[], number]>([
    ['4d6kh3', 'kh', [true, true, true, false], 10],
    ['4d6kl2', 'kl', [false, true, false, true], 2],
    ['4d6dh1', 'dh', [true, true, false, true], 5],
    ['4d6dl1', 'dl', [true, false, true, true], 10],
  ])('%s keeps the right dice, breaking ties by roll order', (input, mode, kept, subtotal) => {
    const outcome = rollDice(parse(input), sequence(3, 1, 6, 1));
    const [term] = outcome.terms;
    expect(term).toMatchObject({ kind: 'dice', keep: { mode } });
    if (term?.kind !== 'dice') throw new Error('expected a dice term');
    expect(term.dice.map((die) => die.kept)).toStrictEqual(kept);
    expect(term.subtotal).toBe(subtotal);
    expect(outcome.total).toBe(subtotal);
  });

  it('uses node:crypto by default and stays in range', () => {
    const expression = parse('10d20+d1');
    for (let i = 0; i < 200; i++) {
      const outcome = rollDice(expression);
      const [d20s, d1] = outcome.terms;
      if (d20s?.kind !== 'dice' || d1?.kind !== 'dice') throw new Error('expected dice terms');
      for (const die of d20s.dice) {
        expect(Number.isInteger(die.value)).toBe(true);
        expect(die.value).toBeGreaterThanOrEqual(1);
        expect(die.value).toBeLessThanOrEqual(20);
      }
      expect(d1.dice).toStrictEqual([{ value: 1, kept: true }]);
    }
  });

  it('rejects hand-built terms outside the limits instead of doing unbounded work', () => {
    const huge: DiceExpression = { terms: [{ kind: 'dice', sign: 1, count: 1e9, sides: 6 }] };
    const dropAll: DiceExpression = {
      terms: [{ kind: 'dice', sign: 1, count: 2, sides: 6, keep: { mode: 'dl', n: 2 } }],
    };
    const fractional: DiceExpression = { terms: [{ kind: 'dice', sign: 1, count: 1, sides: 6.5 }] };
    const randomInt = vi.fn(() => 1);
    expect(() => rollDice(huge, randomInt)).toThrow(RangeError);
    expect(() => rollDice(dropAll, randomInt)).toThrow(RangeError);
    expect(() => rollDice(fractional, randomInt)).toThrow(RangeError);
    expect(randomInt).not.toHaveBeenCalled();
  });
});

describe('rollDice: properties', () => {
  // Builds valid notation from parts, so the properties exercise parser and roller together.
  const diceTerm = fc
    .record({
      count: fc.integer({ min: 1, max: 12 }),
      sides: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant('%')),
      keep: fc.option(fc.record({ mode: fc.constantFrom('kh', 'kl', 'dh', 'dl', 'k'), n: fc.nat() })),
      upper: fc.boolean(),
    })
    .map(({ count, sides, keep, upper }) => {
      const d = upper ? 'D' : 'd';
      // Map n into the valid range for the mode: 1..count to keep, 0..count-1 to drop.
      const suffix =
        keep === null
          ? ''
          : `${keep.mode}${keep.mode.startsWith('d') ? keep.n % count : (keep.n % count) + 1}`;
      return `${count}${d}${sides}${suffix}`;
    });
  const term = fc.oneof(diceTerm, fc.integer({ min: 0, max: 100_000 }).map(String));
  const notation = fc
    .tuple(diceTerm, fc.array(fc.tuple(fc.constantFrom('+', ' - ', '-', ' + '), term), { maxLength: 4 }))
    .map(([first, rest]) => first + rest.map(([op, t]) => op + t).join(''))
    .filter((input) => input.length <= 64);

  it('parses generated notation, keeps the right number of dice, and totals within [min, max]', () => {
    fc.assert(
      fc.property(notation, fc.gen(), (input, gen) => {
        const expression = parse(input);
        const randomInt = (min: number, maxExclusive: number) =>
          gen(fc.integer, { min, max: maxExclusive - 1 });
        const outcome = rollDice(expression, randomInt);

        let total = 0;
        for (const rolled of outcome.terms) {
          if (rolled.kind === 'constant') {
            total += rolled.sign * rolled.value;
            continue;
          }
          expect(rolled.dice).toHaveLength(rolled.count);
          expect(rolled.dice.filter((die) => die.kept)).toHaveLength(keptCount(rolled));
          for (const die of rolled.dice) {
            expect(die.value).toBeGreaterThanOrEqual(1);
            expect(die.value).toBeLessThanOrEqual(rolled.sides);
          }
          const keptValues = rolled.dice.filter((die) => die.kept).map((die) => die.value);
          const droppedValues = rolled.dice.filter((die) => !die.kept).map((die) => die.value);
          // Keep-highest never discards a die above one it kept; keep-lowest the reverse.
          if (droppedValues.length > 0 && (rolled.keep?.mode === 'kh' || rolled.keep?.mode === 'dl')) {
            expect(Math.min(...keptValues)).toBeGreaterThanOrEqual(Math.max(...droppedValues));
          }
          if (droppedValues.length > 0 && (rolled.keep?.mode === 'kl' || rolled.keep?.mode === 'dh')) {
            expect(Math.max(...keptValues)).toBeLessThanOrEqual(Math.min(...droppedValues));
          }
          expect(rolled.subtotal).toBe(keptValues.reduce((a, b) => a + b, 0));
          total += rolled.sign * rolled.subtotal;
        }
        expect(outcome.total).toBe(total);

        const [min, max] = totalRange(expression);
        expect(outcome.total).toBeGreaterThanOrEqual(min);
        expect(outcome.total).toBeLessThanOrEqual(max);
      }),
      { numRuns: 500 },
    );
  });

  it('reaches exactly min and max with the most extreme faces', () => {
    // Dice are rolled in term order, so a queue of faces can steer each one:
    // for the minimum, added dice roll lowest and subtracted dice roll highest.
    const extremes = (expression: DiceExpression, goal: 'min' | 'max') => {
      const faces = expression.terms.flatMap((t) =>
        t.kind === 'dice'
          ? Array<number>(t.count).fill((t.sign === 1) === (goal === 'min') ? 1 : t.sides)
          : [],
      );
      return sequence(...faces);
    };
    fc.assert(
      fc.property(notation, (input) => {
        const expression = parse(input);
        const [min, max] = totalRange(expression);
        expect(rollDice(expression, extremes(expression, 'min')).total).toBe(min);
        expect(rollDice(expression, extremes(expression, 'max')).total).toBe(max);
      }),
    );
  });
});

describe('rollDice: exploding, rerolls, success counting, Fate (issue 14)', () => {
  it('explodes on the maximum, adding a die, and stops after the cap', () => {
    const outcome = rollDice(parse('2d6!'), sequence(6, 6, 2, 3));
    const [term] = outcome.terms;
    expect(term).toMatchObject({
      dice: [
        { value: 6, kept: true, exploded: true },
        { value: 6, kept: true, exploded: true },
        { value: 2, kept: true },
        { value: 3, kept: true },
      ],
      subtotal: 17,
    });
    // A source that always shows the maximum: the chain stops after maxExplosionsPerDie.
    const capped = rollDice(parse('1d6!'), () => 6).terms[0];
    if (capped?.kind !== 'dice') throw new Error('expected dice');
    expect(capped.dice).toHaveLength(1 + DICE_LIMITS.maxExplosionsPerDie);
    expect(capped.dice.at(-1)).toStrictEqual({ value: 6, kept: true });
  });

  it('rerolls while matching (capped) with r, once with ro', () => {
    const r = rollDice(parse('1d6r<3'), sequence(1, 2, 5)).terms[0];
    expect(r).toMatchObject({
      dice: [
        { value: 1, kept: false, rerolled: true },
        { value: 2, kept: false, rerolled: true },
        { value: 5, kept: true },
      ],
      subtotal: 5,
    });
    const ro = rollDice(parse('1d6ro<3'), sequence(1, 2)).terms[0];
    expect(ro).toMatchObject({
      dice: [
        { value: 1, rerolled: true },
        { value: 2, kept: true },
      ],
      subtotal: 2,
    });
    const capped = rollDice(parse('1d6r1'), () => 1).terms[0];
    if (capped?.kind !== 'dice') throw new Error('expected dice');
    expect(capped.dice).toHaveLength(1 + DICE_LIMITS.maxRerollsPerDie);
    expect(capped.subtotal).toBe(1); // the last value stands
  });

  it('counts successes among kept dice, and keeps after rerolls', () => {
    const outcome = rollDice(parse('5d10kh4>=8'), sequence(9, 3, 8, 10, 7));
    expect(outcome.terms[0]).toMatchObject({
      dice: [
        { value: 9, kept: true, success: true },
        { value: 3, kept: false },
        { value: 8, kept: true, success: true },
        { value: 10, kept: true, success: true },
        { value: 7, kept: true },
      ],
      subtotal: 3,
    });
    expect(outcome.total).toBe(3);
  });

  it('rolls Fate dice from -1 to +1 and advantage as 2d20kh1', () => {
    const calls: [number, number][] = [];
    const fate = rollDice(parse('4dF'), (min, max) => {
      calls.push([min, max]);
      return min + (calls.length % 3);
    });
    expect(calls.every(([min, max]) => min === -1 && max === 2)).toBe(true);
    expect(fate.total).toBe(0 + 1 - 1 + 0);
    const adv = rollDice(parse('1d20adv'), sequence(4, 17));
    expect(adv.total).toBe(17);
    const dis = rollDice(parse('1d20dis'), sequence(4, 17));
    expect(dis.total).toBe(4);
  });

  it('never draws more than the hard bound, and stays in range, whatever the dice show (property)', () => {
    const notations = fc.constantFrom(
      '100d6!',
      '100d6r<6',
      '100d6!r<6',
      '50d2!ro1kh10>=2',
      '100dF>=1',
      '33d1000!r<1000 + 33d6! + 34d4!dl3',
    );
    const source = fc.oneof(fc.constant('max'), fc.constant('min'), fc.constant('random'));
    fc.assert(
      fc.property(notations, source, fc.integer(), (notation, kind, seed) => {
        let draws = 0;
        let state = seed >>> 0;
        const random = (min: number, maxExclusive: number) => {
          draws++;
          if (kind === 'max') return maxExclusive - 1;
          if (kind === 'min') return min;
          state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
          return min + (state % (maxExclusive - min));
        };
        const expression = parse(notation);
        const outcome = rollDice(expression, random);
        const dice = expression.terms.reduce((n, t) => n + (t.kind === 'dice' ? t.count : 0), 0);
        expect(draws).toBeLessThanOrEqual(
          Math.min(
            DICE_LIMITS.maxDrawsPerRoll,
            dice * (1 + DICE_LIMITS.maxExplosionsPerDie) * (1 + DICE_LIMITS.maxRerollsPerDie),
          ),
        );
        // Every draw is recorded, and nothing else is.
        const recorded = outcome.terms.reduce((n, t) => n + (t.kind === 'dice' ? t.dice.length : 0), 0);
        expect(recorded).toBe(draws);
        // One expect per run: thousands of expect calls per run would dominate the test's time.
        const outOfRange = outcome.terms.flatMap((term) => {
          if (term.kind !== 'dice') return [];
          const [lo, hi] = term.fate ? [-1, 1] : [1, term.sides];
          return term.dice.filter((die) => die.value < lo || die.value > hi);
        });
        expect(outOfRange).toStrictEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it('caps the values one roll records, so its size stays bounded (red-team F1: 100d2r1! made 88 KB)', () => {
    for (const [notation, face] of [
      ['100d2r1!', 'max'],
      ['100d2r1!', 'min'],
      ['50d6! + 50d6r<6', 'max'],
      ['50d6! + 50d6r<6', 'min'],
    ] as const) {
      let draws = 0;
      const outcome = rollDice(parse(notation), (min, maxExclusive) => {
        draws++;
        return face === 'max' ? maxExclusive - 1 : min;
      });
      expect(draws, notation).toBeLessThanOrEqual(DICE_LIMITS.maxDrawsPerRoll);
      const dice = outcome.terms.flatMap((term) => (term.kind === 'dice' ? term.dice : []));
      expect(dice.length, notation).toBe(draws);
      // Every die asked for still stands (no keep rule here): at least 100 dice are not rerolled away.
      expect(dice.filter((die) => die.rerolled !== true).length, notation).toBeGreaterThanOrEqual(100);
      expect(JSON.stringify(outcome).length, notation).toBeLessThan(20_000);
    }
    // The budget is shared across terms: once spent, a maximum no longer explodes.
    const outcome = rollDice(parse('99d2! + 1d2!'), (_min, maxExclusive) => maxExclusive - 1);
    const last = outcome.terms[1];
    if (last?.kind !== 'dice') throw new Error('expected a dice term');
    expect(last.dice).toStrictEqual([{ value: 2, kept: true }]);
  });

  it('distribution sanity: 4dF averages 0, 1d20adv beats 1d20dis, exploding d6 averages 4.2', () => {
    // Real CSPRNG, generous tolerances (many standard errors): a biased roller fails, chance does not.
    const mean = (notation: string, n: number) => {
      const expression = parse(notation);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += rollDice(expression).total;
      return sum / n;
    };
    expect(Math.abs(mean('4dF', 4000))).toBeLessThan(0.15); // sd ≈ 1.63 → se ≈ 0.026
    expect(mean('1d20adv', 4000)).toBeGreaterThan(13); // expected 13.82
    expect(mean('1d20dis', 4000)).toBeLessThan(8); // expected 7.18
    expect(Math.abs(mean('1d6!', 4000) - 4.2)).toBeLessThan(0.3); // sd ≈ 2.9 → se ≈ 0.046
    // Success counting on d10 >= 8: p = 0.3 per die.
    expect(Math.abs(mean('10d10>=8', 4000) - 3)).toBeLessThan(0.2);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NotationError, ParseResult } from '../../../../src/apps/dicery/shared/dice-notation.js';
import { DICE_LIMITS, parseNotation } from '../../../../src/apps/dicery/shared/dice-notation.js';

function expectOk(result: ParseResult) {
  if (!result.ok) throw new Error(`expected success, got ${JSON.stringify(result.error)}`);
  return result.expression;
}

function expectError(input: string, code: NotationError['code'], position: number): NotationError {
  const result = parseNotation(input);
  if (result.ok) throw new Error(`expected ${input} to fail`);
  expect(result.error).toMatchObject({ code, position });
  expect(result.error.message).not.toBe('');
  return result.error;
}

describe('parseNotation: valid notation', () => {
  it.each([
    ['1d20', [{ kind: 'dice', sign: 1, count: 1, sides: 20 }]],
    ['d20', [{ kind: 'dice', sign: 1, count: 1, sides: 20 }]],
    ['D20', [{ kind: 'dice', sign: 1, count: 1, sides: 20 }]],
    ['d%', [{ kind: 'dice', sign: 1, count: 1, sides: 100 }]],
    ['4d6kh3', [{ kind: 'dice', sign: 1, count: 4, sides: 6, keep: { mode: 'kh', n: 3 } }]],
    ['4d6k3', [{ kind: 'dice', sign: 1, count: 4, sides: 6, keep: { mode: 'kh', n: 3 } }]],
    ['2d20kl1', [{ kind: 'dice', sign: 1, count: 2, sides: 20, keep: { mode: 'kl', n: 1 } }]],
    ['4d6dl1', [{ kind: 'dice', sign: 1, count: 4, sides: 6, keep: { mode: 'dl', n: 1 } }]],
    ['4D6DH1', [{ kind: 'dice', sign: 1, count: 4, sides: 6, keep: { mode: 'dh', n: 1 } }]],
    [
      '1d20+5',
      [
        { kind: 'dice', sign: 1, count: 1, sides: 20 },
        { kind: 'constant', sign: 1, value: 5 },
      ],
    ],
    [
      '2d6-1',
      [
        { kind: 'dice', sign: 1, count: 2, sides: 6 },
        { kind: 'constant', sign: -1, value: 1 },
      ],
    ],
    [
      '3d8+2d6+4',
      [
        { kind: 'dice', sign: 1, count: 3, sides: 8 },
        { kind: 'dice', sign: 1, count: 2, sides: 6 },
        { kind: 'constant', sign: 1, value: 4 },
      ],
    ],
    [
      '2d20kh1+5',
      [
        { kind: 'dice', sign: 1, count: 2, sides: 20, keep: { mode: 'kh', n: 1 } },
        { kind: 'constant', sign: 1, value: 5 },
      ],
    ],
    [
      '  -1 + 1d4 -  d6\t',
      [
        { kind: 'constant', sign: -1, value: 1 },
        { kind: 'dice', sign: 1, count: 1, sides: 4 },
        { kind: 'dice', sign: -1, count: 1, sides: 6 },
      ],
    ],
  ])('parses %j', (input, terms) => {
    expect(expectOk(parseNotation(input))).toStrictEqual({ terms });
  });

  it('accepts values right at the limits', () => {
    expect(expectOk(parseNotation('100d1000')).terms).toHaveLength(1);
    expect(expectOk(parseNotation('d1')).terms).toHaveLength(1);
    expect(expectOk(parseNotation('50d6+50d6-100000')).terms).toHaveLength(3);
    expect(expectOk(parseNotation('4d6kh4')).terms[0]).toMatchObject({ keep: { mode: 'kh', n: 4 } });
    expect(expectOk(parseNotation('4d6dl0')).terms[0]).toMatchObject({ keep: { mode: 'dl', n: 0 } });
    expect(expectOk(parseNotation('d20'.padEnd(DICE_LIMITS.maxInputLength, ' '))).terms).toHaveLength(1);
  });
});

describe('parseNotation: errors carry the offending position', () => {
  it.each<[string, NotationError['code'], number]>([
    ['', 'NOTATION_SYNTAX', 0],
    ['   ', 'NOTATION_SYNTAX', 3],
    ['5', 'NOTATION_SYNTAX', 0], // no dice term
    ['1d', 'NOTATION_SYNTAX', 2],
    ['1d20+', 'NOTATION_SYNTAX', 5],
    ['1d20 5', 'NOTATION_SYNTAX', 5],
    ['1d20++5', 'NOTATION_SYNTAX', 5],
    ['1d20*2', 'NOTATION_SYNTAX', 4],
    ['4d 6', 'NOTATION_SYNTAX', 2],
    ['4d6kh', 'NOTATION_SYNTAX', 5],
    ['4d6d1', 'NOTATION_SYNTAX', 3],
    ['4d6kh3kh1', 'NOTATION_SYNTAX', 6],
    ['x', 'NOTATION_SYNTAX', 0],
    ['1d20+-3', 'NOTATION_SYNTAX', 5],
    ['1d\u212A', 'NOTATION_SYNTAX', 2], // Kelvin sign must not pass for "k"
    ['1d２0', 'NOTATION_SYNTAX', 2], // full-width digit
    ['0d6', 'NOTATION_LIMIT', 0],
    ['101d6', 'NOTATION_LIMIT', 0],
    ['1d20+60d6+41d4', 'NOTATION_LIMIT', 10], // total dice over budget
    ['1d0', 'NOTATION_LIMIT', 2],
    ['1d1001', 'NOTATION_LIMIT', 2],
    ['1d20+100001', 'NOTATION_LIMIT', 5],
    ['4d6kh0', 'NOTATION_LIMIT', 5],
    ['4d6kl5', 'NOTATION_LIMIT', 5],
    ['4d6dl4', 'NOTATION_LIMIT', 5],
    ['1d20+99999999999999999999', 'NOTATION_LIMIT', 5],
    ['d20'.padEnd(DICE_LIMITS.maxInputLength + 1, ' '), 'NOTATION_LIMIT', DICE_LIMITS.maxInputLength],
  ])('rejects %j with %s at %d', (input, code, position) => {
    expectError(input, code, position);
  });
});

describe('parseNotation: properties', () => {
  it('never throws, and any error points inside the input (or just past it)', () => {
    const alphabet = fc.constantFrom(...'0123456789dDkKhHlL%+- \tx*'.split(''));
    const inputs = fc.oneof(
      fc.string(),
      fc.string({ unit: alphabet, maxLength: 70 }),
      fc.string({ unit: 'binary' }),
    );
    fc.assert(
      fc.property(inputs, (input) => {
        const result = parseNotation(input);
        if (!result.ok) {
          expect(result.error.position).toBeGreaterThanOrEqual(0);
          expect(result.error.position).toBeLessThanOrEqual(
            Math.min(input.length, DICE_LIMITS.maxInputLength),
          );
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never produces an expression outside the limits', () => {
    const alphabet = fc.constantFrom(...'0123456789dkhl%+- '.split(''));
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 64 }), (input) => {
        const result = parseNotation(input);
        if (!result.ok) return;
        let dice = 0;
        for (const term of result.expression.terms) {
          if (term.kind === 'constant') {
            expect(term.value).toBeLessThanOrEqual(DICE_LIMITS.maxModifier);
            continue;
          }
          dice += term.count;
          expect(term.count).toBeGreaterThanOrEqual(1);
          expect(term.sides).toBeGreaterThanOrEqual(DICE_LIMITS.minSides);
          expect(term.sides).toBeLessThanOrEqual(DICE_LIMITS.maxSides);
        }
        expect(dice).toBeGreaterThan(0);
        expect(dice).toBeLessThanOrEqual(DICE_LIMITS.maxTotalDice);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseNotation: exploding, rerolls, success counting, Fate, advantage, labels (issue 14)', () => {
  it.each([
    ['8d6!', { kind: 'dice', sign: 1, count: 8, sides: 6, explode: true }],
    [
      '4d6r1',
      { kind: 'dice', sign: 1, count: 4, sides: 6, reroll: { once: false, when: { op: '=', value: 1 } } },
    ],
    [
      '4d6ro<3',
      { kind: 'dice', sign: 1, count: 4, sides: 6, reroll: { once: true, when: { op: '<', value: 3 } } },
    ],
    [
      '4d6R<=2',
      { kind: 'dice', sign: 1, count: 4, sides: 6, reroll: { once: false, when: { op: '<=', value: 2 } } },
    ],
    ['6d10>=8', { kind: 'dice', sign: 1, count: 6, sides: 10, success: { op: '>=', value: 8 } }],
    ['6d10=10', { kind: 'dice', sign: 1, count: 6, sides: 10, success: { op: '=', value: 10 } }],
    ['4dF', { kind: 'dice', sign: 1, count: 4, sides: 3, fate: true }],
    ['1d20adv', { kind: 'dice', sign: 1, count: 2, sides: 20, keep: { mode: 'kh', n: 1 } }],
    ['d20DIS', { kind: 'dice', sign: 1, count: 2, sides: 20, keep: { mode: 'kl', n: 1 } }],
    [
      '5d6!r1kh3>4',
      {
        kind: 'dice',
        sign: 1,
        count: 5,
        sides: 6,
        explode: true,
        reroll: { once: false, when: { op: '=', value: 1 } },
        keep: { mode: 'kh', n: 3 },
        success: { op: '>', value: 4 },
      },
    ],
  ])('parses %j', (input, term) => {
    expect(expectOk(parseNotation(input)).terms).toStrictEqual([term]);
  });

  it('reads a label after each term', () => {
    expect(expectOk(parseNotation('1d20adv [to hit] + 5 [str] - 1d4[ bane ]')).terms).toStrictEqual([
      { kind: 'dice', sign: 1, count: 2, sides: 20, keep: { mode: 'kh', n: 1 }, label: 'to hit' },
      { kind: 'constant', sign: 1, value: 5, label: 'str' },
      { kind: 'dice', sign: -1, count: 1, sides: 4, label: 'bane' },
    ]);
  });

  it.each<[string, NotationError['code'], number]>([
    ['1d6!!', 'NOTATION_SYNTAX', 4],
    ['1d1!', 'NOTATION_LIMIT', 3], // would explode on every roll
    ['4dF!', 'NOTATION_SYNTAX', 3],
    ['4dFr1', 'NOTATION_SYNTAX', 3],
    ['1d6r', 'NOTATION_SYNTAX', 4],
    ['1d6ro', 'NOTATION_SYNTAX', 5],
    ['1d6r<', 'NOTATION_SYNTAX', 5],
    ['1d6r7', 'NOTATION_LIMIT', 4],
    ['1d6r0', 'NOTATION_LIMIT', 4],
    ['1d6r<7', 'NOTATION_LIMIT', 4],
    ['1d6r>=1', 'NOTATION_LIMIT', 4], // matches every face: would never settle
    ['1d6r1r2', 'NOTATION_SYNTAX', 5],
    ['1d6>=', 'NOTATION_SYNTAX', 5],
    ['1d6>=4>5', 'NOTATION_SYNTAX', 6],
    ['2d20adv', 'NOTATION_SYNTAX', 4],
    ['1d20advkh1', 'NOTATION_SYNTAX', 7],
    ['1d20kh1adv', 'NOTATION_SYNTAX', 7],
    ['1d20a', 'NOTATION_SYNTAX', 4],
    ['1d20di', 'NOTATION_SYNTAX', 4],
    ['51d6adv+50d6', 'NOTATION_SYNTAX', 4],
    ['1d20adv+99d6', 'NOTATION_LIMIT', 8], // adv counts two dice against the budget
    ['1d20 [hit', 'NOTATION_SYNTAX', 5],
    ['1d20 []', 'NOTATION_SYNTAX', 5],
    ['1d20 [  ]', 'NOTATION_SYNTAX', 5],
    ['1d20 [a[b]', 'NOTATION_SYNTAX', 7],
    ['1d20 [a\u202Eb]', 'NOTATION_SYNTAX', 7], // bidi override
    ['1d20 [a\u0007]', 'NOTATION_SYNTAX', 7],
    ['1d20 [\uD800]', 'NOTATION_SYNTAX', 6], // lone surrogate
    [`1d20 [${'x'.repeat(DICE_LIMITS.maxLabelLength + 1)}]`, 'NOTATION_LIMIT', 6],
    ['1d20 [a] [b]', 'NOTATION_SYNTAX', 9],
    [Array.from({ length: DICE_LIMITS.maxTerms + 1 }, () => 'd2').join('+'), 'NOTATION_LIMIT', 60],
  ])('rejects %j with %s at %d', (input, code, position) => {
    expectError(input, code, position);
  });

  it('never accepts a term whose work exceeds the caps (property)', () => {
    const alphabet = fc.constantFrom(...'0123456789dDfFkKhHlLrRoO!<>=%+- []advis'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: DICE_LIMITS.maxInputLength }), (input) => {
        const result = parseNotation(input);
        if (!result.ok) {
          expect(result.error.position).toBeGreaterThanOrEqual(0);
          expect(result.error.position).toBeLessThanOrEqual(input.length);
          return;
        }
        let dice = 0;
        for (const term of result.expression.terms) {
          if (term.kind === 'constant') continue;
          dice += term.count;
          if (term.explode) expect(term.sides).toBeGreaterThanOrEqual(2);
          if (term.fate) expect(term.explode === undefined && term.reroll === undefined).toBe(true);
          if (term.reroll !== undefined) {
            // Some face must escape the reroll rule.
            const { when } = term.reroll;
            const escapes = Array.from({ length: term.sides }, (_, i) => i + 1).some((face) =>
              when.op === '<'
                ? !(face < when.value)
                : when.op === '<='
                  ? !(face <= when.value)
                  : when.op === '='
                    ? face !== when.value
                    : when.op === '>='
                      ? !(face >= when.value)
                      : !(face > when.value),
            );
            expect(escapes).toBe(true);
          }
        }
        expect(result.expression.terms.length).toBeLessThanOrEqual(DICE_LIMITS.maxTerms);
        expect(dice).toBeLessThanOrEqual(DICE_LIMITS.maxTotalDice);
      }),
      { numRuns: 3000 },
    );
  });
});

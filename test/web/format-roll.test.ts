import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseNotation, rollDice } from '../../src/apps/dicery/core/dice.js';
import { describeRoll, rollParts, splitAtPosition, termNotation } from '../../web/src/format-roll.js';
import type { Roll, RollTerm } from '../../web/src/types.js';

const stealth: Roll = {
  id: 7,
  player: { id: 'p1', name: 'Alice' },
  notation: '2d20kh1+5',
  label: 'Stealth',
  terms: [
    {
      kind: 'dice',
      sign: 1,
      count: 2,
      sides: 20,
      keep: { mode: 'kh', n: 1 },
      dice: [
        { value: 17, kept: true },
        { value: 3, kept: false },
      ],
      subtotal: 17,
    },
    { kind: 'constant', sign: 1, value: 5 },
  ],
  total: 22,
  rolled_at: '2025-01-01T12:00:00.000Z',
};

describe('termNotation', () => {
  it('writes count, sides and the keep rule', () => {
    expect(termNotation({ count: 4, sides: 6, keep: { mode: 'dl', n: 1 } })).toBe('4d6dl1');
    expect(termNotation({ count: 1, sides: 100, keep: null })).toBe('1d100');
  });
});

describe('rollParts', () => {
  it('puts operators between terms and none before a leading positive term', () => {
    expect(rollParts(stealth.terms)).toEqual([
      {
        kind: 'dice',
        notation: '2d20kh1',
        dice: stealth.terms[0]?.kind === 'dice' ? stealth.terms[0].dice : [],
        subtotal: 17,
      },
      { kind: 'operator', text: '+' },
      { kind: 'constant', value: 5 },
    ]);
  });

  it('uses a real minus sign, also before a leading negative term', () => {
    const terms: RollTerm[] = [
      { kind: 'constant', sign: -1, value: 2 },
      {
        kind: 'dice',
        sign: -1,
        count: 1,
        sides: 4,
        keep: null,
        dice: [{ value: 3, kept: true }],
        subtotal: 3,
      },
    ];
    expect(rollParts(terms).map((part) => (part.kind === 'operator' ? part.text : part.kind))).toEqual([
      '−',
      'constant',
      '−',
      'dice',
    ]);
  });
});

describe('describeRoll', () => {
  it('names the player, notation, label, each die (dropped ones marked) and the total', () => {
    expect(describeRoll(stealth)).toBe('Alice rolled 2d20kh1+5 (Stealth): 2d20kh1 [17, 3 dropped] + 5 = 22');
  });

  it('leaves the label out when there is none', () => {
    expect(describeRoll({ ...stealth, label: null })).toBe(
      'Alice rolled 2d20kh1+5: 2d20kh1 [17, 3 dropped] + 5 = 22',
    );
  });

  it('shows every die the server rolled, for any notation', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 100 }),
        fc.constantFrom('', 'kh1', 'kl1', 'dh1', 'dl1'),
        fc.integer({ min: -20, max: 20 }),
        (count, sides, keep, modifier) => {
          const keepRule = count > 1 ? keep : '';
          const notation = `${count}d${sides}${keepRule}${modifier < 0 ? modifier : `+${modifier}`}`;
          const parsed = parseNotation(notation);
          if (!parsed.ok) throw new Error(`${notation}: ${parsed.error.message}`);
          const outcome = rollDice(parsed.expression);
          const roll: Roll = {
            player: { id: 'p', name: 'Bo' },
            notation,
            label: null,
            terms: outcome.terms as RollTerm[],
            total: outcome.total,
            rolled_at: '',
          };
          const dice = rollParts(roll.terms).flatMap((part) => (part.kind === 'dice' ? part.dice : []));
          expect(dice).toHaveLength(count);
          expect(describeRoll(roll).endsWith(`= ${outcome.total}`)).toBe(true);
          const dropped = dice.filter((die) => !die.kept).length;
          expect(describeRoll(roll).split(' dropped').length - 1).toBe(dropped);
        },
      ),
    );
  });
});

describe('splitAtPosition', () => {
  it('isolates the character at the error position', () => {
    expect(splitAtPosition('2d20x+5', 4)).toEqual({ before: '2d20', at: 'x', after: '+5' });
  });

  it('marks nothing when the error is at the end (something is missing)', () => {
    expect(splitAtPosition('2d20+', 5)).toEqual({ before: '2d20+', at: '', after: '' });
    expect(splitAtPosition('2d', 99)).toEqual({ before: '2d', at: '', after: '' });
  });

  it('clamps negative positions to the start', () => {
    expect(splitAtPosition('x1', -3)).toEqual({ before: '', at: 'x', after: '1' });
  });

  it('keeps an emoji whole', () => {
    expect(splitAtPosition('1d🎲6', 2)).toEqual({ before: '1d', at: '🎲', after: '6' });
  });
});

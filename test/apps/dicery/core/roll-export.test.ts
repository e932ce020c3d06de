import { describe, expect, it } from 'vitest';
import { csvCell, rollCsvLine } from '../../../../src/apps/dicery/core/roll-export.js';
import type { RollView } from '../../../../src/apps/dicery/shared/wire.js';

function rollOf(notation: string, signs: readonly (1 | -1)[]): RollView {
  return {
    id: 7,
    player: { id: 'p1', name: 'Ann' },
    notation,
    label: null,
    terms: signs.map((sign, index) =>
      index === signs.length - 1
        ? { kind: 'constant' as const, sign, value: 2 }
        : {
            kind: 'dice' as const,
            sign,
            count: 2,
            sides: 6,
            keep: null,
            dice: [
              { value: 4, kept: true },
              { value: 1, kept: false },
            ],
            subtotal: 4,
          },
    ),
    modifier: 2,
    total: 6,
    rolled_at: '2024-01-01T00:00:00.000Z',
    visibility: 'room',
    hash: null,
  };
}

describe('csvCell', () => {
  it.each(['=1+1', '+cmd', '-1+1d4', '@SUM(A1)', '\tx', '\rx', '-', '+', '-1e5', '-0x10', '- 1'])(
    'prefixes the formula-looking text %j with a quote',
    (text) => {
      expect(csvCell(text)).toBe(`"'${text.replace(/"/g, '""')}"`);
    },
  );

  it.each(['-1', '+2', '-2.5', '12', '0.5'])('leaves the plain number %j alone (red-team F11)', (text) => {
    expect(csvCell(text)).toBe(`"${text}"`);
  });

  it('writes integers bare and quotes inner quotes', () => {
    expect(csvCell(-3)).toBe('-3');
    expect(csvCell(1.5)).toBe('""');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
  });
});

describe('rollCsvLine', () => {
  it('renders the dice cell without a leading "+" and without a quote prefix (red-team F11)', () => {
    const line = rollCsvLine(rollOf('2d6kh1+2', [1, 1]));
    expect(line).toContain(',"[4 (1)] +2",6,');
    expect(line).not.toContain("'");
  });

  it('still guards a dice cell that starts with a minus', () => {
    expect(rollCsvLine(rollOf('-2d6kh1-2', [-1, -1]))).toContain(`,"'-[4 (1)] -2",6,`);
  });
});

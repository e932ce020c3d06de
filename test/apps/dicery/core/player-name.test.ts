import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  normalizeDisplayText,
  normalizePlayerName,
  PLAYER_NAME_MAX_LENGTH,
} from '../../../../src/apps/dicery/core/player-name.js';

/** The key of a name that must be accepted. */
const key = (raw: string) => {
  const result = normalizePlayerName(raw);
  if (!result.ok) throw new Error(`rejected ${raw}`);
  return result.key;
};

describe('normalizePlayerName', () => {
  it('trims, keeps the name as typed (NFC) and folds width and case in the key', () => {
    expect(normalizePlayerName('  Ｂｏｂ ')).toEqual({
      ok: true,
      name: 'Ｂｏｂ',
      key: 'bob',
      legacyKey: 'bob',
    });
    expect(normalizePlayerName('Zoe\u0308')).toMatchObject({
      ok: true,
      name: 'Zo\u00EB',
      legacyKey: 'zo\u00EB',
    });
    expect(normalizePlayerName('ALICE')).toEqual({ ...normalizePlayerName('alice'), name: 'ALICE' });
  });

  it('collapses runs of spaces in the name and ignores spaces in the key', () => {
    expect(normalizePlayerName('Ann  \u3000 Lee')).toEqual({
      ok: true,
      name: 'Ann Lee',
      key: 'annlee',
      legacyKey: 'ann lee',
    });
  });

  // Red-team F8: look-alikes joined next to the name they imitate, and dodged a name ban.
  it.each([
    ['Cyrillic А', '\u0410lice'],
    ['Cyrillic і', 'Al\u0456ce'],
    ['Cyrillic е', 'Alic\u0435'],
    ['Greek Α', '\u0391lice'],
    ['spacing', 'A l i c e'],
    ['full width and case', '\uFF41\uFF2C\uFF29\uFF23\uFF25'],
  ])('gives the look-alike (%s) %j the key of Alice', (_label, raw) => {
    const alice = normalizePlayerName('Alice');
    const other = normalizePlayerName(raw);
    if (!alice.ok || !other.ok) throw new Error('rejected');
    expect(other.key).toBe(alice.key);
  });

  // Red-team 2026-12e J4: F8's skeleton folds look-alike letters but keeps invisible characters.
  // Default_Ignorable_Code_Point marks of category Mn/Lo (U+034F combining grapheme joiner,
  // U+FE0F variation selector, U+115F / U+3164 Hangul fillers) pass the display-text rules
  // (which refuse only Cc, Cf, Cs, Co, Cn, Zl, Zp), render as nothing, and change the key: a second
  // "Alice" joins beside the first, and a name-banned player comes back under the same name.
  it('J4: invisible characters do not make a second player of the same name', () => {
    const alice = normalizePlayerName('Alice');
    const sameKey: Record<string, boolean | 'refused'> = {};
    for (const name of ['Alice\u034F', 'Al\u034Fice', 'Alice\uFE0F', 'Alice\u115F', 'Alice\u3164']) {
      const result = normalizePlayerName(name);
      sameKey[JSON.stringify(name)] = result.ok ? alice.ok && result.key === alice.key : 'refused';
    }
    expect(Object.values(sameKey).filter((same) => same === false)).toEqual([]);
  });

  it('J4: variation selectors display text keeps (after an emoji or a digit) do not change the key', () => {
    expect(key('Bob1\uFE0F')).toBe(key('Bob1'));
    expect(key('Bob \u2764\uFE0F')).toBe(key('Bob \u2764'));
    expect(key('Alice\u2800')).toBe(key('Alice'));
  });

  it('folds digits and letter pairs that read alike (UTS #39 skeleton)', () => {
    expect(key('B0b')).toBe(key('Bob'));
    expect(key('Sarn')).toBe(key('Sam'));
    expect(key('Bob')).not.toBe(key('Rob'));
    expect(key('Alice')).not.toBe(key('Alicia'));
  });

  it.each(['Host', 'HOST', 'h o s t', '\u041Dost', 'GM', 'gm', 'Admin', 'Server', 'System', 'Game Master'])(
    'refuses the reserved name %j',
    (raw) => {
      expect(normalizePlayerName(raw)).toEqual({ ok: false, reason: 'reserved' });
    },
  );

  it('admits names that merely contain a reserved word', () => {
    for (const raw of ['Hostess', 'GM Pat', 'Serverus'])
      expect(normalizePlayerName(raw)).toMatchObject({ ok: true });
  });

  it('gives names differing only in case the same key', () => {
    const keys = ['Straße', 'STRASSE', 'strasse', 'ΣΊΣΥΦΟΣ', 'σίσυφος', 'σίσυφοσ'].map((raw) => {
      const result = normalizePlayerName(raw);
      if (!result.ok) throw new Error(`rejected ${raw}`);
      return result.key;
    });
    expect(new Set(keys.slice(0, 3)).size).toBe(1);
    expect(new Set(keys.slice(3)).size).toBe(1);
  });

  it('counts code points, not UTF-16 units', () => {
    const emoji = '🎲'.repeat(PLAYER_NAME_MAX_LENGTH);
    expect(normalizePlayerName(emoji)).toMatchObject({ ok: true, name: emoji });
    expect(normalizePlayerName(`${emoji}🎲`)).toEqual({ ok: false, reason: 'too_long' });
    expect(normalizePlayerName('a'.repeat(PLAYER_NAME_MAX_LENGTH))).toMatchObject({ ok: true });
    expect(normalizePlayerName('a'.repeat(PLAYER_NAME_MAX_LENGTH + 1))).toEqual({
      ok: false,
      reason: 'too_long',
    });
  });

  it('rejects empty and blank names', () => {
    for (const raw of ['', '   ', '\u3000'])
      expect(normalizePlayerName(raw)).toEqual({ ok: false, reason: 'empty' });
  });

  it('rejects huge input without normalizing it', () => {
    expect(normalizePlayerName('a'.repeat(1_000_000))).toEqual({ ok: false, reason: 'too_long' });
  });

  it.each([
    ['NUL', 'Al\u0000ice'],
    ['newline', 'Al\nice'],
    ['tab', 'Al\tice'],
    ['escape', '\u001b[31mAlice'],
    ['DEL', 'Alice\u007f'],
    ['C1 control', 'Alice\u0085'],
    ['right-to-left override', 'Alice\u202Eevil'],
    ['left-to-right isolate', '\u2066Alice'],
    ['zero-width space', 'Al\u200Bice'],
    ['zero-width joiner', 'Al\u200Dice'],
    ['byte order mark', '\uFEFFAlice'],
    ['line separator', 'Al\u2028ice'],
    ['lone surrogate', 'Al\uD800ice'],
    ['private use', 'Al\uE000ice'],
    ['unassigned', 'Al\u0378ice'],
  ])('rejects a %s', (_label, raw) => {
    expect(normalizePlayerName(raw)).toEqual({ ok: false, reason: 'invalid_characters' });
  });

  it('keeps markup as plain text (escaping is the renderer’s job)', () => {
    expect(normalizePlayerName('<b>Bob</b>')).toMatchObject({ ok: true, name: '<b>Bob</b>' });
  });

  it('always yields normalized, bounded, control-free names (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (raw) => {
        const result = normalizePlayerName(raw);
        if (!result.ok) return;
        expect(result.name).toBe(result.name.normalize('NFC').trim());
        expect([...result.name].length).toBeGreaterThanOrEqual(1);
        expect([...result.name].length).toBeLessThanOrEqual(PLAYER_NAME_MAX_LENGTH);
        expect(result.name).not.toMatch(/[\p{Cc}\p{Cf}\p{Cs}]/u);
        // Normalizing is idempotent, and the key does not depend on case.
        expect(normalizePlayerName(result.name)).toEqual(result);
        const upper = normalizePlayerName(result.name.toUpperCase());
        if (upper.ok) expect(upper.key).toBe(result.key);
      }),
    );
  });
});

describe('normalizeDisplayText', () => {
  it('applies the given length limit', () => {
    expect(normalizeDisplayText('x'.repeat(80), 80)).toEqual({ ok: true, text: 'x'.repeat(80) });
    expect(normalizeDisplayText('x'.repeat(81), 80)).toEqual({ ok: false, reason: 'too_long' });
  });
});

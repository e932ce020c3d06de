import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  countCodePoints,
  describeDisplayTextRejection,
  normalizeDisplayText,
} from '../../src/text/display-text.js';

const FORBIDDEN =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for.
  /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\u200B-\u200D\u2060\uFEFF\u2028\u2029\u115F\u1160\u3164\uFFA0\u2800]|\u034F|\p{Cs}/u;

describe('normalizeDisplayText', () => {
  it('composes to NFC, collapses spaces and trims, keeping what was typed otherwise', () => {
    expect(normalizeDisplayText('  Cafe\u0301   au\u3000lait ', 40)).toEqual({
      ok: true,
      text: 'Caf\u00E9 au lait',
    });
    // NFC, not NFKC: full-width letters and ligatures stay as written.
    expect(normalizeDisplayText('Ｂｏｂ ﬁsh', 40)).toEqual({ ok: true, text: 'Ｂｏｂ ﬁsh' });
  });

  it('counts code points after normalizing', () => {
    expect(normalizeDisplayText('🎲'.repeat(5), 5)).toEqual({ ok: true, text: '🎲'.repeat(5) });
    expect(normalizeDisplayText('🎲'.repeat(6), 5)).toEqual({ ok: false, reason: 'too_long' });
    expect(normalizeDisplayText('e\u0301'.repeat(5), 5)).toEqual({ ok: true, text: '\u00E9'.repeat(5) });
    expect(countCodePoints('a🎲é')).toBe(3);
  });

  it('refuses empty text and huge input (before normalizing it)', () => {
    expect(normalizeDisplayText(' \u3000 ', 10)).toEqual({ ok: false, reason: 'empty' });
    expect(normalizeDisplayText('a'.repeat(100_000), 10)).toEqual({ ok: false, reason: 'too_long' });
  });

  it.each([
    ['NUL', '\u0000'],
    ['line feed', '\n'],
    ['tab', '\t'],
    ['escape', '\u001B'],
    ['DEL', '\u007F'],
    ['C1 control', '\u0085'],
    ...['\u202A', '\u202B', '\u202C', '\u202D', '\u202E'].map((c) => ['bidi embedding/override', c]),
    ...['\u2066', '\u2067', '\u2068', '\u2069'].map((c) => ['bidi isolate', c]),
    ...['\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF'].map((c) => ['zero-width character', c]),
    ['line separator', '\u2028'],
    ['paragraph separator', '\u2029'],
    ['unpaired high surrogate', '\uD800'],
    ['unpaired low surrogate', '\uDC00'],
    ['private use', '\uE000'],
    ['unassigned', '\u0378'],
    // Red-team 2026-12e J4: default-ignorable code points of categories Mn and Lo draw as nothing.
    ['combining grapheme joiner', '\u034F'],
    ...['\u115F', '\u1160', '\u3164', '\uFFA0'].map((c) => ['Hangul filler', c]),
    ['Khmer inherent vowel', '\u17B4'],
    ...['\uFE0F', '\uFE00', '\u{E0100}', '\u180B'].map((c) => ['variation selector after a letter', c]),
  ])('refuses a %s (%j) anywhere in the text', (_label, character) => {
    for (const text of [`${character}Alice`, `Al${character}ice`, `Alice${character}`]) {
      expect(normalizeDisplayText(text, 40)).toEqual({ ok: false, reason: 'invalid_characters' });
    }
  });

  it('keeps variation selectors where they select a glyph (J4), one each', () => {
    for (const text of [
      'I \u2764\uFE0F dice',
      'Team 1\uFE0F\u20E3',
      '\u845B\u{E0100}',
      '\u1820\u180B',
      '\u263A\uFE0E',
    ]) {
      expect(normalizeDisplayText(text, 40)).toEqual({ ok: true, text });
    }
    for (const text of ['\uFE0F', '\u2764\uFE0F\uFE0F', '\u1820\u180B\u180B']) {
      expect(normalizeDisplayText(text, 40)).toEqual({ ok: false, reason: 'invalid_characters' });
    }
  });

  it('collapses and trims a braille blank like a space (J4)', () => {
    expect(normalizeDisplayText('\u2800Alice\u2800\u2800Bob\u2800', 40)).toEqual({
      ok: true,
      text: 'Alice Bob',
    });
    expect(normalizeDisplayText('\u2800', 40)).toEqual({ ok: false, reason: 'empty' });
  });

  it('describes each rejection for a field error', () => {
    expect(describeDisplayTextRejection('too_long', 80)).toBe('must be at most 80 characters');
    expect(describeDisplayTextRejection('empty', 80)).toBe('must not be empty');
    expect(describeDisplayTextRejection('invalid_characters', 80)).toMatch(/control/);
  });

  it('only ever yields NFC, trimmed, bounded text free of forbidden characters (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.integer({ min: 1, max: 60 }),
        (raw, max) => {
          const result = normalizeDisplayText(raw, max);
          if (!result.ok) return;
          expect(result.text).toBe(result.text.normalize('NFC'));
          expect(result.text).toBe(result.text.trim());
          expect(result.text).not.toMatch(FORBIDDEN);
          expect(countCodePoints(result.text)).toBeLessThanOrEqual(max);
          expect(result.text.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

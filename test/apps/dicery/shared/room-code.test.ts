import { describe, expect, it } from 'vitest';
import {
  generateRoomCode,
  normalizeRoomCode,
  ROOM_CODE_ALPHABET,
  ROOM_CODE_LENGTH,
} from '../../../../src/apps/dicery/shared/room-code.js';

describe('generateRoomCode', () => {
  it('draws 8 characters from the unambiguous alphabet', () => {
    expect(ROOM_CODE_LENGTH).toBeGreaterThanOrEqual(6);
    for (let i = 0; i < 200; i++) {
      const code = generateRoomCode();
      expect(code).toHaveLength(ROOM_CODE_LENGTH);
      for (const char of code) expect(ROOM_CODE_ALPHABET).toContain(char);
    }
  });

  it('never uses characters that read alike', () => {
    for (const char of '0O1IL') expect(ROOM_CODE_ALPHABET).not.toContain(char);
    expect(new Set(ROOM_CODE_ALPHABET).size).toBe(ROOM_CODE_ALPHABET.length);
  });

  it('uses every character of the alphabet and does not repeat codes', () => {
    const codes = Array.from({ length: 2000 }, generateRoomCode);
    expect(new Set(codes).size).toBe(codes.length);
    expect(new Set(codes.join('')).size).toBe(ROOM_CODE_ALPHABET.length);
  });
});

describe('normalizeRoomCode', () => {
  it('trims and upper-cases a valid code', () => {
    expect(normalizeRoomCode('  abcd2345\t')).toBe('ABCD2345');
    expect(normalizeRoomCode('ABCD2345')).toBe('ABCD2345');
  });

  it.each([
    ['too short', 'ABCD234'],
    ['too long', 'ABCD23456'],
    ['ambiguous zero', 'ABCD2340'],
    ['ambiguous O', 'ABCDO345'],
    ['ambiguous one', 'ABCD2341'],
    ['ambiguous I (either case)', 'ABCDi345'],
    ['ambiguous L (either case)', 'ABCDl345'],
    ['inner space', 'ABCD 345'],
    ['non-ASCII that upper-cases to ASCII', 'ABCDEF\uFB00'],
    ['full-width letters', 'ＡＢＣＤ２３４５'],
    ['empty', ''],
    ['huge', 'A'.repeat(100_000)],
  ])('rejects %s', (_label, input) => {
    expect(normalizeRoomCode(input)).toBeUndefined();
  });

  it('accepts every generated code unchanged', () => {
    for (let i = 0; i < 100; i++) {
      const code = generateRoomCode();
      expect(normalizeRoomCode(code.toLowerCase())).toBe(code);
    }
  });
});

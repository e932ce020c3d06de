import { describe, expect, it } from 'vitest';
import { commonPasswordCount, isCommonPassword } from '../../src/passwords/common-passwords.js';
import { checkPasswordPolicy } from '../../src/passwords/password-policy.js';

describe('password policy', () => {
  it('ships a list of at least 10 000 common passwords', () => {
    expect(commonPasswordCount()).toBeGreaterThanOrEqual(10_000);
    expect(isCommonPassword('password')).toBe(true);
    expect(isCommonPassword('QWERTY123')).toBe(true);
    // Exact matches only: a common password's prefix is not itself on the list.
    expect(isCommonPassword('trustno')).toBe(false);
    expect(isCommonPassword('trustno1')).toBe(true);
  });

  it('rejects short, long and common passwords with the reason', () => {
    expect(checkPasswordPolicy('short7!')).toEqual({
      ok: false,
      reason: expect.stringContaining('at least 8'),
    });
    expect(checkPasswordPolicy('a'.repeat(1025))).toEqual({
      ok: false,
      reason: expect.stringContaining('at most 1024'),
    });
    expect(checkPasswordPolicy('iloveyou1')).toEqual({
      ok: false,
      reason: expect.stringContaining('common'),
    });
  });

  it('counts characters after NFKC, not bytes or UTF-16 units', () => {
    // Eight emoji are 8 characters (16 UTF-16 units, 32 bytes): accepted at the lower bound.
    expect(checkPasswordPolicy('🎲'.repeat(8)).ok).toBe(true);
    expect(checkPasswordPolicy('🎲'.repeat(7)).ok).toBe(false);
    // The ligature "ﬀ" becomes "ff" under NFKC, so these two are one password.
    const a = checkPasswordPolicy('ﬀ-staple-battery');
    const b = checkPasswordPolicy('ff-staple-battery');
    expect(a.ok && b.ok && a.password === b.password).toBe(true);
  });

  it('never truncates: a 1024-character password keeps every character', () => {
    const long = `${'x'.repeat(1000)}${'y'.repeat(24)}`;
    const check = checkPasswordPolicy(long);
    expect(check.ok && check.password.length === 1024).toBe(true);
  });
});

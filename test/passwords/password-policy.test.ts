import { describe, expect, it } from 'vitest';
import { commonPasswordCount, isCommonPassword } from '../../src/passwords/common-passwords.js';
import {
  checkPasswordPolicy,
  createPasswordPolicy,
  DEFAULT_MIN_PASSWORD_LENGTH,
} from '../../src/passwords/password-policy.js';

describe('common password list', () => {
  it('holds the 100 000 most common passwords, compared case-insensitively, exact matches only', () => {
    // 100 000 lines; 3 482 differ from another only in case, so the case-folded Set holds 96 518.
    expect(commonPasswordCount()).toBeGreaterThanOrEqual(96_000);
    for (const common of ['password', 'QWERTY123', 'trustno1', 'iloveyou1', 'password1', 'sunshine1']) {
      expect(isCommonPassword(common), common).toBe(true);
    }
    // The tail of the list (rank ≈ 100 000) is there too, not only the top 10 000.
    expect(isCommonPassword('070162')).toBe(true);
    expect(isCommonPassword('plum tiger lantern')).toBe(false);
  });
});

describe('password policy', () => {
  it('asks 15 characters by default and refuses a minimum below 8 or above 64', () => {
    expect(DEFAULT_MIN_PASSWORD_LENGTH).toBe(15);
    expect(checkPasswordPolicy('fourteen chars')).toEqual({
      ok: false,
      reason: expect.stringContaining('at least 15'),
    });
    expect(checkPasswordPolicy('fifteen chars!!').ok).toBe(true);
    expect(() => createPasswordPolicy({ minLength: 7 })).toThrow(RangeError);
    expect(() => createPasswordPolicy({ minLength: 65 })).toThrow(RangeError);
    expect(createPasswordPolicy({ minLength: 8 }).check('tangible').ok).toBe(true);
  });

  it('rejects long and common passwords with the reason, and the issue 8 examples', () => {
    expect(checkPasswordPolicy('a'.repeat(1025))).toEqual({
      ok: false,
      reason: expect.stringContaining('at most 1024'),
    });
    const eight = createPasswordPolicy({ minLength: 8 });
    for (const weak of ['password123', 'Passw0rd!', 'iloveyou1', 'PASSWORD123']) {
      expect(eight.check(weak), weak).toEqual({ ok: false, reason: expect.stringContaining('common') });
    }
  });

  it('rejects simple variants of a listed password (case, digits or symbols around it)', () => {
    for (const weak of ['password12345678', '!!!Sunshine2024!!!', '1234567890qwerty', 'Dragon 123456789']) {
      expect(checkPasswordPolicy(weak), weak).toEqual({
        ok: false,
        reason: expect.stringContaining('common'),
      });
    }
  });

  it('rejects context words: the email, its local part, the service and issuer names', () => {
    const policy = createPasswordPolicy({
      contextWords: ['https://auth.acme-widgets.example/', 'Widgetworks'],
    });
    const email = 'margaret.hamilton@example.com';
    for (const weak of [
      email,
      'Margaret.Hamilton',
      'margaret.hamilton2024',
      'margarethamilton!!',
      'Gatehouse2024!!!!',
      '123456GATEHOUSE!!',
      'acme-widgets12345',
      'Widgetworks123456',
    ]) {
      expect(policy.check(weak, { email }), weak).toEqual({
        ok: false,
        reason: expect.stringContaining('email address'),
      });
    }
    // Containing a context word inside a longer passphrase is fine: that is not a variant of it.
    expect(policy.check('my gatehouse has a red door', { email }).ok).toBe(true);
  });

  it('has no composition rules: a long lower-case passphrase passes, as does the README example', () => {
    expect(checkPasswordPolicy('correct horse battery', { email: 'ada@example.com' }).ok).toBe(true);
    expect(checkPasswordPolicy('plum tiger lantern').ok).toBe(true);
  });

  it('counts characters after NFKC, not bytes or UTF-16 units', () => {
    const eight = createPasswordPolicy({ minLength: 8 });
    // Eight emoji are 8 characters (16 UTF-16 units, 32 bytes): accepted at the lower bound.
    expect(eight.check('🎲'.repeat(8)).ok).toBe(true);
    expect(eight.check('🎲'.repeat(7)).ok).toBe(false);
    // The ligature "ﬀ" becomes "ff" under NFKC, so these two are one password.
    const a = checkPasswordPolicy('ﬀ-staple-battery');
    const b = checkPasswordPolicy('ff-staple-battery');
    expect(a.ok && b.ok && a.password === b.password).toBe(true);
  });

  it('accepts at least 64 characters and never truncates: 1024 characters keep every character', () => {
    expect(checkPasswordPolicy(`${'x'.repeat(63)}y`).ok).toBe(true);
    const long = `${'x'.repeat(1000)}${'y'.repeat(24)}`;
    const check = checkPasswordPolicy(long);
    expect(check.ok && check.password === long).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  normalizeRecoveryCode,
  RECOVERY_CODE_COUNT,
} from '../../src/mfa/recovery-codes.js';

describe('recovery codes', () => {
  it('makes ten distinct 80-bit codes in a readable shape', () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
    expect(new Set(codes).size).toBe(RECOVERY_CODE_COUNT);
    // 16 base32 characters = 80 bits.
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
  });

  it('ignores case, dashes and spaces when typed back, and refuses anything else', () => {
    const [code = ''] = generateRecoveryCodes(1);
    const canonical = code.replaceAll('-', '');
    expect(normalizeRecoveryCode(code.toUpperCase())).toBe(canonical);
    expect(normalizeRecoveryCode(` ${code.replaceAll('-', ' ')} `)).toBe(canonical);
    expect(normalizeRecoveryCode('123456')).toBeUndefined();
    expect(normalizeRecoveryCode(`${canonical}a`)).toBeUndefined();
    expect(normalizeRecoveryCode('0000-1111-8888-9999')).toBeUndefined();
  });

  it('stores a SHA-256 hex digest, never the code', () => {
    const hash = hashRecoveryCode('abcdabcdabcdabcd');
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain('abcd');
  });
});

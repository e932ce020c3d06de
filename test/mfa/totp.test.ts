import { describe, expect, it } from 'vitest';
import { generateTotpCode, generateTotpSecret, matchTotpStep, totpUri } from '../../src/mfa/totp.js';

describe('TOTP (RFC 6238)', () => {
  // RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890", 8 digits; its last six are ours.
  const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

  it('matches the RFC 6238 test vectors (last six digits)', () => {
    expect(generateTotpCode(rfcSecret, 59_000)).toBe('287082');
    expect(generateTotpCode(rfcSecret, 1_111_111_109_000)).toBe('081804');
    expect(matchTotpStep(rfcSecret, '287082', 59_000)).toBe(1);
  });

  it('accepts one step either side and nothing further', () => {
    const secret = generateTotpSecret();
    const now = 1_700_000_000_000;
    const step = Math.floor(now / 30_000);
    expect(matchTotpStep(secret, generateTotpCode(secret, now - 30_000), now)).toBe(step - 1);
    expect(matchTotpStep(secret, generateTotpCode(secret, now + 30_000), now)).toBe(step + 1);
    expect(matchTotpStep(secret, generateTotpCode(secret, now - 60_000), now)).toBeUndefined();
    expect(matchTotpStep(secret, generateTotpCode(secret, now + 60_000), now)).toBeUndefined();
  });

  it('refuses what is not six digits without computing anything', () => {
    const secret = generateTotpSecret();
    for (const code of ['', '12345', '1234567', 'abcdef', ' 123456']) {
      expect(matchTotpStep(secret, code, 0)).toBeUndefined();
    }
  });

  it('makes 160-bit secrets and a Key Uri Format URI', () => {
    const secret = generateTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(totpUri(secret, 'ada@example.com', 'auth.example.com'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('issuer')).toBe('auth.example.com');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
  });
});

import { describe, expect, it } from 'vitest';
import { normalizeEmail } from '../../src/accounts/normalize-email.js';

describe('normalizeEmail', () => {
  it('trims, applies NFKC and keys case-insensitively', () => {
    expect(normalizeEmail('  Alice@Example.COM ')).toEqual({
      display: 'Alice@Example.COM',
      key: 'alice@example.com',
    });
    // Full-width letters become ASCII under NFKC.
    expect(normalizeEmail('ａｌｉｃｅ@example.com')?.key).toBe('alice@example.com');
  });

  it.each([
    '',
    'plain',
    '@example.com',
    'a@',
    'a@b',
    'a b@example.com',
    '.a@example.com',
    'a..b@example.com',
    `${'a'.repeat(65)}@example.com`,
    `a@${'b'.repeat(250)}.com`,
  ])('rejects %j', (value) => {
    expect(normalizeEmail(value)).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { maskEmail } from '../../src/accounts/mask-email.js';

describe('maskEmail', () => {
  it('keeps the first character of the local part and the whole domain', () => {
    expect(maskEmail('alice.smith@example.com')).toBe('a***@example.com');
    expect(maskEmail('Bob@Mail.Example.ORG')).toBe('B***@Mail.Example.ORG');
  });

  it('hides the length of the local part, a one-character one included', () => {
    expect(maskEmail('x@example.com')).toBe('x***@example.com');
    expect(maskEmail('xyzzy-long-name@example.com')).toBe('x***@example.com');
    expect(maskEmail('xy@example.com')).toBe('x***@example.com');
  });

  it('splits at the last @ (the domain never holds one)', () => {
    expect(maskEmail('odd@local@example.com')).toBe('o***@example.com');
  });
});

import { describe, expect, it } from 'vitest';
import { createTokenSealer } from '../../src/tokens/token-sealer.js';

const secret = new Uint8Array(32).map((_, i) => (i * 7 + 7) % 256);

describe('token sealer', () => {
  it('opens what it sealed for the same context only', () => {
    const sealer = createTokenSealer(secret);
    const sealed = sealer.seal('ghr_secret-token', 'row-a');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('secret-token');
    expect(sealer.open(sealed, 'row-a')).toBe('ghr_secret-token');
    // Bound to its row: copied elsewhere it does not open.
    expect(sealer.open(sealed, 'row-b')).toBeUndefined();
    // A fresh IV every time.
    expect(sealer.seal('ghr_secret-token', 'row-a')).not.toBe(sealed);
  });

  it('refuses another key, tampering and junk', () => {
    const sealed = createTokenSealer(secret).seal('ghr_secret-token', 'row-a');
    expect(
      createTokenSealer(new Uint8Array(32).map((_, i) => (i * 7 + 8) % 256)).open(sealed, 'row-a'),
    ).toBeUndefined();
    const bytes = Buffer.from(sealed.slice(3), 'base64url');
    bytes[14] = (bytes[14] ?? 0) ^ 1;
    expect(createTokenSealer(secret).open(`v1.${bytes.toString('base64url')}`, 'row-a')).toBeUndefined();
    expect(createTokenSealer(secret).open('v2.abc', 'row-a')).toBeUndefined();
    expect(createTokenSealer(secret).open('v1.', 'row-a')).toBeUndefined();
  });

  // Red-team (Medium): in a rolling SECRET_KEY rotation, a refresh successor an instance still on
  // the old secret sealed did not open at one on the new secret.
  it('opens what the previous secret sealed during a rotation, and seals under the current one', () => {
    const newSecret = new Uint8Array(32).map((_, i) => (i * 7 + 8) % 256);
    const sealed = createTokenSealer(secret).seal('ghr_secret-token', 'row-a');
    expect(createTokenSealer(newSecret, secret).open(sealed, 'row-a')).toBe('ghr_secret-token');
    expect(createTokenSealer(newSecret, secret).open(sealed, 'row-b')).toBeUndefined();
    expect(createTokenSealer(newSecret).open(sealed, 'row-a')).toBeUndefined();
    const resealed = createTokenSealer(newSecret, secret).seal('ghr_secret-token', 'row-a');
    expect(createTokenSealer(newSecret).open(resealed, 'row-a')).toBe('ghr_secret-token');
    expect(createTokenSealer(secret).open(resealed, 'row-a')).toBeUndefined();
  });
});

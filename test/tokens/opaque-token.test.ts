import { describe, expect, it } from 'vitest';
import { generateOpaqueToken, hashOpaqueToken, looksLikeOpaqueToken } from '../../src/tokens/opaque-token.js';

describe('opaque tokens', () => {
  it('store the SHA-256 of the token in hex, the same value in every version (stored rows must keep matching)', () => {
    expect(hashOpaqueToken('ghr_example')).toBe(
      '12ea35e42b22863d25a9f6ca47927d1ca0153980f8545ef9586eb4065c56817f',
    );
  });

  it('are 256 random bits behind a prefix, and only their hash is kept', () => {
    const { token, hash } = generateOpaqueToken('ghr');
    expect(looksLikeOpaqueToken(token, 'ghr')).toBe(true);
    expect(looksLikeOpaqueToken(token, 'gha')).toBe(false);
    expect(hash).toBe(hashOpaqueToken(token));
    expect(generateOpaqueToken('ghr').token).not.toBe(token);
  });
});

import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateOpaqueToken, hashOpaqueToken } from '../../src/tokens/opaque-token.js';
import {
  createRefreshTokens,
  looksLikeRefreshToken,
  REFRESH_TOKEN_LENGTH,
} from '../../src/tokens/refresh-token.js';
import { tampered } from '../support/tampered.js';

const secret = () => new Uint8Array(randomBytes(32));

describe('refresh tokens that name their family', () => {
  it('are 256-bit secrets that name their session under a MAC, and only their hash is stored', () => {
    const tokens = createRefreshTokens({ secretKey: secret() });
    const session = randomUUID();
    const { token, hash } = tokens.issue(session);
    expect(token).toMatch(/^ghr_[A-Za-z0-9_-]{86}$/);
    expect(token).toHaveLength(REFRESH_TOKEN_LENGTH);
    expect(hash).toBe(hashOpaqueToken(token));
    expect(tokens.familyOf(token)).toBe(session);
    expect(looksLikeRefreshToken(token)).toBe(true);
  });

  it('name no family when forged, mangled, cut or signed under another secret', () => {
    const tokens = createRefreshTokens({ secretKey: secret() });
    const session = randomUUID();
    const { token } = tokens.issue(session);
    // Any one character changed: the random part, the session id or the tag.
    for (const at of [10, 60, 80]) {
      const changed = `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
      expect(tokens.familyOf(changed)).toBeUndefined();
    }
    expect(tokens.familyOf(tampered(token))).toBeUndefined();
    // A stranger who knows the session id cannot make a token for it.
    const forged = Buffer.concat([
      randomBytes(32),
      Buffer.from(session.replaceAll('-', ''), 'hex'),
      randomBytes(16),
    ]);
    expect(tokens.familyOf(`ghr_${forged.toString('base64url')}`)).toBeUndefined();
    expect(
      tokens.familyOf(createRefreshTokens({ secretKey: secret() }).issue(session).token),
    ).toBeUndefined();
    expect(tokens.familyOf(token.slice(0, -1))).toBeUndefined();
    expect(tokens.familyOf(`${token.slice(0, -1)}*`)).toBeUndefined();
    expect(tokens.familyOf(`gha_${token.slice(4)}`)).toBeUndefined();
    expect(tokens.familyOf('')).toBeUndefined();
  });

  it('verify under SECRET_KEY_PREVIOUS through a rotation, and not after it', () => {
    const old = secret();
    const session = randomUUID();
    const { token } = createRefreshTokens({ secretKey: old }).issue(session);
    expect(createRefreshTokens({ secretKey: secret(), previousSecretKey: old }).familyOf(token)).toBe(
      session,
    );
    expect(createRefreshTokens({ secretKey: secret() }).familyOf(token)).toBeUndefined();
  });

  it('accept the earlier, random-only layout by shape (no family) and refuse other shapes', () => {
    const tokens = createRefreshTokens({ secretKey: secret() });
    const legacy = generateOpaqueToken('ghr').token;
    expect(looksLikeRefreshToken(legacy)).toBe(true);
    expect(tokens.familyOf(legacy)).toBeUndefined();
    for (const shape of ['ghr_', `ghr_${'A'.repeat(44)}`, `gha_${'A'.repeat(86)}`, `ghr_${'A'.repeat(85)}`])
      expect(looksLikeRefreshToken(shape)).toBe(false);
    expect(() => tokens.issue('not-a-uuid')).toThrow(TypeError);
  });
});

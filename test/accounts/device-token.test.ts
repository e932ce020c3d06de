import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createDeviceTokens, DEVICE_TOKEN_LENGTH } from '../../src/accounts/device-token.js';
import { createTestClock } from '../../src/testing.js';

const secretKey = new Uint8Array(32).fill(1);

describe('createDeviceTokens', () => {
  const clock = createTestClock(1_800_000_000_000);
  const tokens = createDeviceTokens({ secretKey, ttlSeconds: 3600, clock });
  const account = { id: randomUUID(), passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA' };

  it('issues fixed-size tokens that verify for their account only', () => {
    const token = tokens.issue(account);
    expect(token).toHaveLength(DEVICE_TOKEN_LENGTH);
    expect(token).toMatch(/^[A-Za-z0-9_-]{98}$/);
    expect(tokens.verify(token, account)).toEqual({
      deviceId: expect.any(String),
      issuedAt: 1_800_000_000_000,
    });
    expect(tokens.verify(token, { ...account, id: randomUUID() })).toBeUndefined();
    // Two logins of one account are two devices.
    expect(tokens.verify(tokens.issue(account), account)?.deviceId).not.toBe(
      tokens.verify(token, account)?.deviceId,
    );
  });

  it('refuses every altered byte, other lengths and other alphabets', () => {
    const token = tokens.issue(account);
    const bytes = Buffer.from(token, 'base64url');
    for (let i = 0; i < bytes.length; i++) {
      const altered = Buffer.from(bytes);
      altered[i] = (altered[i] ?? 0) ^ 1;
      expect(tokens.verify(altered.toString('base64url'), account), `byte ${i}`).toBeUndefined();
    }
    for (const bad of [
      undefined,
      '',
      token.slice(1),
      `${token}A`,
      `${token.slice(0, -1)}=`,
      token.replace(/.$/, '+'),
    ])
      expect(tokens.verify(bad, account)).toBeUndefined();
  });

  it('refuses tokens signed with another secret', () => {
    const other = createDeviceTokens({ secretKey: new Uint8Array(32).fill(2), ttlSeconds: 3600, clock });
    expect(tokens.verify(other.issue(account), account)).toBeUndefined();
  });

  it('expires after its lifetime and refuses tokens from the future', () => {
    const local = createTestClock(1_800_000_000_000);
    const shortLived = createDeviceTokens({ secretKey, ttlSeconds: 60, clock: local });
    const token = shortLived.issue(account);
    local.advance(59_000);
    expect(shortLived.verify(token, account)).toBeDefined();
    local.advance(1_000);
    expect(shortLived.verify(token, account)).toBeUndefined();

    const ahead = createDeviceTokens({ secretKey, ttlSeconds: 60, clock: () => local() + 3600_000 });
    expect(shortLived.verify(ahead.issue(account), account)).toBeUndefined();
  });

  it('only issues for UUID account ids', () => {
    expect(() => tokens.issue({ ...account, id: '42' })).toThrow(TypeError);
  });

  // Red-team 2026-12d I6: whoever signed in with a phished password kept a device token (the
  // owner's reset-mail lane, a login lane of their own) through the owner's reset.
  it('stops verifying once the password hash changes, and only verifies under the hash it was issued with', () => {
    const token = tokens.issue(account);
    const reset = { ...account, passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA' };
    expect(tokens.verify(token, reset)).toBeUndefined();
    // One character more or less is another hash too (the hash is appended after a fixed-size body).
    expect(tokens.verify(token, { ...account, passwordHash: `${account.passwordHash}A` })).toBeUndefined();
    expect(
      tokens.verify(token, { ...account, passwordHash: account.passwordHash.slice(0, -1) }),
    ).toBeUndefined();
    // The owner's next sign-in, under the new hash, gets one that verifies.
    expect(tokens.verify(tokens.issue(reset), reset)).toBeDefined();
    expect(tokens.verify(token, account)).toBeDefined();
  });
});

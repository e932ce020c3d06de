import { createHmac, hkdfSync, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createDeviceTokens,
  DEVICE_TOKEN_LENGTH,
  deviceTokenAccount,
} from '../../src/accounts/device-token.js';
import { createTestClock } from '../../src/testing.js';

const secretKey = new Uint8Array(32).map((_, i) => (i * 7 + 1) % 256);

describe('createDeviceTokens', () => {
  const clock = createTestClock(1_800_000_000_000);
  const tokens = createDeviceTokens({ secretKey, ttlSeconds: 3600, clock });
  const account = {
    id: randomUUID(),
    emailVerified: true,
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
    credentialsVersion: 3,
  };

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

  it('names the account it was issued for, unchecked, and nothing for what is not shaped like one', () => {
    expect(deviceTokenAccount(tokens.issue(account))).toBe(account.id);
    expect(deviceTokenAccount(undefined)).toBeUndefined();
    expect(deviceTokenAccount(tokens.issue(account).slice(1))).toBeUndefined();
    expect(deviceTokenAccount('!'.repeat(DEVICE_TOKEN_LENGTH))).toBeUndefined();
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
    const other = createDeviceTokens({
      secretKey: new Uint8Array(32).map((_, i) => (i * 7 + 2) % 256),
      ttlSeconds: 3600,
      clock,
    });
    expect(tokens.verify(other.issue(account), account)).toBeUndefined();
  });

  // Red-team (Medium), rolling SECRET_KEY rotation: a device an instance still on the old secret
  // signed in was untrusted at one on the new secret (its own failure lane lost to the account's).
  it('verifies a token keyed by SECRET_KEY_PREVIOUS during a rotation, and issues under SECRET_KEY alone', () => {
    const newKey = new Uint8Array(32).map((_, i) => (i * 7 + 3) % 256);
    const token = tokens.issue(account);
    const rotating = createDeviceTokens({
      secretKey: newKey,
      previousSecretKey: secretKey,
      ttlSeconds: 3600,
      clock,
    });
    expect(rotating.verify(token, account)).toEqual(tokens.verify(token, account));
    expect(rotating.verify(token, { ...account, passwordHash: `${account.passwordHash}A` })).toBeUndefined();
    const rotated = createDeviceTokens({ secretKey: newKey, ttlSeconds: 3600, clock });
    expect(rotated.verify(token, account)).toBeUndefined();
    expect(rotated.verify(rotating.issue(account), account)).toBeDefined();
    expect(tokens.verify(rotating.issue(account), account)).toBeUndefined();
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

  // Red-team 2026-12s M1: the device cookie a stolen passkey's sign-in earned kept its holder a
  // login and reset-mail lane after the owner removed the passkey and every other session ended.
  it('stops verifying once the credentials version moves (every session of the account ended)', () => {
    const token = tokens.issue(account);
    const ended = { ...account, credentialsVersion: account.credentialsVersion + 1 };
    expect(tokens.verify(token, ended)).toBeUndefined();
    expect(tokens.verify(tokens.issue(ended), ended)).toBeDefined();
    expect(tokens.verify(token, account)).toBeDefined();
    // A token of the layout before the version was bound (MAC over body and hash) no longer verifies.
    const bytes = Buffer.from(token, 'base64url').subarray(0, 41);
    const key = Buffer.from(hkdfSync('sha256', secretKey, '', 'gatehouse device token v1', 32));
    const unversioned = Buffer.concat([
      bytes,
      createHmac('sha256', key).update(bytes).update(account.passwordHash).digest(),
    ]);
    expect(tokens.verify(unversioned.toString('base64url'), account)).toBeUndefined();
  });

  // Red-team 2026-12c H3: whoever signed up first with someone else's address holds device tokens
  // for the account; the owner's first proof of the address must end them with the rest.
  it('a token issued before the address was proven stops verifying once it is; later ones keep working', () => {
    const unproven = { ...account, id: randomUUID(), emailVerified: false };
    const stranger = tokens.issue(unproven);
    expect(tokens.verify(stranger, unproven)).toBeDefined();
    const proven = { ...unproven, emailVerified: true };
    expect(tokens.verify(stranger, proven)).toBeUndefined();
    expect(tokens.verify(tokens.issue(proven), proven)).toBeDefined();
  });

  it('refuses a token of the first layout (not bound to the password hash) and unknown versions', () => {
    // Version 1, as an earlier release issued it: the same bytes, and its MAC (over the body alone)
    // under the same key; unbound to the password hash, it no longer verifies (red-team 2026-12d I6).
    const current = Buffer.from(tokens.issue(account), 'base64url');
    const body = Buffer.from(current.subarray(0, 41));
    body.writeUInt8(1, 0);
    const key = Buffer.from(hkdfSync('sha256', secretKey, '', 'gatehouse device token v1', 32));
    const legacy = Buffer.concat([body, createHmac('sha256', key).update(body).digest()]).toString(
      'base64url',
    );
    expect(tokens.verify(legacy, account)).toBeUndefined();
    // Nor when its MAC is today's (body, credentials version, hash): version 1 is not a version
    // verify accepts, and neither is 4.
    const version = Buffer.alloc(8);
    version.writeBigUInt64BE(BigInt(account.credentialsVersion));
    const bound = (bytes: Buffer) =>
      Buffer.concat([
        bytes,
        createHmac('sha256', key).update(bytes).update(version).update(account.passwordHash).digest(),
      ]).toString('base64url');
    expect(tokens.verify(bound(body), account)).toBeUndefined();
    body.writeUInt8(4, 0);
    expect(tokens.verify(bound(body), account)).toBeUndefined();
    // The same construction with an accepted version byte does verify: the refusals above are the
    // version byte's.
    body.writeUInt8(2, 0);
    expect(tokens.verify(bound(body), account)).toBeDefined();
  });
});

import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { JwtAlgorithm } from '../../src/config/config.js';
import { createIdTokenKeys } from '../../src/tokens/id-token-keys.js';
import type { Keyring } from '../../src/tokens/keyring.js';
import type { AsymmetricAlgorithm } from '../../src/tokens/signing-key-material.js';

/** A keyring that only says its algorithm and publishes one fake key. */
function fakeKeyring(algorithm: JwtAlgorithm): Keyring {
  return {
    algorithm,
    issuer: 'https://issuer.example',
    sign: async () => `signed-by-${algorithm}`,
    verify: async () => ({ alg: algorithm }),
    jwks: () => ({ keys: algorithm === 'HS256' ? [] : [{ kid: `${algorithm}-key`, alg: algorithm }] }),
    revision: () => 0,
    reload: async () => {},
    close: () => {},
  };
}

function keysWith(access: JwtAlgorithm, stored: AsymmetricAlgorithm[] = []) {
  const made: AsymmetricAlgorithm[] = [];
  const closed: AsymmetricAlgorithm[] = [];
  const failing = new Set<AsymmetricAlgorithm>();
  const warnings: string[] = [];
  const keys = createIdTokenKeys({
    accessKeyring: fakeKeyring(access),
    createKeyring: async (algorithm) => {
      made.push(algorithm);
      if (failing.has(algorithm)) throw new Error('connect ECONNREFUSED');
      return { ...fakeKeyring(algorithm), close: () => void closed.push(algorithm) };
    },
    hasStoredKeys: async (algorithm) => stored.includes(algorithm),
    onWarning: (message) => warnings.push(message),
  });
  return { keys, made, closed, failing, warnings };
}

async function tokenWithAlg(alg: 'ES256' | 'RS256' | 'EdDSA' | 'PS256'): Promise<string> {
  const { privateKey } = await generateKeyPair(alg);
  return new SignJWT({ sub: 'u' }).setProtectedHeader({ alg, typ: 'JWT' }).sign(privateKey);
}

describe('createIdTokenKeys', () => {
  it.each([
    ['HS256', 'ES256', ['ES256', 'RS256']],
    ['ES256', 'ES256', ['ES256', 'RS256']],
    ['EdDSA', 'EdDSA', ['EdDSA', 'RS256']],
    ['RS256', 'RS256', ['RS256']],
  ] as const)('with JWT_ALG=%s the default is %s and a client may choose %j', (access, fallback, offered) => {
    const { keys } = keysWith(access);
    expect(keys.defaultAlgorithm).toBe(fallback);
    expect(keys.algorithms).toEqual(offered);
  });

  it('signs with the access-token keyring when it is asymmetric, and makes the others once, on first use', async () => {
    const { keys, made } = keysWith('EdDSA');
    expect((await keys.keyring()).algorithm).toBe('EdDSA');
    expect(made).toEqual([]);
    const [a, b] = await Promise.all([keys.keyring('RS256'), keys.keyring('RS256')]);
    expect(a).toBe(b);
    expect(made).toEqual(['RS256']);
    await expect(keys.keyring('ES256')).rejects.toThrow(/not an ID-token algorithm/);
  });

  it('tries again after a failed creation (the database was down), instead of remembering the failure', async () => {
    const { keys, made, failing } = keysWith('HS256');
    failing.add('ES256');
    await expect(keys.keyring()).rejects.toThrow(/ECONNREFUSED/);
    failing.clear();
    expect((await keys.keyring()).algorithm).toBe('ES256');
    expect(made).toEqual(['ES256', 'ES256']);
  });

  it('publishes every algorithm’s keys; another keyring’s failure leaves only its own keys out', async () => {
    const { keys, failing, warnings } = keysWith('ES256');
    failing.add('RS256');
    expect(await keys.jwks()).toEqual({ keys: [{ kid: 'ES256-key', alg: 'ES256' }] });
    expect(warnings).toEqual([expect.stringContaining('left out of the JWK Set')]);
    failing.clear();
    expect(await keys.jwks()).toEqual({
      keys: [
        { kid: 'ES256-key', alg: 'ES256' },
        { kid: 'RS256-key', alg: 'RS256' },
      ],
    });
  });

  it('lets the default keyring’s failure propagate from the JWK Set (HS256: nothing else to publish)', async () => {
    const { keys, failing } = keysWith('HS256');
    failing.add('ES256');
    await expect(keys.jwks()).rejects.toThrow(/ECONNREFUSED/);
  });

  it('chooses the keyring a hint’s header names, only among its own algorithms', async () => {
    const { keys } = keysWith('HS256');
    expect((await keys.keyringFor(await tokenWithAlg('RS256')))?.algorithm).toBe('RS256');
    expect((await keys.keyringFor(await tokenWithAlg('ES256')))?.algorithm).toBe('ES256');
    expect(await keys.keyringFor(await tokenWithAlg('EdDSA'))).toBeUndefined();
    expect(await keys.keyringFor(await tokenWithAlg('PS256'))).toBeUndefined();
    expect(await keys.keyringFor('not a token')).toBeUndefined();
    const hs256 = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.e30.sig`;
    expect(await keys.keyringFor(hs256)).toBeUndefined();
  });

  it('preloads only the algorithms that have stored keys, and closes what it made', async () => {
    const { keys, made, closed } = keysWith('HS256', ['RS256']);
    await keys.preload();
    expect(made).toEqual(['RS256']);
    keys.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toEqual(['RS256']);
  });
});

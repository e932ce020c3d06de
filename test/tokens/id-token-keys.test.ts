import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { JwtAlgorithm } from '../../src/config/config.js';
import { createIdTokenKeys, STORED_KEYS_LOOKUP_MS } from '../../src/tokens/id-token-keys.js';
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
  const lookups: AsymmetricAlgorithm[] = [];
  let now = 1_000_000;
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
    hasStoredKeys: async (algorithm) => {
      lookups.push(algorithm);
      return stored.includes(algorithm);
    },
    onWarning: (message) => warnings.push(message),
    clock: () => now,
  });
  const advance = (ms: number) => {
    now += ms;
  };
  return { keys, made, closed, failing, warnings, lookups, stored, advance };
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

  it('never makes another algorithm’s keys for the JWK Set: only loads them once some instance made them', async () => {
    const { keys, made, lookups, stored, advance } = keysWith('ES256');
    expect(await keys.jwks()).toEqual({ keys: [{ kid: 'ES256-key', alg: 'ES256' }], complete: true });
    // Looked up at most every STORED_KEYS_LOOKUP_MS, however many requests come, at once or not.
    for (let i = 0; i < 50; i++) await keys.jwks();
    advance(STORED_KEYS_LOOKUP_MS);
    await Promise.all(Array.from({ length: 50 }, () => keys.jwks()));
    expect(made).toEqual([]);
    expect(lookups).toEqual(['RS256', 'RS256']);
    // Another instance makes them (a client chose RS256): published after the next look-up.
    stored.push('RS256');
    advance(STORED_KEYS_LOOKUP_MS);
    expect(await keys.jwks()).toEqual({
      keys: [
        { kid: 'ES256-key', alg: 'ES256' },
        { kid: 'RS256-key', alg: 'RS256' },
      ],
      complete: true,
    });
    expect(made).toEqual(['RS256']);
  });

  it('leaves out keys that cannot be loaded (complete: false), and tries again only after a pause', async () => {
    const { keys, failing, warnings, made, advance } = keysWith('ES256', ['RS256']);
    failing.add('RS256');
    const incomplete = { keys: [{ kid: 'ES256-key', alg: 'ES256' }], complete: false };
    expect(await keys.jwks()).toEqual(incomplete);
    expect(await keys.jwks()).toEqual(incomplete); // within the pause: not tried again, still incomplete
    expect(made).toEqual(['RS256']);
    expect(warnings).toHaveLength(1);
    failing.clear();
    advance(STORED_KEYS_LOOKUP_MS);
    expect((await keys.jwks()).complete).toBe(true);
    expect(made).toEqual(['RS256', 'RS256']);
  });

  it('lets the default keyring’s failure propagate from the JWK Set (HS256: nothing else to publish)', async () => {
    const { keys, failing } = keysWith('HS256');
    failing.add('ES256');
    await expect(keys.jwks()).rejects.toThrow(/ECONNREFUSED/);
  });

  it('chooses the keyring a hint’s header names, only among its own algorithms, making none', async () => {
    const none = keysWith('HS256');
    expect(await none.keys.keyringFor(await tokenWithAlg('RS256'))).toBeUndefined();
    expect(none.made).toEqual([]);
    const { keys, made } = keysWith('HS256', ['RS256']);
    expect((await keys.keyringFor(await tokenWithAlg('RS256')))?.algorithm).toBe('RS256');
    expect(made).toEqual(['RS256']); // loaded: its keys were stored
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

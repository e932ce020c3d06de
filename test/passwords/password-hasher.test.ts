import { describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../src/passwords/password-hasher.js';

describe('password hasher', () => {
  const hasher = createPasswordHasher(2);

  it('hashes with argon2id at the OWASP parameters', async () => {
    const phc = await hasher.hash('correct horse battery');
    expect(phc.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(hasher.needsRehash(phc)).toBe(false);
    expect(await hasher.verify(phc, 'correct horse battery')).toBe(true);
    expect(await hasher.verify(phc, 'correct horse batterY')).toBe(false);
  });

  it('distinguishes passwords that differ only after byte 72 (no bcrypt truncation)', async () => {
    const base = 'p'.repeat(100);
    const phc = await hasher.hash(`${base}a`);
    expect(await hasher.verify(phc, `${base}b`)).toBe(false);
  });

  it('treats a malformed or older hash as a failed match and flags it for rehash', async () => {
    expect(await hasher.verify('not-a-hash', 'whatever')).toBe(false);
    expect(hasher.needsRehash('$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA')).toBe(true);
  });

  it('verifies a dummy hash in about the time of a real one', async () => {
    const phc = await hasher.hash('correct horse battery');
    const time = async (fn: () => Promise<unknown>) => {
      const start = performance.now();
      await fn();
      return performance.now() - start;
    };
    await hasher.verifyDummy('warm up');
    const real = await time(() => hasher.verify(phc, 'wrong password here'));
    const dummy = await time(() => hasher.verifyDummy('wrong password here'));
    // Same algorithm and cost: both take real work, not an early return.
    expect(dummy).toBeGreaterThan(real / 4);
  });

  it('runs at most `concurrency` hashes at once', async () => {
    const one = createPasswordHasher(1);
    const start = performance.now();
    await one.hash('warm up the pool');
    const single = performance.now() - start;
    const begin = performance.now();
    await Promise.all([one.hash('a-password-1'), one.hash('a-password-2'), one.hash('a-password-3')]);
    // Serialized: three hashes take clearly longer than one (not a timing assertion on speed).
    expect(performance.now() - begin).toBeGreaterThan(single * 2);
  });
});

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

  it('spends real argon2id work on the dummy verification, and times it without the wait for a slot', async () => {
    const dummy = await hasher.dummyHash();
    // Our own parameters: a check against it costs what a wrong password for our accounts costs.
    expect(hasher.needsRehash(dummy)).toBe(false);
    expect(await hasher.dummyHash()).toBe(dummy);
    const timing = { ms: 0 };
    const start = performance.now();
    expect(await hasher.verify(dummy, 'wrong password here', 'shared', timing)).toBe(false);
    const wall = performance.now() - start;
    // A lower bound only (load can make it slower, never faster): an early return takes
    // microseconds, argon2id with 19 MiB takes well over 5 ms on any machine.
    expect(timing.ms).toBeGreaterThan(5);
    expect(timing.ms).toBeLessThanOrEqual(wall);
    // It adds: a sign-in that tries two texts is timed as a whole.
    const first = timing.ms;
    await hasher.verify(dummy, 'another wrong one', 'shared', timing);
    expect(timing.ms).toBeGreaterThan(first + 5);
    const unparsed = { ms: 0 };
    expect(await hasher.verify('not-a-hash', 'whatever', 'shared', unparsed)).toBe(false);
    expect(unparsed.ms).toBe(0);
  });
});

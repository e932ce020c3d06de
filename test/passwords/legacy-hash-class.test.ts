import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { costliestByFamily, legacyHashCost, probeHash } from '../../src/passwords/legacy-hash-class.js';
import { parseLegacyHash } from '../../src/passwords/legacy-hash-format.js';
import { createPasswordHasher } from '../../src/passwords/password-hasher.js';

/** Real hashes made by passlib, pyca/bcrypt, argon2-cffi and Django (see generate.py there). */
const FIXTURES: { library: string; password: string; hash: string }[] = JSON.parse(
  readFileSync(new URL('../fixtures/legacy-hashes/hashes.json', import.meta.url), 'utf8'),
).hashes;

const costOf = (hash: string) => {
  const parsed = parseLegacyHash(hash);
  if (!parsed.ok) throw new Error(parsed.reason);
  return legacyHashCost(parsed.hash);
};

describe('legacy hash cost classes', () => {
  it('names the scheme and work factors of each real hash, and nothing of the hash', () => {
    const classes = new Set(FIXTURES.map((fixture) => costOf(fixture.hash)?.hashClass));
    expect([...classes].sort()).toEqual([
      'argon2i:m=102400,t=2,p=8',
      'argon2id:m=102400,t=2,p=8',
      'bcrypt:12',
      'bcrypt:4',
      'pbkdf2-sha256:260000',
      'pbkdf2-sha256:29000',
    ]);
    expect(costOf(FIXTURES[0]?.hash ?? '')).toEqual({ family: 'bcrypt', hashClass: 'bcrypt:12', work: 4096 });
  });

  it('has no class for a hash with our own argon2id parameters, and splits argon2 by lanes', () => {
    expect(costOf('$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA')).toBeUndefined();
    expect(costOf('$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA')).toEqual({
      family: 'argon2',
      hashClass: 'argon2id:m=65536,t=3,p=1',
      work: 262_144,
    });
    expect(costOf('$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA')?.family).toBe(
      'argon2-lanes',
    );
  });

  it('ranks argon2 classes by memory × (passes + 1): filling a large memory costs more than a pass', () => {
    const big = costOf('$argon2id$v=19$m=131072,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA');
    const long = costOf('$argon2id$v=19$m=16384,t=10,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA');
    expect(costliestByFamily([long, big]).map((cost) => cost.hashClass)).toEqual([
      'argon2id:m=131072,t=1,p=1',
    ]);
  });

  it('keeps the costliest class of each family', () => {
    const costs = FIXTURES.map((fixture) => costOf(fixture.hash));
    expect(costliestByFamily(costs).map((cost) => cost.hashClass)).toEqual([
      'bcrypt:12',
      'argon2id:m=102400,t=2,p=8',
      'pbkdf2-sha256:260000',
    ]);
    expect(costliestByFamily([undefined])).toEqual([]);
  });

  it.each(FIXTURES.map((fixture) => [fixture.library, fixture] as const))(
    '%s: a probe of its class has the same class, a fresh salt, and matches no password',
    async (_library, fixture) => {
      const hashClass = costOf(fixture.hash)?.hashClass ?? '';
      const probe = probeHash(hashClass) ?? '';
      expect(costOf(probe)?.hashClass).toBe(hashClass);
      expect(probe).not.toBe(fixture.hash);
      expect(probeHash(hashClass)).not.toBe(probe);
      const hasher = createPasswordHasher(1);
      expect(await hasher.verify(fixture.hash, fixture.password)).toBe(true);
      expect(await hasher.verify(probe, fixture.password)).toBe(false);
    },
  );

  it('makes no probe for a class it cannot read or that LEGACY_HASH_LIMITS no longer allow', () => {
    for (const hashClass of [
      'bcrypt:14',
      'bcrypt:3',
      'pbkdf2-sha256:1500001',
      'argon2id:m=262144,t=2,p=1',
      'md5:1',
      'bcrypt',
      '',
      'argon2id:m=19456,t=2,p=1',
    ]) {
      expect(probeHash(hashClass), hashClass).toBeUndefined();
    }
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LEGACY_HASH_LIMITS, parseLegacyHash } from '../../src/passwords/legacy-hash-format.js';
import { createPasswordHasher } from '../../src/passwords/password-hasher.js';
import { verifyLegacyHash } from '../../src/passwords/verify-legacy-hash.js';

interface Fixture {
  scheme: string;
  password: string;
  hash: string;
  library?: string;
}

const read = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/legacy-hashes/${name}`, import.meta.url), 'utf8'));
/** Made by passlib, pyca/bcrypt, argon2-cffi and Django (see the fixture's generate.py). */
const generated: Fixture[] = read('hashes.json').hashes;
/** Published by passlib's test suite (and John the Ripper's, for bcrypt). */
const published: Fixture[] = read('published-vectors.json').vectors;

async function verify(hash: string, password: string): Promise<boolean> {
  const parsed = parseLegacyHash(hash);
  if (!parsed.ok) throw new Error(`refused: ${parsed.reason}`);
  return verifyLegacyHash(parsed.hash, password);
}

describe('legacy password hashes', () => {
  it.each(generated.map((row) => [row.library, row.scheme, row] as const))(
    'verifies a hash made by %s (%s) and refuses a wrong password',
    async (_library, _scheme, row) => {
      expect(await verify(row.hash, row.password)).toBe(true);
      expect(await verify(row.hash, `${row.password}x`)).toBe(false);
    },
  );

  it.each(published.map((row, index) => [index, row.scheme, row] as const))(
    'verifies published vector %i (%s)',
    async (_index, _scheme, row) => {
      expect(await verify(row.hash, row.password)).toBe(true);
      expect(await verify(row.hash, 'not the password')).toBe(false);
    },
  );

  it('checks the raw UTF-8 password, not its NFKC form (the legacy app hashed what was typed)', async () => {
    const row = generated.find(
      (fixture) => fixture.password.includes('\u2113') && fixture.scheme === 'bcrypt',
    );
    if (row === undefined) throw new Error('fixture missing');
    expect(row.password.normalize('NFKC')).not.toBe(row.password);
    expect(await verify(row.hash, row.password)).toBe(true);
    expect(await verify(row.hash, row.password.normalize('NFKC'))).toBe(false);
  });

  it('lifts bcrypt-sha256 over the 72-byte limit but keeps plain bcrypt as the old app checked it', async () => {
    const long = published.filter((row) => row.password.startsWith('abc123abc123'));
    const [exact, longer] = long;
    if (exact === undefined || longer === undefined) throw new Error('fixture missing');
    expect(await verify(exact.hash, longer.password)).toBe(false);
    expect(await verify(longer.hash, longer.password)).toBe(true);
  });

  it('reads the cost and salt of every accepted format', () => {
    expect(parseLegacyHash('$2b$04$dfB7jnT11ROoD.IDMo71Y.9ehpk8azXWThMhjBW14YjcCM5snDhau')).toMatchObject({
      ok: true,
      hash: { scheme: 'bcrypt', cost: 4 },
    });
    const v2 = parseLegacyHash(
      '$bcrypt-sha256$v=2,t=2b,r=5$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS',
    );
    expect(v2).toMatchObject({ ok: true, hash: { scheme: 'bcrypt-sha256', version: 2, cost: 5 } });
    expect(
      parseLegacyHash('pbkdf2_sha256$10000$kjVJaVz6qsnJ$5yPHw3rwJGECpUf70daLGhOrQ5+AMxIJdz1c3bqK1Rs='),
    ).toMatchObject({
      ok: true,
      hash: { scheme: 'pbkdf2-sha256', flavor: 'django', iterations: 10000 },
    });
  });

  describe('refuses work factors that would make one login a denial of service', () => {
    const salt = 'c29tZXNhbHRzb21lc2FsdA';
    const digest = 'AJFIsNZTMKTAewB4+ETN1AAJFIsNZTMKTAewB4+ETN1';
    it.each([
      ['bcrypt cost 31', '$2b$31$dfB7jnT11ROoD.IDMo71Y.9ehpk8azXWThMhjBW14YjcCM5snDhau', /bcrypt cost 31/],
      ['bcrypt cost 14', '$2b$14$dfB7jnT11ROoD.IDMo71Y.9ehpk8azXWThMhjBW14YjcCM5snDhau', /outside 4\.\.13/],
      ['bcrypt cost 3', '$2b$03$dfB7jnT11ROoD.IDMo71Y.9ehpk8azXWThMhjBW14YjcCM5snDhau', /outside/],
      [
        'bcrypt-sha256 cost 20',
        '$bcrypt-sha256$v=2,t=2b,r=20$5Hg1DKFqPE8C2aflZ5vVoe$wOK1VFFtS8IGTrGa7.h5fs0u84qyPbS',
        /bcrypt cost 20/,
      ],
      [
        'passlib pbkdf2 with 10^9 rounds',
        '$pbkdf2-sha256$1000000000$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ',
        /iteration count 1000000000/,
      ],
      [
        'Django pbkdf2 with 2 000 000 iterations',
        'pbkdf2_sha256$2000000$kjVJaVz6qsnJ$5yPHw3rwJGECpUf70daLGhOrQ5+AMxIJdz1c3bqK1Rs=',
        /outside 1\.\.1500000/,
      ],
      ['argon2 with 4 GiB', `$argon2id$v=19$m=4194304,t=2,p=1$${salt}$${digest}`, /m=4194304/],
      ['argon2 with t=1000', `$argon2id$v=19$m=19456,t=1000,p=1$${salt}$${digest}`, /t=1000/],
      ['argon2 with 255 lanes', `$argon2id$v=19$m=65536,t=2,p=255$${salt}$${digest}`, /p=255/],
    ])('%s', async (_name, hash, reason) => {
      const parsed = parseLegacyHash(hash);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.reason).toMatch(reason);
      // The hasher refuses it too, at once, without computing anything.
      expect(await createPasswordHasher(1).verify(hash, 'password')).toBe(false);
    });

    it('names limits above every default those libraries shipped', () => {
      expect(LEGACY_HASH_LIMITS.bcryptMaxCost).toBeGreaterThanOrEqual(12);
      expect(LEGACY_HASH_LIMITS.pbkdf2MaxIterations).toBeGreaterThanOrEqual(1_200_000);
      expect(LEGACY_HASH_LIMITS.argon2MaxMemory).toBeGreaterThanOrEqual(102_400);
    });
  });

  it.each([
    ['an unknown scheme', '$1$saltsalt$abcdefghijklmnopqrstuv', /unsupported hash scheme 1/],
    ['argon2d', '$argon2d$v=19$m=102400,t=2,p=8$g2RodLh8j8WbSdCp+lUy/A$zzAJqL/HSjm809PYQu6qkA', /argon2d/],
    ['plain text', 'hunter2 is my password', /not a supported password hash/],
    ['a truncated bcrypt hash', '$2b$04$dfB7jnT11ROoD.IDMo71Y.9ehpk8azXWThMhjBW14', /malformed bcrypt/],
    [
      'a pbkdf2 hash with a short digest',
      '$pbkdf2-sha256$29000$fC/lfE9Jae19b01JSakV4g$JeHzGtB2',
      /malformed/,
    ],
    ['a 10 kB string', `$2b$04$${'a'.repeat(10_000)}`, /longer than any supported format/],
  ])('refuses %s without quoting it', (_name, hash, reason) => {
    const parsed = parseLegacyHash(hash);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.reason).toMatch(reason);
      expect(parsed.reason).not.toContain(hash.slice(8, 20));
    }
  });

  it('makes the login hasher accept every imported format, and flags them for the upgrade', async () => {
    const hasher = createPasswordHasher(2);
    for (const row of generated.filter((fixture) => !fixture.hash.startsWith('$2b$12$'))) {
      expect(await hasher.verify(row.hash, row.password)).toBe(true);
      expect(hasher.needsRehash(row.hash)).toBe(true);
    }
  });
});

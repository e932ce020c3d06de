import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { ClockSkewError, REVOKE_ALL_MAX_CLOCK_SKEW_MS, revokeAll } from '../../src/sessions/revoke-all.js';
import { checkSharedSecretKey } from '../../src/storage/secret-key-check.js';
import { createSessionStore, type SessionRecord } from '../../src/storage/session-store.js';
import { createSigningKeyStore } from '../../src/storage/signing-key-store.js';
import { SigningKeyError } from '../../src/tokens/signing-key-error.js';
import { createSigningKeySealer, generateSigningKey } from '../../src/tokens/signing-key-material.js';
import { createAuditFault } from '../support/audit-fault.js';
import { addTestUser, createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const secret = new Uint8Array(32).map((_, i) => (i * 11 + 5) % 256);
// The real time, half-way through a second: PostgreSQL's clock is checked against it.
const NOW = Math.floor(Date.now() / 1000) * 1000 + 500;
const CUTOFF = NOW + 500;

describe.each(engines)('revokeAll on $name', ({ name }) => {
  let test: TestDatabase | undefined;
  afterEach(async () => {
    await test?.dispose();
    test = undefined;
  });

  /** A database holding one ES256 key and one live session of one account. */
  const seeded = async () => {
    test = await createTestDatabase(name);
    const { db } = test.database;
    const key = await generateSigningKey({
      algorithm: 'ES256',
      generation: 1,
      now: NOW - 60_000,
      activatesAt: NOW - 60_000,
      sealer: createSigningKeySealer(secret),
    });
    expect(await createSigningKeyStore(db).insertKey(key)).toBe(true);
    const userId = randomUUID();
    await addTestUser(db, userId);
    const session: SessionRecord = {
      id: randomUUID(),
      userId,
      transport: 'bearer',
      scopes: ['me'],
      createdAt: NOW - 60_000,
      lastUsedAt: NOW - 60_000,
      expiresAt: NOW + 86_400_000,
      revokedAt: null,
      userAgent: null,
      ip: null,
      authTime: NOW - 60_000,
      amr: ['pwd'],
      clientId: 'gatehouse',
    };
    await createSessionStore(db).insertSession(session);
    return { database: test.database, key, session };
  };

  it('revokes the keys, ends the sessions, raises the cut-off to the next second and audits it, together', async () => {
    const { database, key, session } = await seeded();
    const outcome = await revokeAll({ database, algorithms: ['ES256'], secret, now: NOW });
    expect(outcome.keys.revoked).toEqual([{ algorithm: 'ES256', kid: key.kid }]);
    expect(outcome.keys.replacements).toHaveLength(1);
    expect(outcome.sessions.map((ended) => ended.id)).toEqual([session.id]);
    expect(outcome.notBefore).toBe(CUTOFF);
    const sessions = createSessionStore(database.db);
    expect(await sessions.readRevocationCutoff()).toBe(CUTOFF);
    expect(await sessions.findSession(session.id)).toMatchObject({ revokedAt: NOW });
    const rows = await database.db
      .selectFrom('audit_events')
      .select(['event', 'actor_id', 'details', 'created_at'])
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event: 'all_revoked', actor_id: null });
    expect(Number(rows[0]?.created_at)).toBe(NOW);
    expect(JSON.parse(rows[0]?.details ?? '{}')).toEqual({
      sessions: 1,
      signing_keys: 1,
      not_before: CUTOFF,
    });
  });

  // README "Backups": a SECRET_KEY that may have leaked is replaced by running revoke-all with the
  // new one. The instances' check (red-team 2026-12q Q2) must then take the new one, not the old.
  it('makes its SECRET_KEY the one instances must use, replacing the stored one', async () => {
    const { database } = await seeded();
    const leaked = new Uint8Array(32).map((_, i) => (i * 7 + 3) % 256);
    await checkSharedSecretKey(database.db, leaked, undefined, NOW - 1000);
    await revokeAll({ database, algorithms: ['ES256'], secret, now: NOW });
    expect(await checkSharedSecretKey(database.db, secret, undefined, NOW + 1)).toBe('matched');
    await expect(checkSharedSecretKey(database.db, leaked, undefined, NOW + 2)).rejects.toThrow(ConfigError);
  });

  // Before, the keys went in one transaction and the sessions in a second through a core: a failure
  // between them left the keys revoked and every session alive until someone ran it again.
  it('changes nothing when any part fails: keys, sessions and cut-off stay as they were', async () => {
    const { database, key, session } = await seeded();
    await createAuditFault(database.db, name, 'all_revoked').inject();
    await expect(revokeAll({ database, algorithms: ['ES256'], secret, now: NOW })).rejects.toThrow();
    const keys = await createSigningKeyStore(database.db).listKeys('ES256');
    expect(keys.map((stored) => [stored.kid, stored.revokedAt])).toEqual([[key.kid, null]]);
    const sessions = createSessionStore(database.db);
    expect(await sessions.findSession(session.id)).toMatchObject({ revokedAt: null });
    expect(await sessions.readRevocationCutoff()).toBe(0);
  });

  // Two operators (or a retry in a script) at once: each run is whole or nothing, never half of two.
  it('two runs at once: each commits whole or fails as a rotation conflict having changed nothing', async () => {
    const { database, session } = await seeded();
    const runs = await Promise.allSettled([
      revokeAll({ database, algorithms: ['ES256'], secret, now: NOW }),
      revokeAll({ database, algorithms: ['ES256'], secret, now: NOW + 1 }),
    ]);
    const done = runs.filter((run) => run.status === 'fulfilled');
    expect(done.length).toBeGreaterThanOrEqual(1);
    for (const run of runs) {
      if (run.status === 'rejected') {
        expect(run.reason).toBeInstanceOf(SigningKeyError);
        expect((run.reason as SigningKeyError).code).toBe('KEY_ROTATION_CONFLICT');
      }
    }
    const audits = await database.db.selectFrom('audit_events').select('event').execute();
    expect(audits).toEqual(done.map(() => ({ event: 'all_revoked' })));
    const keys = await createSigningKeyStore(database.db).listKeys('ES256');
    // The seeded key and one fresh key per committed run; only the last run's key is unrevoked.
    expect(keys).toHaveLength(1 + done.length);
    expect(keys.filter((key) => key.revokedAt === null)).toHaveLength(1);
    const sessions = createSessionStore(database.db);
    expect(await sessions.findSession(session.id)).toMatchObject({ revokedAt: expect.any(Number) });
    expect(await sessions.readRevocationCutoff()).toBe(CUTOFF);
  });

  // A reviewer's find: the cut-off comes from the clock of the machine the command runs on, and is
  // never lowered: a clock ahead refused every token on every instance until that time came.
  it.runIf(name === 'postgres')(
    "refuses a clock more than a minute from the database server's, revoking nothing",
    async () => {
      const { database, key, session } = await seeded();
      for (const skew of [REVOKE_ALL_MAX_CLOCK_SKEW_MS + 10_000, -(REVOKE_ALL_MAX_CLOCK_SKEW_MS + 10_000)]) {
        await expect(
          revokeAll({ database, algorithms: ['ES256'], secret, now: Date.now() + skew }),
        ).rejects.toBeInstanceOf(ClockSkewError);
      }
      const keys = await createSigningKeyStore(database.db).listKeys('ES256');
      expect(keys.map((stored) => [stored.kid, stored.revokedAt])).toEqual([[key.kid, null]]);
      const sessions = createSessionStore(database.db);
      expect(await sessions.findSession(session.id)).toMatchObject({ revokedAt: null });
      expect(await sessions.readRevocationCutoff()).toBe(0);
    },
  );
});

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { enrolTotp, postMfaGrant, requestMfaToken } from '../support/mfa.js';

/**
 * Operator red-team 2026-12-04: TOTP secrets were sealed under `SECRET_KEY` alone, so the README's
 * rotation (new `SECRET_KEY`, old one as `SECRET_KEY_PREVIOUS`) refused every authenticator's
 * codes, and nothing moved them to the new secret before `SECRET_KEY_PREVIOUS` was removed.
 */
describe('TOTP secrets through a SECRET_KEY rotation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-totp-rotation-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const databaseUrl = `sqlite:${join(dir, 'db.sqlite')}`;
  const clock = createTestClock();
  const oldKey = new Uint8Array(randomBytes(32));
  const newKey = new Uint8Array(randomBytes(32));

  const serve = (settings: { secretKey: Uint8Array; secretKeyPrevious?: Uint8Array }, url = databaseUrl) =>
    buildTestServer({ databaseUrl: url, ...settings }, { clock, scheduler: clock });

  /** A sign-in with a code of `secret` on `app`, a time step after the last one: its status. */
  const codeSignIn = async (app: FastifyInstance, email: string, secret: string) => {
    clock.advance(30_000);
    const answer = await postMfaGrant(
      app,
      await requestMfaToken(app, email),
      generateTotpCode(secret, clock()),
    );
    return answer.statusCode;
  };

  /** {@link codeSignIn} on a server of its own with `settings`. */
  const signInWithCode = async (
    settings: { secretKey: Uint8Array; secretKeyPrevious?: Uint8Array },
    email: string,
    secret: string,
    url = databaseUrl,
  ) => {
    const app = await serve(settings, url);
    try {
      return await codeSignIn(app, email, secret);
    } finally {
      await app.close();
    }
  };

  /** An account enrolled on a server with the old secret alone. */
  const enrolUnderOldKey = async () => {
    const old = await serve({ secretKey: oldKey });
    try {
      return await enrolTotp(old, clock());
    } finally {
      await old.close();
    }
  };

  it('keeps every authenticator working during the rotation and after SECRET_KEY_PREVIOUS is gone', async () => {
    const { user, secret } = await enrolUnderOldKey();
    // During the rotation (start-up re-seals the secret), then with the new secret alone.
    expect(await signInWithCode({ secretKey: newKey, secretKeyPrevious: oldKey }, user.email, secret)).toBe(
      200,
    );
    expect(await signInWithCode({ secretKey: newKey }, user.email, secret)).toBe(200);
    // A secret nobody ever had opens nothing: such an instance does not even start (the database
    // holds the fingerprint of the one its instances use, red-team 2026-12q Q2).
    await expect(serve({ secretKey: new Uint8Array(randomBytes(32)) })).rejects.toThrow(ConfigError);
  });

  // A rolling deploy: an old instance (old secret alone) enrols someone after the new ones started,
  // so no start-up re-sealed that row. Its first use on a new instance re-seals it.
  it('re-seals a secret an old instance enrolled after start-up at its first use', async () => {
    // Its own database: the old instance was running before the rotation began (one started on the
    // old secret alone after it would be refused).
    const url = `sqlite:${join(dir, 'late.sqlite')}`;
    const old = await serve({ secretKey: oldKey }, url);
    const rotating = await serve({ secretKey: newKey, secretKeyPrevious: oldKey }, url);
    let late: Awaited<ReturnType<typeof enrolTotp>>;
    try {
      try {
        late = await enrolTotp(old, clock());
      } finally {
        await old.close();
      }
      const { id } = late.user;
      const sealedNow = async () =>
        (
          await gatehouseCore(rotating.gatehouse)
            .database.db.selectFrom('mfa_totp')
            .select('secret')
            .where('user_id', '=', id)
            .executeTakeFirstOrThrow()
        ).secret;
      const enrolledAs = await sealedNow();
      expect(await codeSignIn(rotating, late.user.email, late.secret)).toBe(200);
      // The re-seal is written beside the sign-in, not awaited by it.
      await expect.poll(sealedNow).not.toBe(enrolledAs);
    } finally {
      await rotating.close();
    }
    expect(await signInWithCode({ secretKey: newKey }, late.user.email, late.secret, url)).toBe(200);
  });
});

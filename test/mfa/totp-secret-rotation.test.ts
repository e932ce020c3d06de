import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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

  const signInWithCode = async (
    settings: { secretKey: Uint8Array; secretKeyPrevious?: Uint8Array },
    email: string,
    secret: string,
  ) => {
    const app = await buildTestServer({ databaseUrl, ...settings }, { clock, scheduler: clock });
    try {
      clock.advance(30_000);
      const answer = await postMfaGrant(
        app,
        await requestMfaToken(app, email),
        generateTotpCode(secret, clock()),
      );
      return answer.statusCode;
    } finally {
      await app.close();
    }
  };

  it('keeps every authenticator working during the rotation and after SECRET_KEY_PREVIOUS is gone', async () => {
    const before = await buildTestServer({ databaseUrl, secretKey: oldKey }, { clock, scheduler: clock });
    let enrolled: Awaited<ReturnType<typeof enrolTotp>>;
    try {
      enrolled = await enrolTotp(before, clock());
    } finally {
      await before.close();
    }
    const { user, secret } = enrolled;
    // During the rotation (start-up re-seals the secret), then with the new secret alone.
    expect(await signInWithCode({ secretKey: newKey, secretKeyPrevious: oldKey }, user.email, secret)).toBe(
      200,
    );
    expect(await signInWithCode({ secretKey: newKey }, user.email, secret)).toBe(200);
    // A secret nobody ever had opens nothing: the code is refused, as a wrong one is.
    expect(await signInWithCode({ secretKey: new Uint8Array(randomBytes(32)) }, user.email, secret)).toBe(
      400,
    );
  });
});

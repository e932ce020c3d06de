import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMfaTokens } from '../../src/mfa/mfa-token.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { enrolTotp, postMfaGrant, requestMfaToken } from '../support/mfa.js';

const oldKey = new Uint8Array(randomBytes(32));
const newKey = new Uint8Array(randomBytes(32));
const NOW = 1_800_000_000_000;
const challenge = {
  userId: '0190d2a4-5e6f-7a8b-9c0d-1e2f3a4b5c6d',
  scopes: ['me'],
  clientId: 'gatehouse',
  flow: 'token' as const,
  deviceId: undefined,
  credentialsVersion: 3,
  expiresAt: NOW + 300_000,
};

describe('createMfaTokens through a SECRET_KEY rotation', () => {
  it('opens a token sealed under SECRET_KEY_PREVIOUS, and issues under SECRET_KEY alone', () => {
    const { token, nonce } = createMfaTokens(oldKey).issue(challenge);
    expect(createMfaTokens(newKey, oldKey).open(token, 'token', NOW)).toEqual({ ...challenge, nonce });
    // Without the previous secret it is nothing, as any forged token.
    expect(createMfaTokens(newKey).open(token, 'token', NOW)).toBeUndefined();
    // What a rotating instance issues opens once SECRET_KEY_PREVIOUS is gone, not at an old instance.
    const issued = createMfaTokens(newKey, oldKey).issue(challenge).token;
    expect(createMfaTokens(newKey).open(issued, 'token', NOW)).toMatchObject({ userId: challenge.userId });
    expect(createMfaTokens(oldKey).open(issued, 'token', NOW)).toBeUndefined();
  });
});

/**
 * Red-team (Medium): in a rolling rotation behind one load balancer, an `mfa_token` an instance
 * still on the old secret issued was refused `invalid_grant` by an instance on the new one.
 */
describe('an mfa_token minted at an instance on the old secret', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-mfa-token-rotation-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const databaseUrl = `sqlite:${join(dir, 'db.sqlite')}`;
  const clock = createTestClock();
  const serve = (settings: { secretKey: Uint8Array; secretKeyPrevious?: Uint8Array }) =>
    buildTestServer({ databaseUrl, ...settings }, { clock, scheduler: clock });

  it('completes the login at one on the new secret with SECRET_KEY_PREVIOUS, and not without it', async () => {
    const old = await serve({ secretKey: oldKey });
    let email: string;
    let recoveryCodes: string[];
    let tokens: string[];
    try {
      ({
        user: { email },
        recoveryCodes,
      } = await enrolTotp(old, clock()));
      tokens = [await requestMfaToken(old, email), await requestMfaToken(old, email)];
    } finally {
      await old.close();
    }
    const rotating = await serve({ secretKey: newKey, secretKeyPrevious: oldKey });
    try {
      const answer = await postMfaGrant(rotating, tokens[0] ?? '', recoveryCodes[0] ?? '');
      expect(answer.statusCode, answer.body).toBe(200);
    } finally {
      await rotating.close();
    }
    const rotated = await serve({ secretKey: newKey });
    try {
      const answer = await postMfaGrant(rotated, tokens[1] ?? '', recoveryCodes[1] ?? '');
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
    } finally {
      await rotated.close();
    }
  });
});

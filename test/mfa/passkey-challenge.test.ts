import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPasskeyChallenges } from '../../src/mfa/passkey-challenge.js';

const oldKey = new Uint8Array(randomBytes(32));
const newKey = new Uint8Array(randomBytes(32));
const NOW = 1_800_000_000_000;
const ceremony = {
  ceremony: 'login' as const,
  userId: null,
  sessionId: null,
  expiresAt: NOW + 300_000,
};

/**
 * Red-team (Medium): in a rolling SECRET_KEY rotation, a passkey_token an instance still on the old
 * secret issued did not open at one on the new secret, so the sign-in failed.
 */
describe('createPasskeyChallenges through a SECRET_KEY rotation', () => {
  it('opens a token sealed under SECRET_KEY_PREVIOUS, and issues under SECRET_KEY alone', () => {
    const { token, challenge } = createPasskeyChallenges(oldKey).issue(ceremony);
    expect(createPasskeyChallenges(newKey, oldKey).open(token, 'login', NOW)).toMatchObject({
      ...ceremony,
      challenge,
    });
    expect(createPasskeyChallenges(newKey).open(token, 'login', NOW)).toBeUndefined();
    const issued = createPasskeyChallenges(newKey, oldKey).issue(ceremony).token;
    expect(createPasskeyChallenges(newKey).open(issued, 'login', NOW)).toMatchObject({ ceremony: 'login' });
    expect(createPasskeyChallenges(oldKey).open(issued, 'login', NOW)).toBeUndefined();
  });
});

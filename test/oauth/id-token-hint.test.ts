import { describe, expect, it } from 'vitest';
import { createMemoryCounterStore } from '../../src/accounts/counter-store.js';
import {
  createIdTokenHintVerifier,
  ID_TOKEN_HINT_FAILURES_PER_MINUTE,
} from '../../src/oauth/id-token-hint.js';
import type { Keyring } from '../../src/tokens/keyring.js';

// An ID token's shape (only `aud` is read before the keyring): header.payload.signature.
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const HINT = `${b64({ alg: 'ES256', typ: 'JWT', kid: 'k1' })}.${b64({ aud: 'app', sub: 'u', sid: 's' })}.sig`;
const IP = '198.51.100.9';

describe('createIdTokenHintVerifier', () => {
  // Operator red-team 2026-12l S3: each hint charged before verification kept its charge when the
  // keyring could not be read (503), so after a short outage an office's valid hints were 429.
  it('gives back the charge of a hint that met a database outage (503): after it, a valid hint verifies', async () => {
    let databaseUp = false;
    const keyring = { verify: async () => ({ sub: 'u', sid: 's' }) } as unknown as Keyring;
    const verifier = createIdTokenHintVerifier({
      idTokenKeys: {
        async keyringFor() {
          if (!databaseUp) throw new Error('database unavailable');
          return keyring;
        },
      },
      expiredHintGraceSeconds: 3600,
      counters: createMemoryCounterStore(Date.now),
      clock: Date.now,
    });
    for (let i = 0; i < ID_TOKEN_HINT_FAILURES_PER_MINUTE * 2; i++) {
      await expect(verifier(HINT, IP)).rejects.toThrow('database unavailable');
    }
    databaseUp = true;
    expect(await verifier(HINT, IP)).toEqual({ userId: 'u', sessionId: 's', clientId: 'app' });
  });

  it('still counts hints that fail verification, and refuses the address past the limit', async () => {
    const keyring = {
      verify: async () => {
        throw new Error('bad signature');
      },
    } as unknown as Keyring;
    const verifier = createIdTokenHintVerifier({
      idTokenKeys: { keyringFor: async () => keyring },
      expiredHintGraceSeconds: 3600,
      counters: createMemoryCounterStore(Date.now),
      clock: Date.now,
    });
    for (let i = 0; i < ID_TOKEN_HINT_FAILURES_PER_MINUTE; i++)
      expect(await verifier(HINT, IP)).toBeUndefined();
    await expect(verifier(HINT, IP)).rejects.toMatchObject({ code: 'TOO_MANY_REQUESTS' });
  });
});

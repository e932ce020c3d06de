import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createAppTokens } from '../../src/tokens/app-tokens.js';
import { createKeyring } from '../../src/tokens/keyring.js';

const secret = new Uint8Array(32).map((_, i) => (i * 5 + 3) % 256);
const kind = { typ: 'room+jwt', audience: 'dicery' };

describe('app tokens and the revocation cut-off', () => {
  // `gatehouse revoke-all` under HS256 changes no key: the cut-off alone must end apps' tokens,
  // and apps that cache verified tokens must learn that their cache is stale.
  it('refuses tokens issued before the cut-off and counts a raised cut-off as a key revision', async () => {
    const keyring = await createKeyring({
      algorithm: 'HS256',
      secret,
      issuer: 'gatehouse',
      dataDir: tmpdir(),
    });
    let cutoff = 0;
    const now = 1_800_000_000_000;
    const tokens = createAppTokens({
      keyring,
      clock: () => now,
      reserved: { typ: 'at+jwt', audience: 'gatehouse' },
      cutoff: {
        isCutOff: (issuedAtSeconds) => issuedAtSeconds * 1000 < cutoff,
        get cutoff() {
          return cutoff;
        },
      },
    });
    const iat = now / 1000 - 10;
    const token = await tokens.sign(kind, { sub: 'seat-1', iat, exp: iat + 600 });
    expect(await tokens.verify(token, kind)).toMatchObject({ ok: true, claims: { sub: 'seat-1' } });
    const revision = tokens.keyRevision();
    cutoff = (iat + 1) * 1000;
    expect(tokens.keyRevision()).not.toBe(revision);
    expect(await tokens.verify(token, kind)).toEqual({ ok: false, reason: 'invalid' });
    // Issued at the cut-off itself: accepted.
    const later = await tokens.sign(kind, { sub: 'seat-2', iat: iat + 1, exp: iat + 600 });
    expect(await tokens.verify(later, kind)).toMatchObject({ ok: true });
    keyring.close();
  });
});

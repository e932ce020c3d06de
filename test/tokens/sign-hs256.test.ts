import { createSecretKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createKeyring } from '../../src/tokens/keyring.js';
import { signHs256Jwt } from '../../src/tokens/sign-hs256.js';

const secret = new Uint8Array(32).map((_, i) => i * 7 + 1);
const header = { alg: 'HS256', typ: 'at+jwt', kid: 'k1' };

const payloads: Record<string, JWTPayload> = {
  'an access token': {
    sub: '0b5f8a9e-2f43-4a57-9d1e-6c0c7c0e2a11',
    client_id: 'gatehouse',
    sid: 'a3c1d7e2-5b6f-4c8d-9e0a-1b2c3d4e5f60',
    scope: 'profile clothes:read',
    aud: 'gatehouse',
    iat: 1_790_000_000,
    exp: 1_790_000_900,
    jti: 'f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9',
    auth_time: 1_790_000_000,
    amr: ['pwd', 'otp'],
    iss: 'http://localhost:8000',
  },
  'non-ASCII text, nested objects, an audience list': {
    sub: 'Zoë 🎲',
    aud: ['a', 'b'],
    dicery_room: { code: 'ABCD', name: '"quoted" \\ slash </script>' },
    iat: 0,
    exp: 1.5,
    iss: 'https://issuer.example',
  },
};

describe('signHs256Jwt', () => {
  it.each(Object.entries(payloads))('produces the bytes jose produces: %s', async (_name, payload) => {
    const ours = signHs256Jwt(header, payload, createSecretKey(secret));
    const jose = await new SignJWT(payload).setProtectedHeader(header).sign(secret);
    expect(ours).toBe(jose);
    const { payload: verified } = await jwtVerify(ours, secret, {
      algorithms: ['HS256'],
      currentDate: new Date((payload.iat ?? 0) * 1000),
    });
    expect(verified).toEqual(payload);
  });

  it.each(['iat', 'nbf', 'exp'])('refuses a non-finite %s, as jose does', (claim) => {
    expect(() => signHs256Jwt(header, { [claim]: Number.NaN }, createSecretKey(secret))).toThrow(
      `"${claim}" claim must be a finite number`,
    );
  });
});

describe('HS256 keyring signatures', () => {
  it('are what jose signs with the same key, header and issuer, and verify', async () => {
    const keyring = await createKeyring({
      algorithm: 'HS256',
      secret,
      issuer: 'gatehouse',
      dataDir: tmpdir(),
    });
    // `iss` given by the caller is overwritten in place; absent, it is added last (jose's setIssuer).
    for (const payload of [
      { sub: 'u1', iat: 1, exp: 2 },
      { iss: 'someone else', sub: 'u1' },
    ]) {
      const token = await keyring.sign(payload, 'at+jwt');
      const [encodedHeader] = token.split('.');
      const { kid } = JSON.parse(Buffer.from(encodedHeader ?? '', 'base64url').toString()) as { kid: string };
      const jose = await new SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
        .setIssuer('gatehouse')
        .sign(secret);
      expect(token).toBe(jose);
    }
  });
});

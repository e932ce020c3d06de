import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ExternalIssuer, isInternalHost } from '../../src/resource-server/external-issuer-schema.js';
import {
  createExternalTokenVerifier,
  type ExternalTokenCheck,
  type ExternalTokenVerifier,
} from '../../src/resource-server/external-token-verifier.js';
import { mayFollowJwksUri } from '../../src/resource-server/remote-key-set.js';
import { createTestClock, type TestClock } from '../../src/testing.js';
import {
  API_AUDIENCE,
  CLIENT_ID,
  createProviderKey,
  type ExternalProvider,
  type ProviderKey,
  startExternalProvider,
  startHangingServer,
} from '../support/external-provider.js';
import { resolveNames } from '../support/fake-dns.js';

/** Issue 15 item 4: tokens of a real external provider (oidc-provider 8), verified by their issuer's keys. */
describe('external token verifier', () => {
  let provider: ExternalProvider;
  let firstKey: ProviderKey;
  let clock: TestClock;
  const warnings: string[] = [];
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    firstKey = await createProviderKey();
    provider = await startExternalProvider([firstKey]);
  });
  afterAll(async () => {
    await provider?.close();
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  const verifierFor = (
    issuers: ExternalIssuer[],
    options: { timeoutMs?: number } = {},
  ): ExternalTokenVerifier => {
    clock = createTestClock(Date.now());
    return createExternalTokenVerifier({
      issuers,
      timeoutMs: options.timeoutMs ?? 2000,
      clock,
      warn: (message) => warnings.push(message),
    });
  };
  const settings = (overrides: Partial<ExternalIssuer> = {}): ExternalIssuer => ({
    issuer: provider.issuer,
    audience: API_AUDIENCE,
    ...overrides,
  });
  const expectInvalid = (check: ExternalTokenCheck, description: RegExp) => {
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.reason).toBe('invalid');
    expect(check.description).toMatch(description);
  };
  /** A token signed with one of the provider's keys, with claims and header of our choosing. */
  const forge = (key: ProviderKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT({ iss: provider.issuer, aud: API_AUDIENCE, sub: 'forged', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt', ...header })
      .setIssuedAt(Math.floor(clock() / 1000))
      .setExpirationTime(Math.floor(clock() / 1000) + 300)
      .sign(key.privateKey);

  it("accepts the provider's access token after discovering its keys, and maps its scopes", async () => {
    const verifier = verifierFor([settings()]);
    const token = await provider.issueToken({ scope: 'orders:read orders:write' });
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    expect(verifier.issuerOf(token)).toBe(provider.issuer);
    expect(verifier.peek(token)).toBeUndefined();
    const check = await verifier.verify(token);
    expect(check.ok).toBe(true);
    if (!check.ok) return;
    expect(check.principal).toMatchObject({
      issuer: provider.issuer,
      subject: CLIENT_ID,
      clientId: CLIENT_ID,
      scopes: ['orders:read', 'orders:write'],
    });
    // Verified once, then answered from memory.
    expect(verifier.peek(token)?.ok).toBe(true);
  });

  it('reads scopes from an array claim (scp) when so configured', async () => {
    const verifier = verifierFor([settings({ scopeClaim: 'scp' })]);
    const token = await forge(firstKey, { scp: ['orders:read', 42, 'reports:read'], scope: 'ignored' });
    const check = await verifier.verify(token);
    expect(check.ok && check.principal.scopes).toEqual(['orders:read', 'reports:read']);
  });

  it('refuses a token for another audience', async () => {
    const verifier = verifierFor([settings()]);
    const token = await provider.issueToken({ resource: 'https://another-api.test' });
    expectInvalid(await verifier.verify(token), /aud/);
  });

  it('refuses a token whose iss names a configured issuer it was not signed by', async () => {
    const other = await startExternalProvider();
    closers.push(() => other.close());
    const verifier = verifierFor([settings(), { issuer: other.issuer, audience: API_AUDIENCE }]);
    // Signed with the first provider's key, claiming to come from the second one.
    const token = await forge(firstKey, { iss: other.issuer });
    expect(verifier.issuerOf(token)).toBe(other.issuer);
    expectInvalid(await verifier.verify(token), /signing key is unknown/);
  });

  it('ignores tokens of issuers that are not configured', async () => {
    const verifier = verifierFor([settings()]);
    const token = await forge(firstKey, { iss: 'https://evil.example' });
    expect(verifier.issuerOf(token)).toBeUndefined();
    expectInvalid(await verifier.verify(token), /trusted issuer/);
  });

  it('refuses an expired token, and one not valid yet, beyond the clock tolerance', async () => {
    const verifier = verifierFor([settings({ clockTolerance: 5 })]);
    const token = await provider.issueToken();
    expect((await verifier.verify(token)).ok).toBe(true);
    clock.advance(310_000); // the provider's tokens live 300 s
    const expired = verifier.peek(token) ?? (await verifier.verify(token));
    expect(expired).toMatchObject({ ok: false, reason: 'expired' });
    expect(await verifier.verify(token)).toMatchObject({ ok: false, reason: 'expired' });
    const early = await new SignJWT({ iss: provider.issuer, aud: API_AUDIENCE, sub: 'early' })
      .setProtectedHeader({ alg: 'ES256', kid: firstKey.kid, typ: 'at+jwt' })
      .setNotBefore(Math.floor(clock() / 1000) + 60)
      .setExpirationTime(Math.floor(clock() / 1000) + 300)
      .sign(firstKey.privateKey);
    expectInvalid(await verifier.verify(early), /nbf/);
  });

  it('checks the typ per issuer: at+jwt by default, JWT when configured (as Keycloak and Auth0 send)', async () => {
    const strict = verifierFor([settings()]);
    const plainJwt = await forge(firstKey, {}, { typ: 'JWT' });
    expectInvalid(await strict.verify(plainJwt), /typ/);
    const untyped = await forge(firstKey, {}, { typ: undefined });
    expectInvalid(await strict.verify(untyped), /typ/);
    const lenient = verifierFor([settings({ typ: ['JWT', 'at+jwt'] })]);
    expect((await lenient.verify(plainJwt)).ok).toBe(true);
    expect((await lenient.verify(await forge(firstKey, {}, { typ: 'application/at+JWT' }))).ok).toBe(true);
    const keycloakOnly = verifierFor([settings({ typ: 'JWT' })]);
    expectInvalid(await keycloakOnly.verify(await provider.issueToken()), /typ/);
  });

  it('requires exp and sub', async () => {
    const verifier = verifierFor([settings()]);
    const noSub = await new SignJWT({ iss: provider.issuer, aud: API_AUDIENCE })
      .setProtectedHeader({ alg: 'ES256', kid: firstKey.kid, typ: 'at+jwt' })
      .setExpirationTime(Math.floor(clock() / 1000) + 300)
      .sign(firstKey.privateKey);
    expectInvalid(await verifier.verify(noSub), /sub/);
    const noExp = await new SignJWT({ iss: provider.issuer, aud: API_AUDIENCE, sub: 'x' })
      .setProtectedHeader({ alg: 'ES256', kid: firstKey.kid, typ: 'at+jwt' })
      .sign(firstKey.privateKey);
    expectInvalid(await verifier.verify(noExp), /exp/);
  });

  it('refuses a sender-constrained token (cnf: DPoP or mTLS) presented as a bearer token', async () => {
    const verifier = verifierFor([settings()]);
    const dpopBound = await forge(firstKey, { cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } });
    expectInvalid(await verifier.verify(dpopBound), /sender-constrained/);
    const mtlsBound = await forge(firstKey, {
      cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' },
    });
    expectInvalid(await verifier.verify(mtlsBound), /sender-constrained/);
    // The same token without the binding is accepted: only cnf made the difference.
    expect((await verifier.verify(await forge(firstKey, {}))).ok).toBe(true);
  });

  it('refuses alg none, HMAC signed with the public key, and algorithms not allowed', async () => {
    const verifier = verifierFor([settings({ algorithms: ['RS256'] })]);
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const claims = {
      iss: provider.issuer,
      aud: API_AUDIENCE,
      sub: 'attacker',
      exp: Math.floor(clock() / 1000) + 300,
    };
    const none = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`;
    expectInvalid(await verifier.verify(none), /invalid|algorithm/);
    // The algorithm-confusion attack: HS256 keyed with the issuer's public key, which anyone has.
    const publicJwk = { ...firstKey.privateJwk, d: undefined };
    const hmacKey = new TextEncoder().encode(JSON.stringify(publicJwk));
    const confused = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: firstKey.kid, typ: 'at+jwt' })
      .sign(hmacKey);
    expectInvalid(await verifier.verify(confused), /algorithm/);
    // ES256 is the provider's real algorithm, but this issuer allows RS256 only.
    expectInvalid(await verifier.verify(await provider.issueToken()), /algorithm/);
  });

  it("follows the provider's key rotation: new tokens verify after one refetch, old ones until their key is removed", async () => {
    const rotating = await startExternalProvider([firstKey]);
    closers.push(() => rotating.close());
    const verifier = verifierFor([
      { issuer: rotating.issuer, audience: API_AUDIENCE, jwksCooldown: 1, jwksMaxAge: 60 },
    ]);
    const before = await rotating.issueToken();
    expect((await verifier.verify(before)).ok).toBe(true);
    expect(rotating.jwksFetches()).toBe(1);

    const nextKey = await createProviderKey();
    rotating.useKeys([nextKey, firstKey]);
    const after = await rotating.issueToken();
    expect(decodeProtectedHeader(after).kid).toBe(nextKey.kid);
    // Within the cooldown the unknown kid cannot trigger a fetch: it may be the rotation's new key,
    // so the answer is "retry" (503 with Retry-After), not "invalid" (a 401 makes clients drop a
    // good token; red-team 2026-12m E2)...
    expect(await verifier.verify(after)).toMatchObject({
      ok: false,
      reason: 'key-unknown',
      retryAfterSeconds: 1,
    });
    expect(rotating.jwksFetches()).toBe(1);
    // ...after it, one fetch finds the new key; tokens of the old key still verify.
    clock.advance(1000);
    expect((await verifier.verify(after)).ok).toBe(true);
    expect(rotating.jwksFetches()).toBe(2);
    expect((await verifier.verify(before)).ok).toBe(true);

    // The provider drops the old key: once our copy is older than jwksMaxAge it is fetched again
    // (the request that notices still passes on the old set), then the old key's tokens fail.
    rotating.useKeys([nextKey]);
    clock.advance(60_000);
    await verifier.verify(before);
    await expect.poll(() => rotating.jwksFetches()).toBe(3);
    await expect.poll(async () => (await verifier.verify(before)).ok).toBe(false);
    // Its kid is unknown to a set fetched after the token was issued: that is the provider's
    // answer, so "invalid" at once, within the cooldown too (no retry loop for a removed key).
    expectInvalid(await verifier.verify(before), /signing key is unknown/);
    expect(rotating.jwksFetches()).toBe(3);
    expect((await verifier.verify(after)).ok).toBe(true);
  });

  it('fetches the key set at most once per cooldown however many unknown kids arrive', async () => {
    const flooded = await startExternalProvider([firstKey]);
    closers.push(() => flooded.close());
    const verifier = verifierFor([{ issuer: flooded.issuer, audience: API_AUDIENCE, jwksCooldown: 30 }]);
    expect((await verifier.verify(await flooded.issueToken())).ok).toBe(true);
    expect(flooded.jwksFetches()).toBe(1);
    const attacker = await createProviderKey();
    const forged = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        new SignJWT({ iss: flooded.issuer, aud: API_AUDIENCE, sub: 'attacker' })
          .setProtectedHeader({
            alg: 'ES256',
            kid: `random-${i}-${randomBytes(4).toString('hex')}`,
            typ: 'at+jwt',
          })
          .setExpirationTime(Math.floor(clock() / 1000) + 300)
          .sign(attacker.privateKey),
      ),
    );
    clock.advance(30_000);
    const checks = await Promise.all(forged.map((token) => verifier.verify(token)));
    for (const check of checks) expectInvalid(check, /signing key is unknown/);
    // One refetch for the whole flood (they shared it), then none until the cooldown passes.
    expect(flooded.jwksFetches()).toBe(2);
    // Within the cooldown they are told to retry later, without a fetch.
    for (const token of forged) {
      expect(await verifier.verify(token)).toMatchObject({
        ok: false,
        reason: 'key-unknown',
        retryAfterSeconds: 30,
      });
    }
    expect(flooded.jwksFetches()).toBe(2);
  });

  it('answers unavailable, without crashing, when the provider is down; and keeps using cached keys', async () => {
    const flaky = await startExternalProvider([firstKey]);
    const verifier = verifierFor([{ issuer: flaky.issuer, audience: API_AUDIENCE, jwksCooldown: 5 }]);
    const token = await flaky.issueToken();
    const unverified = await flaky.issueToken({ scope: 'orders:write' });
    expect((await verifier.verify(token)).ok).toBe(true);
    await flaky.close();
    // Keys cached: tokens of known keys still verify with the provider gone.
    expect((await verifier.verify(unverified)).ok).toBe(true);

    const downIssuer = flaky.issuer;
    const cold = verifierFor([{ issuer: downIssuer, audience: API_AUDIENCE, jwksCooldown: 5 }]);
    const first = await cold.verify(unverified);
    expect(first).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(warnings.some((message) => message.includes('fetching its keys failed'))).toBe(true);
    // Within the cooldown it does not even try: an immediate answer with the time left.
    const second = await cold.verify(unverified);
    expect(second).toMatchObject({ ok: false, reason: 'unavailable', retryAfterSeconds: 5 });
  });

  it('gives up on a hanging provider after the timeout, while other issuers answer meanwhile', async () => {
    const hanging = await startHangingServer();
    closers.push(() => hanging.close());
    const verifier = verifierFor(
      [settings(), { issuer: hanging.url, audience: API_AUDIENCE, jwksCooldown: 60 }],
      { timeoutMs: 1500 },
    );
    const healthy = await provider.issueToken();
    const stuck = await new SignJWT({ iss: hanging.url, aud: API_AUDIENCE, sub: 'x' })
      .setProtectedHeader({ alg: 'ES256', kid: firstKey.kid, typ: 'at+jwt' })
      .setExpirationTime(Math.floor(clock() / 1000) + 300)
      .sign(firstKey.privateKey);
    const order: string[] = [];
    const stuckChecks = Array.from({ length: 5 }, () =>
      verifier.verify(stuck).then((check) => {
        order.push('stuck');
        return check;
      }),
    );
    const healthyCheck = await verifier.verify(healthy);
    order.push('healthy');
    expect(healthyCheck.ok).toBe(true);
    const results = await Promise.all(stuckChecks);
    expect(order[0]).toBe('healthy');
    for (const check of results) expect(check).toMatchObject({ ok: false, reason: 'unavailable' });
    // Five waiting requests shared one connection to the hanging provider.
    expect(hanging.connections()).toBe(1);
  });

  it('refuses a discovery document that names another issuer, and one whose keys are private or oversized', async () => {
    const documents = new Map<string, unknown>();
    const server = createServer((request, response) => {
      const body = documents.get(request.url ?? '');
      response.statusCode = body === undefined ? 404 : 200;
      response.setHeader('content-type', 'application/json');
      response.end(body === undefined ? '{}' : typeof body === 'string' ? body : JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const token = (iss: string) =>
      new SignJWT({ iss, aud: API_AUDIENCE, sub: 's' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
        .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
        .sign(privateKey);

    // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
    documents.set('/liar/.well-known/openid-configuration', {
      issuer: `${base}/other`,
      jwks_uri: `${base}/keys`,
    });
    documents.set('/keys', { keys: [jwk] });
    const liar = verifierFor([{ issuer: `${base}/liar`, audience: API_AUDIENCE }]);
    expect(await liar.verify(await token(`${base}/liar`))).toMatchObject({
      ok: false,
      reason: 'unavailable',
    });

    // RFC 8414 metadata is the fallback when there is no OpenID configuration.
    documents.set('/.well-known/oauth-authorization-server/as', {
      issuer: `${base}/as`,
      jwks_uri: `${base}/keys`,
    });
    const rfc8414 = verifierFor([{ issuer: `${base}/as`, audience: API_AUDIENCE }]);
    expect((await rfc8414.verify(await token(`${base}/as`))).ok).toBe(true);

    // A private key in a published set is never used (and an oversized set is not read).
    const privateJwk = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES256' };
    documents.set('/private-keys', { keys: [privateJwk] });
    const leaky = verifierFor([
      { issuer: `${base}/leaky`, audience: API_AUDIENCE, jwksUri: `${base}/private-keys` },
    ]);
    expectInvalid(await leaky.verify(await token(`${base}/leaky`)), /signing key is unknown/);
    documents.set('/huge-keys', JSON.stringify({ keys: [jwk], padding: 'x'.repeat(600 * 1024) }));
    const huge = verifierFor([
      { issuer: `${base}/huge`, audience: API_AUDIENCE, jwksUri: `${base}/huge-keys` },
    ]);
    expect(await huge.verify(await token(`${base}/huge`))).toMatchObject({
      ok: false,
      reason: 'unavailable',
    });
  });
  it('stops using a key set once it is jwksMaxStale past jwksMaxAge while fetching fails (red-team 2026-12m E1)', async () => {
    const failing = await startExternalProvider([firstKey]);
    const verifier = verifierFor([
      { issuer: failing.issuer, audience: API_AUDIENCE, jwksMaxAge: 60, jwksMaxStale: 120, jwksCooldown: 1 },
    ]);
    const token = await failing.issueToken();
    expect((await verifier.verify(token)).ok).toBe(true);
    // The provider's key set endpoint stops answering (say it removed a leaked key and is down).
    await failing.close();
    clock.advance(61_000);
    // Stale: the last set still serves while the refetch fails...
    expect((await verifier.verify(token)).ok).toBe(true);
    clock.advance(118_000);
    expect((await verifier.verify(token)).ok).toBe(true);
    // ...but not past jwksMaxAge + jwksMaxStale: the issuer's keys are unavailable, not trusted.
    clock.advance(2_000);
    expect(await verifier.verify(token)).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(verifier.peek(token)).toBeUndefined();
  });

  it('answers "unavailable", not "invalid", for an unknown kid whose refetch fails (review of E2)', async () => {
    const failing = await startExternalProvider([firstKey]);
    const verifier = verifierFor([{ issuer: failing.issuer, audience: API_AUDIENCE, jwksCooldown: 1 }]);
    expect((await verifier.verify(await failing.issueToken())).ok).toBe(true);
    // The provider rotates while its key set endpoint is down: a new key's token arrives.
    await failing.close();
    const nextKey = await createProviderKey();
    clock.advance(1000);
    const fresh = await new SignJWT({ iss: failing.issuer, aud: API_AUDIENCE, sub: 's' })
      .setProtectedHeader({ alg: 'ES256', kid: nextKey.kid, typ: 'at+jwt' })
      .setIssuedAt(Math.floor(clock() / 1000))
      .setExpirationTime(Math.floor(clock() / 1000) + 300)
      .sign(nextKey.privateKey);
    expect(await verifier.verify(fresh)).toMatchObject({ ok: false, reason: 'unavailable' });
  });

  it('refuses ID tokens, an empty sub and an iat in the future, even with typ JWT (red-team 2026-12m E4)', async () => {
    const verifier = verifierFor([settings({ typ: 'JWT' })]);
    const jwt = { typ: 'JWT' };
    expect((await verifier.verify(await forge(firstKey, {}, jwt))).ok).toBe(true);
    expectInvalid(await verifier.verify(await forge(firstKey, { at_hash: 'x' }, jwt)), /ID token/);
    expectInvalid(await verifier.verify(await forge(firstKey, { c_hash: 'x' }, jwt)), /ID token/);
    // Keycloak's ID token: `typ: ID` in the payload, `nonce`, `azp` = the client.
    expectInvalid(
      await verifier.verify(await forge(firstKey, { typ: 'ID', nonce: 'n', azp: 'orders-api' }, jwt)),
      /ID token/,
    );
    expectInvalid(await verifier.verify(await forge(firstKey, { sub: '' }, jwt)), /lacks sub/);
    const future = await new SignJWT({ iss: provider.issuer, aud: API_AUDIENCE, sub: 's' })
      .setProtectedHeader({ alg: 'ES256', kid: firstKey.kid, typ: 'JWT' })
      .setIssuedAt(Math.floor(clock() / 1000) + 3600)
      .setExpirationTime(Math.floor(clock() / 1000) + 7200)
      .sign(firstKey.privateKey);
    expectInvalid(await verifier.verify(future), /issued in the future/);
    // Within the clock tolerance (30 s) an iat ahead of us is a clock difference, not a forgery.
    const skewed = await new SignJWT({ iss: provider.issuer, aud: API_AUDIENCE, sub: 's' })
      .setProtectedHeader({ alg: 'ES256', kid: firstKey.kid, typ: 'JWT' })
      .setIssuedAt(Math.floor(clock() / 1000) + 20)
      .setExpirationTime(Math.floor(clock() / 1000) + 300)
      .sign(firstKey.privateKey);
    expect((await verifier.verify(skewed)).ok).toBe(true);
  });

  it('skips key set members that are not objects instead of refusing the whole set (red-team 2026-12m E5)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const server = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [[], 'junk', 7, jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const verifier = verifierFor([
      { issuer: `${base}/odd`, audience: API_AUDIENCE, jwksUri: `${base}/keys` },
    ]);
    const token = await new SignJWT({ iss: `${base}/odd`, aud: API_AUDIENCE, sub: 's' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setExpirationTime(Math.floor(clock() / 1000) + 300)
      .sign(privateKey);
    expect((await verifier.verify(token)).ok).toBe(true);
  });
});

describe('a jwks_uri named by discovery (red-team 2026-12m E3)', () => {
  it('must not lower the issuer: https stays https, and only an internal issuer may name an internal host', () => {
    expect(mayFollowJwksUri('https://idp.example.com/realms/a', 'https://idp.example.com/certs')).toBe(true);
    // Google's keys live on another public host: allowed.
    expect(
      mayFollowJwksUri('https://accounts.google.com', 'https://www.googleapis.com/oauth2/v3/certs'),
    ).toBe(true);
    expect(mayFollowJwksUri('https://idp.example.com', 'http://idp.example.com/certs')).toBe(false);
    for (const internal of [
      'https://127.0.0.1:19444/admin/flush-cache?confirm=yes',
      'https://localhost/certs',
      'https://10.1.2.3/certs',
      'https://172.20.0.1/certs',
      'https://192.168.1.1/certs',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/certs',
      'https://[fd00::1]/certs',
      'https://[fe80::1]/certs',
      'https://[::ffff:127.0.0.1]/certs',
      'https://0.0.0.0/certs',
      'https://localhost./certs',
      'https://foo.localhost./certs',
      'https://[::7f00:1]/certs',
      'https://[::ffff:0:7f00:1]/certs',
      'https://[64:ff9b::a9fe:a9fe]/certs',
      'https://[fec0::1]/certs',
      'https://100.100.100.200/latest/meta-data',
      'https://2130706433/certs',
      'https://0x7f.1/certs',
    ]) {
      expect(mayFollowJwksUri('https://idp.example.com', internal), internal).toBe(false);
    }
    // An issuer that is itself internal (a provider on this machine or network) may.
    expect(mayFollowJwksUri('http://127.0.0.1:8080', 'http://127.0.0.1:8080/jwks')).toBe(true);
    expect(mayFollowJwksUri('https://10.0.0.5', 'https://10.0.0.6/jwks')).toBe(true);
  });

  it('names internal hosts by their literal only', () => {
    expect(isInternalHost('172.15.0.1')).toBe(false);
    expect(isInternalHost('172.32.0.1')).toBe(false);
    expect(isInternalHost('8.8.8.8')).toBe(false);
    expect(isInternalHost('[2001:db8::1]')).toBe(false);
    expect(isInternalHost('idp.example.com')).toBe(false);
    expect(isInternalHost('app.localhost')).toBe(true);
    // fc::1 is 0x00fc, fe8::1 is 0x0fe8: outside fc00::/7 and fe80::/10.
    expect(isInternalHost('[fc::1]')).toBe(false);
    expect(isInternalHost('[fe8::1]')).toBe(false);
    expect(isInternalHost('[::ffff:8.8.8.8]')).toBe(false);
  });
});

describe('an external issuer whose host name resolves to an internal address', () => {
  let server: Server;
  let port: number;
  let connections = 0;
  let restoreDns: () => void = () => {};
  const warnings: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    // A whole issuer (discovery and key set) on loopback, for the name `idp.example.test`.
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    server = createServer((request, response) => {
      const issuer = `http://idp.example.test:${port}`;
      response.setHeader('content-type', 'application/json');
      if (request.url === '/.well-known/openid-configuration') {
        // A loopback key set: followed only for an issuer declared internal (mayFollowJwksUri).
        response.end(JSON.stringify({ issuer, jwks_uri: `http://127.0.0.1:${port}/keys` }));
      } else response.end(JSON.stringify({ keys: [jwk] }));
    });
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    signed = (issuer: string) =>
      new SignJWT({ iss: issuer, aud: API_AUDIENCE, sub: 's' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
        .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
        .sign(privateKey);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  afterEach(() => restoreDns());
  let signed: (issuer: string) => Promise<string>;

  const verify = async (settings: ExternalIssuer) => {
    const verifier = createExternalTokenVerifier({
      issuers: [settings],
      timeoutMs: 2000,
      clock: () => Date.now(),
      warn: (_message, details) => warnings.push(details),
    });
    return verifier.verify(await signed(settings.issuer));
  };

  it('is never contacted, for discovery as for the key set; allowInternalAddresses opens it', async () => {
    restoreDns = resolveNames({ 'idp.example.test': ['127.0.0.1'] });
    const before = connections;
    const discovered = await verify({ issuer: `https://idp.example.test:${port}`, audience: API_AUDIENCE });
    expect(discovered).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(connections).toBe(before);
    expect(warnings.at(-1)?.error).toMatch(
      /idp\.example\.test resolves to 127\.0\.0\.1, an internal address/,
    );
    const configured = await verify({
      issuer: `https://idp.example.test:${port}`,
      audience: API_AUDIENCE,
      jwksUri: `https://idp.example.test:${port}/keys`,
    });
    expect(configured).toMatchObject({ ok: false, reason: 'unavailable' });
    expect(connections).toBe(before);

    // The operator's declaration: the same issuer (here over plain HTTP, so that the loopback
    // server can answer it) is fetched, its metadata may name a key set on loopback, and its
    // token verifies.
    const allowed = await verify({
      issuer: `http://idp.example.test:${port}`,
      audience: API_AUDIENCE,
      allowInternalAddresses: true,
    });
    expect(allowed).toMatchObject({ ok: true });
    expect(connections).toBeGreaterThan(before);
  });
});

// The loops of `loop-instructions.mjs`: each takes a build's `dist` folder and returns one
// iteration (an async function), set up once. They call the build's own modules, so a frozen copy
// of an older `dist/` runs the older code.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const loadFrom = (dist) => (path) => import(pathToFileURL(join(dist, path)).href);

const ACCOUNTS = 100;

/**
 * A password login's SQL (JWT strategy) as `token-grants.ts` → `session-manager.ts` run it: the
 * user by `email_key`, the TOTP row, then `Database.transaction` with the stores `gatehouse.ts`
 * builds over it, and the session, the refresh token and the `login_succeeded` audit entry.
 */
async function signIn(dist) {
  const load = loadFrom(dist);
  const [{ openDatabase }, { migrateToLatest }, { createUserStore }, { createMfaStore }] = await Promise.all([
    load('src/storage/open-database.js'),
    load('src/storage/migrate.js'),
    load('src/storage/user-store.js'),
    load('src/mfa/storage/mfa-store.js'),
  ]);
  const { generateOpaqueToken } = await load('src/tokens/opaque-token.js');
  // The stores over a transaction, as the build's gatehouse.ts makes them.
  let storesOver;
  if (existsSync(join(dist, 'src/sessions/session-stores.js'))) {
    const { createSessionStores } = await load('src/sessions/session-stores.js');
    storesOver = (trx) => createSessionStores(trx, Date.now);
  } else {
    const [
      { createSessionStore },
      { createAuditLog },
      { createAuditStore },
      { createAuditRetentionStore },
      { createSpentChallengeStore },
      { createOAuthGrantStore },
    ] = await Promise.all([
      load('src/storage/session-store.js'),
      load('src/audit/audit-log.js'),
      load('src/storage/audit-store.js'),
      load('src/storage/audit-retention-store.js'),
      load('src/storage/spent-challenge-store.js'),
      load('src/storage/oauth-grant-store.js'),
    ]);
    storesOver = (trx) => ({
      sessions: createSessionStore(trx),
      users: createUserStore(trx),
      audit: createAuditLog(createAuditStore(trx), Date.now, createAuditRetentionStore(trx)),
      mfa: createMfaStore(trx),
      spent: createSpentChallengeStore(trx),
      grants: createOAuthGrantStore(trx),
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-loop-'));
  const database = openDatabase(`sqlite:${join(dir, 'loop.db')}`);
  await migrateToLatest(database);
  const users = createUserStore(database.db);
  const mfa = createMfaStore(database.db);
  const emailKeys = Array.from({ length: ACCOUNTS }, (_, i) => `loop-${i}@example.com`);
  for (const emailKey of emailKeys) {
    const now = Date.now();
    await users.insertUser({
      id: randomUUID(),
      email: emailKey,
      emailKey,
      fullName: null,
      passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA',
      role: 'user',
      isActive: true,
      emailVerified: false,
      createdAt: now,
      updatedAt: now,
    });
  }
  let next = 0;
  return async () => {
    const user = await users.findUserByEmailKey(emailKeys[next]);
    next = (next + 1) % ACCOUNTS;
    await mfa.findTotp(user.id);
    const now = Date.now();
    const session = {
      id: randomUUID(),
      userId: user.id,
      transport: 'bearer',
      scopes: ['profile'],
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + 30 * 86_400_000,
      revokedAt: null,
      userAgent: 'autocannon',
      ip: '127.0.0.1',
      authTime: now,
      amr: ['pwd'],
    };
    const refresh = generateOpaqueToken('ghr');
    // session-manager.ts's startBearer: what `spend` and `upgradePassword` read, then the writes.
    await database.transaction(async (trx) => {
      const stores = storesOver(trx);
      await stores.sessions.insertSession(session);
      await stores.sessions.insertRefreshToken(
        refresh.hash,
        session.id,
        now,
        now + 14 * 86_400_000,
        'gatehouse',
      );
      await stores.audit.record({
        event: 'login_succeeded',
        actorId: user.id,
        targetId: user.id,
        ip: '127.0.0.1',
        userAgent: 'autocannon',
        details: { via: 'token', session: session.id },
      });
    });
  };
}

/**
 * The two tokens a password login signs after its transaction: the device token
 * (`deviceTokens.issue`) and the access JWT (`keyring.sign`, HS256, session-manager.ts's claims).
 */
async function tokens(dist) {
  const load = loadFrom(dist);
  const [{ createDeviceTokens }, { createKeyring }] = await Promise.all([
    load('src/accounts/device-token.js'),
    load('src/tokens/keyring.js'),
  ]);
  const secret = new Uint8Array(32).fill(7);
  const deviceTokens = createDeviceTokens({ secretKey: secret, ttlSeconds: 30 * 86_400, clock: Date.now });
  const keyring = await createKeyring({ algorithm: 'HS256', secret, issuer: 'gatehouse', dataDir: tmpdir() });
  const account = {
    id: randomUUID(),
    emailVerified: false,
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA',
  };
  return async () => {
    deviceTokens.issue(account);
    const now = Date.now();
    await keyring.sign(
      {
        sub: account.id,
        client_id: 'gatehouse',
        sid: randomUUID(),
        scope: 'profile',
        aud: 'gatehouse',
        iat: Math.floor(now / 1000),
        exp: Math.floor(now / 1000) + 900,
        jti: randomUUID(),
        auth_time: Math.floor(now / 1000),
        amr: ['pwd'],
      },
      'at+jwt',
    );
  };
}

/**
 * One successful untrusted password login's throttle calls, in account-service.ts's order, on the
 * in-process counter store (no Redis, as `npm start`): checkLogins, check (before the gate),
 * check (inside it), recordSuccess, recordLogin.
 */
async function throttle(dist) {
  const load = loadFrom(dist);
  const [{ createMemoryCounterStore }, { createLoginThrottle }] = await Promise.all([
    load('src/accounts/counter-store.js'),
    load('src/accounts/login-throttle.js'),
  ]);
  const throttle = createLoginThrottle(
    createMemoryCounterStore(Date.now),
    { perAccount: 10, perIp: 100, perDevice: 10, global: 1000, windowMs: 900_000, successesPerAccount: 1e9 },
    Date.now,
  );
  let next = 0;
  return async () => {
    const accountKey = `loop-${next}@example.com`;
    next = (next + 1) % ACCOUNTS;
    const account = { accountKey };
    await throttle.checkLogins(account);
    const subject = { trust: 'untrusted', accountKey, ip: '203.0.113.7' };
    await throttle.check(subject);
    await throttle.check(subject);
    await throttle.recordSuccess(subject);
    await throttle.recordLogin(account);
  };
}

export const loops = { 'sign-in': signIn, tokens, throttle };

import { createHash, createSecretKey, type KeyObject as NodeKeyObject } from 'node:crypto';
import {
  type CryptoKey,
  importJWK,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  type KeyObject,
  SignJWT,
} from 'jose';
import type { JwtAlgorithm } from '../config/config.js';
import { type Scheduler, systemScheduler } from '../lib/scheduler.js';
import type { Database } from '../storage/open-database.js';
import { createSigningKeyStore, type SigningKeyRecord } from '../storage/signing-key-store.js';
import { provisionSigningKeys } from './provision-signing-keys.js';
import { encodeJwtHeader, signHs256JwtWithHeader } from './sign-hs256.js';
import { SigningKeyError } from './signing-key-error.js';
import {
  type AsymmetricAlgorithm,
  createSigningKeySealer,
  KEY_FILE as LEGACY_KEY_FILE,
  sealContext,
} from './signing-key-material.js';
import { currentKid, isPublished, signingKeyStates } from './signing-key-set.js';

type Key = CryptoKey | KeyObject | Uint8Array;

/** What verifying a JWT must check besides the signature. */
export interface VerifyExpectations {
  /** Required `typ` header (RFC 8725 §3.11: explicit typing keeps token kinds apart). */
  typ: string;
  /** Required `aud`. */
  audience: string;
  /** Claims that must be present. */
  requiredClaims: string[];
  /** The clock, in epoch ms. */
  now: number;
  /**
   * Seconds past `exp` a token still verifies (signature, `typ`, `iss`, `aud` unchanged). Only
   * for tokens used as hints after their life, such as an `id_token_hint` at logout (OpenID
   * Connect RP-Initiated Logout 1.0 §2 lets the OP accept expired ones). jose applies the same
   * tolerance to `nbf`, which Gatehouse never sets. @default 0
   */
  expiredGraceSeconds?: number;
}

/** Signs and verifies Gatehouse JWTs with exactly one algorithm. */
export interface Keyring {
  /** The one accepted algorithm. */
  readonly algorithm: JwtAlgorithm;
  /** Issuer put in and required of every token. */
  readonly issuer: string;
  /** Signs `payload` with the key current at this instant, adding `iss`, `kid` and `typ`. */
  sign(payload: JWTPayload, typ: string): Promise<string>;
  /** Verifies signature, algorithm, `typ`, `iss`, `aud`, `exp`/`nbf` and required claims; throws on failure. */
  verify(token: string, expect: VerifyExpectations): Promise<JWTPayload>;
  /**
   * The public keys as a JWK Set: next, current and retired keys (empty for HS256: a shared secret
   * is never published).
   */
  jwks(): { keys: JWK[] };
  /**
   * A number that changes whenever a key stops verifying (revoked or purged). Callers that cache
   * verified tokens drop their cache when it changes, so a revoked key's tokens fail at once.
   */
  revision(): number;
  /** Re-reads the key set from the database now (it also happens every {@link KEY_RELOAD_INTERVAL_SECONDS}). */
  reload(): Promise<void>;
  /** Stops the periodic reload. */
  close(): void;
}

/**
 * How far in the future a token's `iat` may lie and still verify: instances' clocks differ a
 * little (NTP keeps them within well under a second; this allows for a poorly synced host), but a
 * token "issued" later than that was minted by a wrong clock or forged with a stolen key to
 * outlive it, so it is refused (as PyJWT's `ImmatureSignatureError` does).
 */
export const IAT_CLOCK_SKEW_SECONDS = 60;

/**
 * File name of the key set kept in `DATA_DIR` before keys moved to the database; imported once,
 * at the first start that finds no key of the algorithm in the database.
 */
export const KEY_FILE = LEGACY_KEY_FILE;

/** `Cache-Control: max-age` of `GET /.well-known/jwks.json`: how long verifiers may cache the key set. */
export const JWKS_MAX_AGE_SECONDS = 300;

/**
 * How often every instance re-reads the key set: the bound on how late an instance learns of a
 * new next key or of a revocation (`rotate-keys --revoke`).
 */
export const KEY_RELOAD_INTERVAL_SECONDS = 30;

/**
 * How long a key added by `rotate-keys` is published before it signs: twice the JWKS cache
 * lifetime, so every instance has re-read the set ({@link KEY_RELOAD_INTERVAL_SECONDS}) and every
 * verifier that cached the JWKS before the rotation has refetched it (`max-age`) before the first
 * token signed with the new key reaches it.
 */
export const KEY_PUBLICATION_DELAY_SECONDS = 2 * JWKS_MAX_AGE_SECONDS;

/** Extra time a retired key is kept beyond the longest token lifetime (clock skew, slow reloads). */
export const KEY_RETENTION_MARGIN_SECONDS = 3600;

/**
 * How long a retired key stays published: every token the keyring signs must still verify until it
 * expires, and the same keyring signs access tokens *and* the apps' tokens (`Gatehouse.appTokens`,
 * as long as the longest `tokenLifetime` a registered app declared, at most `APP_TOKEN_MAX_TTL`),
 * so the longer of the two lifetimes counts, plus {@link KEY_RETENTION_MARGIN_SECONDS}.
 */
export function retiredKeyRetentionSeconds(lifetimes: {
  /** `ACCESS_TOKEN_TTL`. */
  accessTokenTtl: number;
  /** The longest app token lifetime declared; 0 when no app signs tokens. */
  appTokenLifetime: number;
}): number {
  return Math.max(lifetimes.accessTokenTtl, lifetimes.appTokenLifetime) + KEY_RETENTION_MARGIN_SECONDS;
}

// The longest app token (APP_TOKEN_MAX_TTL, 12 h) plus the margin: what retiredKeyRetentionSeconds
// gives at most for token lifetimes up to 12 h.
const DEFAULT_RETENTION_SECONDS = 12 * 3600 + KEY_RETENTION_MARGIN_SECONDS;

/** Options of {@link createKeyring}. */
export interface KeyringOptions {
  algorithm: JwtAlgorithm;
  /** SECRET_KEY: the HS256 key, and the key (via HKDF) that seals stored private keys. */
  secret: Uint8Array;
  /**
   * SECRET_KEY_PREVIOUS: HS256 tokens signed under it still verify, and private keys sealed under
   * it are re-sealed under `secret` at start-up. @default undefined
   */
  previousSecret?: Uint8Array;
  issuer: string;
  /** Where a pre-database `signing-keys.json` may wait to be imported. */
  dataDir: string;
  /** Where the asymmetric keys live; required unless `algorithm` is HS256. */
  database?: Database;
  /** Epoch ms. @default Date.now */
  clock?: () => number;
  /** How long retired keys stay published. @default 12 h + 1 h (see {@link retiredKeyRetentionSeconds}) */
  retentionSeconds?: number;
  /** @default KEY_RELOAD_INTERVAL_SECONDS × 1000 */
  reloadIntervalMs?: number;
  /** Where the periodic reload runs (tests pass `createTestClock()`). @default Node's timers, unref'd */
  scheduler?: Scheduler;
  /** Told when a reload fails (the last good key set stays in use) or a key cannot be decrypted. */
  onWarning?: (message: string, detail?: Record<string, unknown>) => void;
}

/** A key this instance can verify with, and sign with when its private key opened. */
interface LoadedKey {
  kid: string;
  verifyingKey: Key;
  signingKey: Key | undefined;
  publicJwk: JWK | undefined;
}

/**
 * Creates the keyring. HS256 uses SECRET_KEY (imported once: re-importing per call costs more
 * than the HMAC, DESIGN.md §6), and verifies SECRET_KEY_PREVIOUS's tokens too. EdDSA/ES256/RS256
 * keys live in the database, shared by every instance: created (or imported from
 * `DATA_DIR/signing-keys.json`) on the first start, re-read every
 * {@link KEY_RELOAD_INTERVAL_SECONDS}; the key that signs is chosen by time (see
 * `signing-key-set.ts`), so a rotation takes effect on every instance with no restart.
 */
export async function createKeyring(options: KeyringOptions): Promise<Keyring> {
  const clock = options.clock ?? Date.now;
  const keys = options.algorithm === 'HS256' ? await hmacKeys(options) : await databaseKeys(options, clock);
  const { algorithm, issuer } = options;
  // HS256 header segments by `typ`, for the key `headerKid`: a header is the same for every token
  // of one key and typ, so it is encoded once (issue 10, eighth round). Bounded by the typs the
  // code signs (access tokens, ID tokens, the apps' declared token types), never by a request;
  // emptied when another key signs.
  const headerSegments = new Map<string, string>();
  let headerKid: string | undefined;
  return {
    algorithm,
    issuer,
    async sign(payload, typ) {
      const key = keys.signer(clock());
      // HS256 signs synchronously (see signHs256Jwt: the same bytes as jose, without a thread-pool job).
      if (key.hmacKey !== undefined) {
        if (headerKid !== key.kid) {
          headerSegments.clear();
          headerKid = key.kid;
        }
        let segment = headerSegments.get(typ);
        if (segment === undefined) {
          segment = encodeJwtHeader({ alg: algorithm, typ, kid: key.kid });
          headerSegments.set(typ, segment);
        }
        return signHs256JwtWithHeader(segment, { ...payload, iss: issuer }, key.hmacKey);
      }
      const header = { alg: algorithm, typ, kid: key.kid };
      return new SignJWT(payload).setProtectedHeader(header).setIssuer(issuer).sign(key.signingKey);
    },
    async verify(token, expect) {
      const { payload } = await jwtVerify(
        token,
        (header: JWTHeaderParameters) => {
          // Never trust a key named by the token itself (`jku`, `jwk`, `x5u`); only our own kids.
          const entry = header.kid === undefined ? undefined : keys.verifier(header.kid);
          if (entry === undefined) throw new Error('unknown kid');
          return entry.verifyingKey;
        },
        {
          algorithms: [algorithm],
          issuer,
          audience: expect.audience,
          typ: expect.typ,
          requiredClaims: ['exp', 'iat', ...expect.requiredClaims],
          currentDate: new Date(expect.now),
          clockTolerance: expect.expiredGraceSeconds ?? 0,
        },
      );
      // jose checks `iat` against the clock only with `maxTokenAge`; the rule here is "not from the
      // future" (RFC 7519 §4.1.6 leaves it to the verifier), so it is checked directly.
      if (typeof payload.iat === 'number' && payload.iat > expect.now / 1000 + IAT_CLOCK_SKEW_SECONDS) {
        throw new joseErrors.JWTClaimValidationFailed(
          '"iat" lies in the future',
          payload,
          'iat',
          'check_failed',
        );
      }
      return payload;
    },
    jwks: () => keys.jwks(),
    revision: () => keys.revision(),
    reload: () => keys.reload(),
    close: () => keys.close(),
  };
}

/** The key source behind a keyring. */
interface KeySource {
  /**
   * The key that signs at `now` (with `hmacKey`, the HS256 secret, for the synchronous signer);
   * throws a {@link SigningKeyError} when none can.
   */
  signer(now: number): { kid: string; signingKey: Key; hmacKey?: NodeKeyObject };
  verifier(kid: string): LoadedKey | undefined;
  jwks(): { keys: JWK[] };
  revision(): number;
  reload(): Promise<void>;
  close(): void;
}

/** A short, stable kid for an HMAC secret: never the secret, a prefix of its SHA-256. */
function hmacKid(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 16);
}

async function hmacKeys(options: KeyringOptions): Promise<KeySource> {
  const entry = async (secret: Uint8Array): Promise<LoadedKey> => {
    // Imported once here as a non-extractable CryptoKey: given bytes, jose imports them again on
    // every sign and verify (DESIGN.md §6), and jose's `importJWK` of an `oct` JWK returns bytes.
    const key = await crypto.subtle.importKey(
      'raw',
      new Uint8Array(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
    return { kid: hmacKid(secret), verifyingKey: key, signingKey: key, publicJwk: undefined };
  };
  const current = await entry(options.secret);
  // The same secret as a node:crypto KeyObject, for signHs256JwtWithHeader; jose verifies with the CryptoKey.
  const hmacKey = createSecretKey(options.secret);
  const byKid = new Map([[current.kid, current]]);
  // SECRET_KEY_PREVIOUS verifies only: tokens it signed keep working until they expire.
  if (options.previousSecret !== undefined) {
    const previous = await entry(options.previousSecret);
    byKid.set(previous.kid, { ...previous, signingKey: undefined });
  }
  return {
    signer: () => ({ kid: current.kid, signingKey: current.verifyingKey, hmacKey }),
    verifier: (kid) => byKid.get(kid),
    jwks: () => ({ keys: [] }),
    revision: () => 0,
    reload: async () => {},
    close: () => {},
  };
}

async function databaseKeys(options: KeyringOptions, clock: () => number): Promise<KeySource> {
  const { database } = options;
  if (database === undefined) throw new Error(`JWT_ALG=${options.algorithm} needs the database for its keys`);
  const algorithm = options.algorithm as AsymmetricAlgorithm;
  const warn = options.onWarning ?? (() => {});
  const retentionMs = (options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS) * 1000;
  const sealers = [options.secret, options.previousSecret].flatMap((secret) =>
    secret === undefined ? [] : [createSigningKeySealer(secret)],
  );
  const store = createSigningKeyStore(database.db);
  await provisionSigningKeys({
    database,
    algorithm,
    dataDir: options.dataDir,
    now: clock(),
    secret: options.secret,
    previousSecret: options.previousSecret,
  });

  // Imported keys by kid, kept across reloads (importing costs more than reading the rows).
  let imported = new Map<string, LoadedKey>();
  let records: SigningKeyRecord[] = [];
  let jwks: { keys: JWK[] } = { keys: [] };
  let revision = 0;

  const importKey = async (record: SigningKeyRecord): Promise<LoadedKey> => {
    const publicJwk = JSON.parse(record.publicJwk) as JWK;
    let signingKey: Key | undefined;
    for (const sealer of sealers) {
      const opened = sealer.open(record.sealedPrivateKey, sealContext(record.algorithm, record.kid));
      if (opened === undefined) continue;
      signingKey = await importJWK(JSON.parse(opened) as JWK, algorithm);
      break;
    }
    if (signingKey === undefined) {
      warn('signing key cannot be decrypted with SECRET_KEY or SECRET_KEY_PREVIOUS; it verifies only', {
        kid: record.kid,
      });
    }
    return {
      kid: record.kid,
      verifyingKey: await importJWK(publicJwk, algorithm),
      signingKey,
      publicJwk: { ...publicJwk, kid: record.kid, alg: algorithm, use: 'sig' },
    };
  };

  const apply = async (rows: SigningKeyRecord[]) => {
    const states = signingKeyStates(rows, clock(), retentionMs);
    const next = new Map<string, LoadedKey>();
    for (const row of rows) {
      const status = states.get(row.kid);
      if (status === undefined || !isPublished(status.state)) continue;
      next.set(row.kid, imported.get(row.kid) ?? (await importKey(row)));
    }
    // A key that verified and no longer does (revoked, or expired and purged): cached verifications
    // of its tokens must go, so the revision changes.
    if ([...imported.keys()].some((kid) => !next.has(kid))) revision++;
    imported = next;
    records = rows.filter((row) => next.has(row.kid) || states.get(row.kid)?.state === 'revoked');
    jwks = { keys: [...next.values()].flatMap((key) => (key.publicJwk ? [key.publicJwk] : [])) };
  };

  await apply(await store.listKeys(algorithm));
  const startKid = currentKid(records, clock());
  if (startKid === undefined || imported.get(startKid)?.signingKey === undefined) {
    throw new SigningKeyError(
      startKid === undefined ? 'NO_SIGNING_KEY' : 'SIGNING_KEY_SEALED',
      startKid === undefined
        ? `No ${algorithm} signing key can sign (all revoked?): run gatehouse rotate-keys`
        : `Signing key ${startKid} cannot be decrypted: SECRET_KEY changed. Set SECRET_KEY_PREVIOUS to the ` +
            'old secret (start-up then re-encrypts the keys under the new one)',
    );
  }

  // One reload at a time: a slow database must not pile reads up behind the timer.
  let reloading: Promise<void> | undefined;
  const reload = () => {
    reloading ??= (async () => {
      try {
        await apply(await store.listKeys(algorithm));
      } finally {
        reloading = undefined;
      }
    })();
    return reloading;
  };
  // Bounded by the database's statement timeout; a failure keeps the last good set and warns.
  const timer = (options.scheduler ?? systemScheduler).setInterval(
    () => {
      reload().catch((error: unknown) =>
        warn('signing key reload failed; keeping the last key set', {
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    },
    options.reloadIntervalMs ?? KEY_RELOAD_INTERVAL_SECONDS * 1000,
  );

  return {
    signer(now) {
      const kid = currentKid(records, now);
      const key = kid === undefined ? undefined : imported.get(kid);
      if (key?.signingKey === undefined) {
        throw new SigningKeyError(
          kid === undefined ? 'NO_SIGNING_KEY' : 'SIGNING_KEY_SEALED',
          kid === undefined
            ? `No ${algorithm} signing key is active`
            : `Signing key ${kid} cannot be decrypted with SECRET_KEY or SECRET_KEY_PREVIOUS`,
        );
      }
      return { kid: key.kid, signingKey: key.signingKey };
    },
    verifier: (kid) => imported.get(kid),
    jwks: () => jwks,
    revision: () => revision,
    reload,
    close: () => timer.cancel(),
  };
}

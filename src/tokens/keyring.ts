import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  type KeyObject,
  SignJWT,
} from 'jose';
import type { GatehouseConfig, JwtAlgorithm } from '../config/config.js';

type Key = CryptoKey | KeyObject | Uint8Array;

/** A key pair (or secret) identified by `kid`. */
interface KeyEntry {
  kid: string;
  signingKey: Key;
  verifyingKey: Key;
  publicJwk: JWK | undefined;
}

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
}

/** Signs and verifies Gatehouse JWTs with exactly one algorithm. */
export interface Keyring {
  /** The one accepted algorithm. */
  readonly algorithm: JwtAlgorithm;
  /** Issuer put in and required of every token. */
  readonly issuer: string;
  /** Signs `payload` with the newest key, adding `iss`, `kid` and `typ`. */
  sign(payload: JWTPayload, typ: string): Promise<string>;
  /** Verifies signature, algorithm, `typ`, `iss`, `aud`, `exp`/`nbf` and required claims; throws on failure. */
  verify(token: string, expect: VerifyExpectations): Promise<JWTPayload>;
  /** The public keys as a JWK Set (empty for HS256: a shared secret is never published). */
  jwks(): { keys: JWK[] };
}

/** The on-disk key file for asymmetric algorithms. */
interface KeyFile {
  keys: { kid: string; alg: JwtAlgorithm; privateJwk: JWK; createdAt: number; retiredAt?: number }[];
}

/**
 * How far in the future a token's `iat` may lie and still verify: instances' clocks differ a
 * little (NTP keeps them within well under a second; this allows for a poorly synced host), but a
 * token "issued" later than that was minted by a wrong clock or forged with a stolen key to
 * outlive it, so it is refused (as PyJWT's `ImmatureSignatureError` does).
 */
export const IAT_CLOCK_SKEW_SECONDS = 60;

/** File name of the asymmetric key set inside `DATA_DIR`. */
export const KEY_FILE = 'signing-keys.json';

/**
 * Creates the keyring. HS256 uses the secret (imported once: re-importing per call costs more
 * than the HMAC, DESIGN.md §6). EdDSA/ES256 keys come from `DATA_DIR/signing-keys.json`,
 * generated on first start; the newest signs, all listed ones verify (rotation).
 */
export async function createKeyring(options: {
  algorithm: JwtAlgorithm;
  secret: Uint8Array;
  issuer: string;
  dataDir: string;
}): Promise<Keyring> {
  const { algorithm, issuer } = options;
  let entries: KeyEntry[];
  if (algorithm === 'HS256') {
    const kid = createHash('sha256').update(options.secret).digest('base64url').slice(0, 16);
    const key = await importJWK(
      { kty: 'oct', k: Buffer.from(options.secret).toString('base64url') },
      'HS256',
    );
    entries = [{ kid, signingKey: key, verifyingKey: key, publicJwk: undefined }];
  } else {
    const file = await ensureKeyFile(options.dataDir, algorithm);
    entries = await importKeyFile(file, algorithm);
  }
  const byKid = new Map(entries.map((entry) => [entry.kid, entry]));
  // Newest key signs: ensureKeyFile/rotateSigningKeys append, so it is last.
  const current = entries[entries.length - 1];
  if (current === undefined) throw new Error('No signing key available');

  return {
    algorithm,
    issuer,
    sign(payload, typ) {
      return new SignJWT(payload)
        .setProtectedHeader({ alg: algorithm, typ, kid: current.kid })
        .setIssuer(issuer)
        .sign(current.signingKey);
    },
    async verify(token, expect) {
      const { payload } = await jwtVerify(
        token,
        (header: JWTHeaderParameters) => {
          // Never trust a key named by the token itself (`jku`, `jwk`, `x5u`); only our own kids.
          const entry = header.kid === undefined ? undefined : byKid.get(header.kid);
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
          clockTolerance: 0,
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
    jwks() {
      return { keys: entries.flatMap((entry) => (entry.publicJwk ? [entry.publicJwk] : [])) };
    },
  };
}

async function newKey(algorithm: Exclude<JwtAlgorithm, 'HS256'>) {
  const { privateKey, publicKey } = await generateKeyPair(algorithm, {
    extractable: true,
    crv: algorithm === 'EdDSA' ? 'Ed25519' : undefined,
    // RFC 7518 §3.3 asks 2048 bits at least; NIST SP 800-57 rates 2048 fine until 2030.
    modulusLength: algorithm === 'RS256' ? 2048 : undefined,
  });
  const privateJwk = await exportJWK(privateKey);
  // RFC 7638 thumbprint of the public key: covers RSA's `n`/`e` as well as the curves' `x`/`y`.
  const kid = (await calculateJwkThumbprint(await exportJWK(publicKey))).slice(0, 16);
  return { kid, alg: algorithm, privateJwk, createdAt: Date.now() };
}

function readKeyFile(path: string): KeyFile {
  return JSON.parse(readFileSync(path, 'utf8')) as KeyFile;
}

function writeKeyFile(path: string, file: KeyFile): void {
  // Write-then-rename so a crash never leaves a half-written key file.
  writeFileSync(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

async function ensureKeyFile(dataDir: string, algorithm: Exclude<JwtAlgorithm, 'HS256'>): Promise<KeyFile> {
  const path = join(dataDir, KEY_FILE);
  const file: KeyFile = existsSync(path) ? readKeyFile(path) : { keys: [] };
  if (!file.keys.some((key) => key.alg === algorithm)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    file.keys.push(await newKey(algorithm));
    writeKeyFile(path, file);
  }
  return file;
}

async function importKeyFile(file: KeyFile, algorithm: JwtAlgorithm): Promise<KeyEntry[]> {
  const entries: KeyEntry[] = [];
  for (const key of file.keys) {
    if (key.alg !== algorithm) continue;
    // RSA private JWKs also carry the CRT members (RFC 7518 §6.3.2); none may be published.
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...publicJwk } = key.privateJwk;
    entries.push({
      kid: key.kid,
      signingKey: await importJWK(key.privateJwk, algorithm),
      verifyingKey: await importJWK(publicJwk, algorithm),
      publicJwk: { ...publicJwk, kid: key.kid, alg: algorithm, use: 'sig' },
    });
  }
  return entries;
}

/** Extra time a retired key is kept beyond the longest token lifetime (clock skew, slow restarts). */
export const KEY_RETENTION_MARGIN_SECONDS = 3600;

/**
 * How long `rotate-keys` keeps a retired key: every token the keyring signs must still verify
 * until it expires, and the same keyring signs access tokens *and* Dicery room tokens (up to
 * 12 h), so the longer of the two lifetimes counts, plus {@link KEY_RETENTION_MARGIN_SECONDS}.
 */
export function retiredKeyRetentionSeconds(
  config: Pick<GatehouseConfig, 'accessTokenTtl' | 'roomTokenTtl'>,
): number {
  return Math.max(config.accessTokenTtl, config.roomTokenTtl) + KEY_RETENTION_MARGIN_SECONDS;
}

/**
 * Adds a new signing key for `algorithm` to `DATA_DIR/signing-keys.json` (`gatehouse rotate-keys`).
 * Older keys stay so tokens they signed verify until expiry; keys retired longer ago than
 * `retainSeconds` (longer than any token lives: use {@link retiredKeyRetentionSeconds}) are dropped. Running servers pick the new key
 * up on restart.
 */
export async function rotateSigningKeys(
  dataDir: string,
  algorithm: Exclude<JwtAlgorithm, 'HS256'>,
  retainSeconds: number,
  now = Date.now(),
): Promise<{ kid: string; removed: string[] }> {
  const path = join(dataDir, KEY_FILE);
  const file: KeyFile = existsSync(path) ? readKeyFile(path) : { keys: [] };
  for (const key of file.keys) key.retiredAt ??= now;
  const removed = file.keys
    .filter((key) => key.retiredAt !== undefined && key.retiredAt < now - retainSeconds * 1000)
    .map((key) => key.kid);
  file.keys = file.keys.filter((key) => !removed.includes(key.kid));
  const fresh = await newKey(algorithm);
  file.keys.push(fresh);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeKeyFile(path, file);
  return { kid: fresh.kid, removed };
}

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';

/**
 * Writes `DATA_DIR/signing-keys.json` exactly as Gatehouse did before keys moved to the database
 * (the `ensureKeyFile` / `rotateSigningKeys` code of `src/tokens/keyring.ts` up to issue 11):
 * `{ keys: [{ kid, alg, privateJwk, createdAt, retiredAt? }] }`, oldest first, the last one signing.
 * Returns a signer that signs as that code's keyring did, with the key of the given index.
 */
export async function writeLegacyKeyFile(
  dataDir: string,
  algorithm: 'EdDSA' | 'ES256' | 'RS256',
  createdAt: number[],
) {
  const keys: { kid: string; alg: string; privateJwk: JWK; createdAt: number; retiredAt?: number }[] = [];
  for (const [index, created] of createdAt.entries()) {
    const { privateKey, publicKey } = await generateKeyPair(algorithm, {
      extractable: true,
      crv: algorithm === 'EdDSA' ? 'Ed25519' : undefined,
      modulusLength: algorithm === 'RS256' ? 2048 : undefined,
    });
    const kid = (await calculateJwkThumbprint(await exportJWK(publicKey))).slice(0, 16);
    const next = createdAt[index + 1];
    keys.push({
      kid,
      alg: algorithm,
      privateJwk: await exportJWK(privateKey),
      createdAt: created,
      ...(next === undefined ? {} : { retiredAt: next }),
    });
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'signing-keys.json'), `${JSON.stringify({ keys }, null, 2)}\n`, {
    mode: 0o600,
  });
  return {
    kids: keys.map((key) => key.kid),
    /** Signs like the old keyring: `alg`, `typ`, `kid` header, `iss` added. */
    async sign(index: number, payload: Record<string, unknown>, typ: string, issuer: string) {
      const key = keys[index];
      if (key === undefined) throw new Error(`no legacy key ${index}`);
      return new SignJWT(payload)
        .setProtectedHeader({ alg: algorithm, typ, kid: key.kid })
        .setIssuer(issuer)
        .sign(await importJWK(key.privateJwk, algorithm));
    },
  };
}

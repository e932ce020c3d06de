import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { MIN_SECRET_BYTES } from './config.js';

/** Outcome of {@link bootstrapSecret}: the key and whether it was created just now. */
export interface BootstrappedSecret {
  /** The secret bytes. */
  key: Uint8Array;
  /** Where it is kept. */
  path: string;
  /** True when this call generated it. */
  created: boolean;
}

/**
 * Returns the signing secret kept in `dataDir/secret.key`, generating 256 random bits (mode 0600)
 * on first use, so a fresh install is safe with no configuration and tokens survive restarts.
 */
export function bootstrapSecret(dataDir: string): BootstrappedSecret {
  const path = join(dataDir, 'secret.key');
  if (existsSync(path)) {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
    if (key.byteLength < MIN_SECRET_BYTES) {
      throw new ConfigError([
        `${path} holds fewer than ${MIN_SECRET_BYTES} bytes; delete it to generate a new one`,
      ]);
    }
    // Someone may have copied the file with a loose mode; a secret readable by others is not secret.
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return { key: new Uint8Array(key), path, created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(MIN_SECRET_BYTES);
  writeFileSync(path, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  return { key: new Uint8Array(key), path, created: true };
}

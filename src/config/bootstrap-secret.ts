import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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
 *
 * The file appears whole or not at all: it is written and flushed under a temporary name, then
 * linked into place (`link` fails when the name exists, unlike `rename`). Created in place, it was
 * empty for a moment: a second process starting at once (`gatehouse migrate` beside `serve`)
 * read it empty and refused to start, and a full disk or a crash left it empty for good, so every
 * later start was refused until someone deleted it (`test/config/bootstrap-secret.test.ts`).
 */
export function bootstrapSecret(dataDir: string): BootstrappedSecret {
  const path = join(dataDir, 'secret.key');
  if (existsSync(path)) return { key: readSecret(path), path, created: false };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(MIN_SECRET_BYTES);
  const temporary = join(dataDir, `.secret.key.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    const file = openSync(temporary, 'wx', 0o600);
    try {
      writeFileSync(file, `${key.toString('base64url')}\n`);
      fsyncSync(file);
    } finally {
      closeSync(file);
    }
    try {
      linkSync(temporary, path);
    } catch (error) {
      // Another process created it first: use theirs, so both sign with the same secret.
      if (error instanceof Error && 'code' in error && error.code === 'EEXIST') {
        return { key: readSecret(path), path, created: false };
      }
      throw error;
    }
  } finally {
    rmSync(temporary, { force: true });
  }
  return { key: new Uint8Array(key), path, created: true };
}

function readSecret(path: string): Uint8Array {
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
  if (key.byteLength < MIN_SECRET_BYTES) {
    throw new ConfigError([
      `${path} holds fewer than ${MIN_SECRET_BYTES} bytes; delete it to generate a new one`,
    ]);
  }
  // Someone may have copied the file with a loose mode; a secret readable by others is not secret.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return new Uint8Array(key);
}

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KEY_FILE } from '../tokens/keyring.js';

/** A file or folder that others than its owner may read, write or enter. */
export interface LooseFileMode {
  /** The path as configured. */
  path: string;
  /** Its permission bits, e.g. 0o644. */
  mode: number;
  /** The mode it should have: 0o700 for folders, 0o600 for files. */
  expected: number;
}

/**
 * Finds Gatehouse's files whose mode lets group or others in: `DATA_DIR`, `secret.key`,
 * `signing-keys.json`, and the SQLite database with its `-wal` and `-shm` files (password hashes,
 * session data, signing keys: OWASP ASVS 5.0 V13.3, secrets readable only by the service).
 * Gatehouse creates them 0700/0600; an existing looser one (copied, restored from a backup, made
 * with another tool) is reported rather than changed, since the operator may share it on purpose.
 * Missing files are skipped; on Windows, where modes mean nothing, nothing is reported.
 */
export function findLooseFileModes(dataDir: string, databaseUrl: string): LooseFileMode[] {
  if (process.platform === 'win32') return [];
  const candidates: { path: string; expected: number }[] = [
    { path: dataDir, expected: 0o700 },
    { path: join(dataDir, 'secret.key'), expected: 0o600 },
    { path: join(dataDir, KEY_FILE), expected: 0o600 },
  ];
  if (databaseUrl.startsWith('sqlite:') && databaseUrl !== 'sqlite::memory:') {
    const database = databaseUrl.slice('sqlite:'.length);
    for (const suffix of ['', '-wal', '-shm'])
      candidates.push({ path: `${database}${suffix}`, expected: 0o600 });
  }
  const loose: LooseFileMode[] = [];
  for (const { path, expected } of candidates) {
    if (!existsSync(path)) continue;
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) loose.push({ path, mode, expected });
  }
  return loose;
}

/** One start-up warning for a {@link LooseFileMode}, naming the file and the fix. */
export function describeLooseFileMode({ path, mode, expected }: LooseFileMode): string {
  const octal = (value: number) => `0${value.toString(8)}`;
  return `${path} has mode ${octal(mode)}, readable by others than the server's user; run: chmod ${octal(expected)} ${path}`;
}

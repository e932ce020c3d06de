import { randomBytes } from 'node:crypto';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapSecret } from '../../src/config/bootstrap-secret.js';
import { describeLooseFileMode, findLooseFileModes } from '../../src/config/file-modes.js';
import { resolveConfig } from '../../src/config/resolve-config.js';
import { openDatabase } from '../../src/storage/open-database.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

const modeOf = (path: string) => statSync(path).mode & 0o777;

describe.skipIf(process.platform === 'win32')('file modes of the data folder (issue 8)', () => {
  let root: string;
  let previousUmask: number;

  beforeEach(() => {
    root = tempDir('gatehouse-modes-');
    // The permissive umask a container or a careless service unit may have: modes must not rely on it.
    previousUmask = process.umask(0);
  });
  afterEach(() => {
    process.umask(previousUmask);
  });

  it('creates the folder 0700 and the database, its -wal and -shm and the secret 0600', async () => {
    const dataDir = join(root, 'data');
    const path = join(dataDir, 'gatehouse.db');
    const database = openDatabase(`sqlite:${path}`);
    try {
      // A write in WAL mode creates the -wal and -shm files.
      await database.db.schema.createTable('t').addColumn('x', 'integer').execute();
      expect(modeOf(dataDir)).toBe(0o700);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(modeOf(file), file).toBe(0o600);
    } finally {
      await database.close();
    }
    const secret = bootstrapSecret(dataDir);
    expect(modeOf(secret.path)).toBe(0o600);
    // Signing keys live in the database now (issue 11): no key file is written to DATA_DIR.
    expect(findLooseFileModes(dataDir, `sqlite:${path}`)).toEqual([]);
  });

  it('a fresh data folder made by the secret bootstrap is 0700 too', () => {
    const dataDir = join(root, 'fresh');
    bootstrapSecret(dataDir);
    expect(modeOf(dataDir)).toBe(0o700);
  });

  it('warns at start-up, naming each existing file that is looser, with the fix', async () => {
    const dataDir = join(root, 'data');
    const path = join(dataDir, 'gatehouse.db');
    const database = openDatabase(`sqlite:${path}`);
    await database.close();
    chmodSync(dataDir, 0o755);
    chmodSync(path, 0o644);
    const env = { DATA_DIR: dataDir, SECRET_KEY: randomBytes(32).toString('base64url') };
    const warnings = resolveConfig(env)
      .notices.filter((notice) => notice.level === 'warn')
      .map((notice) => notice.message);
    expect(warnings).toEqual([
      `${dataDir} has mode 0755, readable by others than the server's user; run: chmod 0700 ${dataDir}`,
      `${path} has mode 0644, readable by others than the server's user; run: chmod 0600 ${path}`,
    ]);
    expect(describeLooseFileMode({ path: 'x', mode: 0o640, expected: 0o600 })).toContain('0640');
  });
});

import { statSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backupDatabase } from '../../src/storage/backup-database.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

describe('backupDatabase', () => {
  it.skipIf(process.platform === 'win32')(
    'creates the copy 0600 whatever the umask: it holds password hashes, sessions and signing keys',
    async () => {
      const dir = tempDir('gh-backup-mode-');
      const live = join(dir, 'live.db');
      const db = new SQLite(live);
      db.exec('CREATE TABLE t (secret TEXT); INSERT INTO t VALUES (1)');
      db.close();
      const previous = process.umask(0o022);
      try {
        const copy = join(dir, 'copy.db');
        await backupDatabase(`sqlite:${live}`, copy);
        expect(statSync(copy).mode & 0o777).toBe(0o600);
        const restored = new SQLite(copy, { readonly: true });
        expect(restored.prepare('SELECT secret FROM t').pluck().get()).toBe('1');
        restored.close();
      } finally {
        process.umask(previous);
      }
    },
  );
});

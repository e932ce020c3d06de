import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import SQLite from 'better-sqlite3';

/** What {@link backupDatabase} copied. */
export interface BackupReport {
  /** Pages of the database file copied. */
  pages: number;
}

/**
 * Copies the SQLite database at `url` (`sqlite:<path>`) to `destination`, consistently, while
 * servers keep using it: SQLite's online backup API (https://sqlite.org/backup.html) reads one
 * snapshot, and copying every page in a single step means a concurrent write can neither tear the
 * copy nor restart it. Refuses an existing `destination` (never overwrites a backup) and any other
 * engine (PostgreSQL has `pg_dump`; see the README). Throws an `Error` that says which.
 */
export async function backupDatabase(url: string, destination: string): Promise<BackupReport> {
  if (!url.startsWith('sqlite:')) {
    throw new Error('backup copies SQLite databases only; back up PostgreSQL with pg_dump (see README)');
  }
  const path = url.slice('sqlite:'.length);
  if (path === ':memory:') throw new Error('an in-memory database has nothing to back up');
  if (!existsSync(path)) throw new Error(`no database at ${path}`);
  // Read-only: the backup never writes the live database. busy_timeout rides out a checkpoint.
  const source = new SQLite(path, { readonly: true, fileMustExist: true });
  // Created here, exclusively and 0600, before SQLite writes into it: the copy holds password
  // hashes, sessions and signing keys (ASVS 5.0 V13.3), and SQLite would create it with the
  // umask's mode (usually 0644, readable by every local user). `wx` also refuses an existing file
  // or symlink atomically, so a backup is never written over another one.
  try {
    closeSync(openSync(destination, 'wx', 0o600));
  } catch (error) {
    source.close();
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(`${destination} exists; choose a new file name`);
    throw error;
  }
  try {
    source.pragma('busy_timeout = 5000');
    const { totalPages } = await source.backup(destination, { progress: () => 0x7fffffff });
    return { pages: totalPages };
  } catch (error) {
    // Not a backup: leave no file that could be mistaken for one.
    rmSync(destination, { force: true });
    throw error;
  } finally {
    source.close();
  }
}

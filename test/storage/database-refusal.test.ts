import { describe, expect, it } from 'vitest';
import { databaseRefusal } from '../../src/storage/database-refusal.js';

/** An error as node-postgres raises it: the SQLSTATE in `code`. */
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('databaseRefusal', () => {
  it('calls a refusal what every retry would meet again, through causes', () => {
    expect(databaseRefusal(pgError('28P01', 'password authentication failed for user "app"'))).toBe(
      'refused',
    );
    expect(databaseRefusal(pgError('3D000', 'database "gatehose" does not exist'))).toBe('refused');
    expect(
      databaseRefusal(
        new Error('Database migration failed', {
          cause: pgError('42501', 'permission denied for schema public'),
        }),
      ),
    ).toBe('privilege');
    expect(databaseRefusal(pgError('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'))).toBe('tls');
  });

  it('waits out what ends: an outage, a full server, CONNECT revoked for maintenance (review 2026-12-06 D1)', () => {
    expect(databaseRefusal(pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'))).toBeUndefined();
    expect(databaseRefusal(pgError('53300', 'sorry, too many clients already'))).toBeUndefined();
    expect(databaseRefusal(pgError('57P03', 'the database system is starting up'))).toBeUndefined();
    // How an administrator drains a database before a restore or pg_upgrade.
    expect(databaseRefusal(pgError('42501', 'permission denied for database "gatehouse"'))).toBeUndefined();
  });
});

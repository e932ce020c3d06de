import type { Migration } from 'kysely';
import * as accounts from './001-accounts.js';
import * as clothes from './002-clothes.js';
import * as audit from './003-audit.js';
import * as rooms from './005-rooms.js';
import * as loginFailures from './008-login-failures.js';

/**
 * Every migration, in order. Names sort lexically, so keep the numeric prefix. Listed statically
 * (not read from disk) so the bundle and the tests see exactly the same set.
 */
export const migrations: Record<string, Migration> = {
  '001-accounts': accounts,
  '002-clothes': clothes,
  '003-audit': audit,
  '005-rooms': rooms,
  '008-login-failures': loginFailures,
};

import type { Migration } from 'kysely';
import * as clothes from './002-clothes.js';

/**
 * The catalogue's migrations, run by the core after its own with the catalogue's history table
 * (`migrations: { clothes: clothesMigrations }`). `002-clothes` keeps the name it had as a core
 * migration, so databases migrated before the move adopt its history row (see
 * `RETIRED_CORE_MIGRATIONS`) instead of running it again.
 */
export const clothesMigrations: Record<string, Migration> = {
  '002-clothes': clothes,
};

import type { Kysely } from 'kysely';

/**
 * An app's view of the database: a Kysely handle typed with the app's own tables only. Kysely's
 * table types are a compile-time view over one executor, so this narrows what the app can name
 * without a second pool or connection; keeping the core's tables out of that view is what keeps
 * an app from writing them (and so bypassing the caches and broadcasts the core keeps in step)
 * by accident. The only cast of its kind: the runtime object is the same handle.
 */
export function appTables<Tables extends Record<keyof Tables, object>, DB>(db: Kysely<DB>): Kysely<Tables> {
  return db as unknown as Kysely<Tables>;
}

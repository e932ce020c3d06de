import { type Compilable, CompiledQuery, type Kysely, type QueryResult } from 'kysely';
import { runDirectStatement } from './sqlite-direct-statements.js';

/** A statement of fixed shape, run with fresh values: see {@link precompiledQuery}. */
export type PrecompiledQuery<DB, Values extends object, Row> = (
  db: Kysely<DB>,
  values: Values,
) => Promise<QueryResult<Row>>;

/**
 * The markers `build` gets, one per value. Typed `never` so that a marker fits wherever its
 * column's value goes (a number column included); at run time each is a unique string.
 */
export type PrecompiledMarkers<Values extends object> = { readonly [K in keyof Values]-?: never };

/**
 * A statement whose SQL text never changes (only its values do), built and compiled by Kysely
 * once per dialect and then run with fresh parameters: no query builder and no compiler on each
 * call. Kysely otherwise rebuilds and recompiles the same SQL on every execution; on a login
 * (three inserts and two look-ups) that was ≈ 15 % of the event loop's own work (issue 10).
 *
 * `names` lists every key of `Values`. `build` receives one marker per name and must use each
 * exactly once, as a value (never as an identifier or a SQL fragment; `values(markers)` inserts
 * exactly the listed columns); the compiled parameters are mapped back to the markers, so
 * whatever order Kysely emits them in, each call's values land in their places. A `build` that
 * breaks the rule (a marker missing, repeated, or not a parameter) throws on first use.
 *
 * On SQLite the statement then skips Kysely's executor when it can (`runDirectStatement`).
 *
 * The compiled text is cached per dialect adapter, which a transaction shares with its database,
 * so stores built over a transaction reuse it: at most one entry per database, weakly held.
 */
export function precompiledQuery<DB, Values extends object, Row = unknown>(
  names: readonly (keyof Values & string)[],
  build: (db: Kysely<DB>, markers: PrecompiledMarkers<Values>) => Compilable<Row>,
): PrecompiledQuery<DB, Values, Row> {
  type Name = keyof Values & string;
  const compiled = new WeakMap<object, { sql: string; order: Name[] }>();
  const prepare = (db: Kysely<DB>) => {
    const adapter = db.getExecutor().adapter;
    let entry = compiled.get(adapter);
    if (entry === undefined) {
      // A NUL never appears in our SQL or in a value we bind, so a marker is unambiguous.
      const byMarker = new Map<unknown, Name>(names.map((name) => [`\u0000precompiled:${name}`, name]));
      const markers = Object.fromEntries([...byMarker].map(([marker, name]) => [name, marker]));
      const query = build(db, markers as PrecompiledMarkers<Values>).compile();
      const order = query.parameters.map((parameter) => byMarker.get(parameter));
      if (order.length !== names.length || new Set(order).size !== names.length || order.includes(undefined))
        throw new Error(`precompiledQuery: each value must be one parameter of: ${query.sql}`);
      entry = { sql: query.sql, order: order as Name[] };
      compiled.set(adapter, entry);
    }
    return entry;
  };
  return async (db, values) => {
    const { sql, order } = prepare(db);
    const parameters = order.map((name) => values[name]);
    // On SQLite, straight to the statement when the connection allows it (sqlite-direct-statements.ts).
    return (
      runDirectStatement<Row>(db, sql, parameters) ??
      db.executeQuery<Row>(CompiledQuery.raw(sql, parameters) as CompiledQuery<Row>)
    );
  };
}

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';

/** The arguments a {@link LookupFunction} hands its callback. */
type LookupResult = [error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number];
type LookupCallback = Parameters<LookupFunction>[2];

/**
 * Wraps `lookup` (Node's `dns.lookup` by default) so that concurrent look-ups of the same name
 * with the same options share one call: while a look-up is outstanding, a new caller waits for
 * its answer instead of starting another.
 *
 * Why (fault review 2026-12, third part): `dns.lookup` is `getaddrinfo` on libuv's thread pool,
 * which lets at most half its threads (2 of the default 4) run look-ups at once and queues the
 * rest. A resolver that never answers holds each look-up for its whole timeout (glibc: 5 s × 2
 * tries by default, up to 30 s × 5 in resolv.conf), while the clients keep retrying: ioredis
 * reconnects every few seconds on each of its two connections and node-postgres starts one
 * connect per pooled connection, each abandoning its look-up at its connect timeout but not the
 * thread running it. With a stalled Redis host name the queue grew without bound (eight
 * look-ups outstanding after 20 s) and a database host name that `/etc/hosts` answers at once
 * waited behind it: the pool's connect timed out and logins answered 503 with a healthy database.
 * Shared, the look-ups outstanding are at most one per distinct name (the database's, Redis's),
 * and each new attempt gets the answer of the one already running.
 *
 * Nothing is cached beyond the call: the next connect after an answer asks again, so a changed
 * record (a failover that moves the name) is seen at once. Bounded: one entry per name and
 * options with a look-up outstanding; its waiters are connect attempts made meanwhile.
 */
export function shareLookups(lookup: LookupFunction = dnsLookup): LookupFunction {
  const outstanding = new Map<string, LookupCallback[]>();
  return (hostname, options, callback) => {
    // Every option that changes the answer is part of the key (`all` changes its shape).
    const key = JSON.stringify([
      hostname,
      options.family ?? 0,
      options.hints ?? 0,
      options.all ?? false,
      options.order ?? options.verbatim ?? null,
    ]);
    const waiting = outstanding.get(key);
    if (waiting !== undefined) {
      waiting.push(callback);
      return;
    }
    const callbacks = [callback];
    outstanding.set(key, callbacks);
    lookup(hostname, options, (...result: LookupResult) => {
      outstanding.delete(key);
      for (const waiter of callbacks) waiter(...result);
    });
  };
}

/**
 * The process's shared look-up for the connections Gatehouse opens itself (PostgreSQL, Redis):
 * one table, so several instances of Gatehouse in one process share it too.
 */
export const sharedLookup: LookupFunction = shareLookups();

import type { EventBus } from '../events/event-bus.js';
import { type ScheduledTimer, type Scheduler, systemScheduler } from '../lib/scheduler.js';
import type { RevokedSession, SessionStore } from '../storage/session-store.js';

/**
 * The set of revoked session ids that still have live credentials, held in memory so a JWT
 * request costs a Map lookup instead of a database read. It starts from the database (so it is
 * right after a restart), is kept current by the event bus (so it is right on every instance at
 * once), and re-reads recent revocations from the database every `reloadIntervalMs` (so a lost
 * broadcast, or one never sent because Redis was down, reaches this instance within that bound).
 *
 * Bounded state: an entry is kept only until the last credential of its session that the list
 * guards has expired — `revoked_at + retentionMs` (capped at the session's absolute expiry) —
 * not for the session's whole life, so memory and reload time depend on the revocations of the
 * last few minutes, not on the number of historic logouts.
 */
export interface RevocationList {
  /** True when the session was revoked (recently enough that one of its credentials may live). */
  isRevoked(sessionId: string): boolean;
  /**
   * True when a token issued at `issuedAtSeconds` (its `iat`) was issued before the revocation
   * cut-off that `gatehouse revoke-all` sets: refused whatever key signed it and whichever
   * session it names, known to the database or not (a restored one does not know the sessions
   * opened after its backup).
   */
  isCutOff(issuedAtSeconds: number): boolean;
  /** The revocation cut-off in epoch ms (0: none; infinite after {@link RevocationList.refuseAll}). */
  readonly cutoff: number;
  /**
   * How many times this process saw the cut-off rise: a row read while it had one value was read
   * before a cut-off learned since, whatever the clocks say (revoke-all's cut-off comes from the
   * clock of the machine it ran on, which may be behind this one's).
   */
  readonly cutoffGeneration: number;
  /**
   * Refuses every token checked against the cut-off from now on, whatever its `iat`: the cut-off
   * becomes infinite, in this process, for good. For an instance whose `SECRET_KEY` `gatehouse
   * revoke-all` replaced while it ran: it can no longer tell the tokens it signed from ones forged
   * with the old (leaked) secret.
   */
  refuseAll(): void;
  /** Adds revoked sessions (from this instance or the bus). */
  add(sessions: readonly RevokedSession[]): void;
  /**
   * Re-reads revocations since the last reload's start minus the overlap, now. Never throws: a
   * failure is reported to `onReloadError`, and the next reload reads from the same watermark.
   */
  reload(): Promise<void>;
  /**
   * A reload that starts after this call (one already under way may have read before what the
   * caller knows it missed): after a bus gap. True when it read; false when it failed (reported).
   */
  reloadFresh(): Promise<boolean>;
  /** Number of entries (for metrics and tests). */
  readonly size: number;
  /** Stops reloading and unsubscribes from the bus. */
  close(): void;
}

/** Options of {@link createRevocationList}. */
export interface RevocationListOptions {
  store: Pick<SessionStore, 'listRevokedSince' | 'readRevocationCutoff'>;
  bus: EventBus;
  /** The clock in epoch ms. */
  clock: () => number;
  /**
   * How long after its revocation an entry must stay: the longest any credential checked
   * against this list can outlive the revocation (see {@link revocationRetentionMs}).
   */
  retentionMs: number;
  /** Time between database reloads. */
  reloadIntervalMs: number;
  /**
   * How far back before the previous reload's start each reload reads: at least the statement
   * timeout plus the clock skew between instances, so a row that committed late, carrying a
   * `revoked_at` from before the previous reload, is still picked up. Also added to every
   * entry's retention, as the allowance for clock skew between the revoking instance and this one.
   */
  overlapMs: number;
  /** Told about a failed periodic reload (which is retried at the next interval). */
  onReloadError?: (error: unknown) => void;
  /**
   * Told when a reload or a broadcast raises the cut-off after the first load (`gatehouse
   * revoke-all` ran while this instance did), with the new cut-off in epoch ms.
   */
  onCutoffRaised?: (notBefore: number) => void;
  /** Where the reloads are scheduled; tests pass a `TestClock`. @default Node's timers, unref'd */
  scheduler?: Scheduler;
}

/**
 * The retention every revocation needs, in ms: the longest of
 * - the access-token lifetime (a JWT minted just before the revocation lives that long),
 * - the cookie-session re-check period (a cached cookie session is only re-read from the
 *   database that often; until then this list is what stops it), and
 * - two of the longest interval at which an app re-checks its long-lived responses against this
 *   list (`AppSettings.revocationCheckInterval`: Dicery ends open host streams at a heartbeat that
 *   finds their session here; two, so one check skipped while the previous one still ran is covered).
 * Opaque database-strategy access tokens are checked against the database on every request and
 * need no entry at all.
 */
export function revocationRetentionMs(options: {
  accessTokenTtlMs: number;
  cookieRecheckMs: number;
  /** The longest `revocationCheckInterval` a registered app declared; 0 when none did. */
  appRevocationCheckMs: number;
}): number {
  return Math.max(options.accessTokenTtlMs, options.cookieRecheckMs, 2 * options.appRevocationCheckMs);
}

/**
 * Loads the revocation list from the store (throws if that first load fails: a fresh process must
 * never accept a token it cannot check), subscribes it to the bus and starts the periodic reload.
 */
export async function createRevocationList(options: RevocationListOptions): Promise<RevocationList> {
  const { store, bus, clock, retentionMs, reloadIntervalMs, overlapMs } = options;
  const scheduler = options.scheduler ?? systemScheduler;
  // Session id → when the entry may go (epoch ms).
  const revoked = new Map<string, number>();
  const keepFor = retentionMs + overlapMs;

  const keep = (id: string, keepUntil: number, now: number) => {
    if (keepUntil <= now) return;
    // Idempotent and never shortening: the same row read by two overlapping reloads, or by a
    // reload and a broadcast, leaves one entry with the later deadline.
    const known = revoked.get(id);
    if (known === undefined || known < keepUntil) revoked.set(id, keepUntil);
  };
  const sweep = (now: number) => {
    for (const [id, keepUntil] of revoked) if (keepUntil <= now) revoked.delete(id);
  };
  const add = (sessions: readonly RevokedSession[]) => {
    // A broadcast carries no revocation time: it is sent right after the commit, so receipt time
    // stands in for it (the overlap in keepFor absorbs the delay and the skew).
    const now = clock();
    for (const session of sessions) keep(session.id, Math.min(session.expiresAt, now + keepFor), now);
  };
  // Never lowered in a process: a bus message and a reload may arrive in either order, and a
  // database restored from before a revoke-all is cut off again by the revoke-all that follows it.
  let cutoff = 0;
  let cutoffGeneration = 0;
  // Set once the first load is done: the cut-off it reads is the one start-up already knew of.
  let loaded = false;
  const raiseCutoff = (notBefore: number) => {
    if (notBefore > cutoff) {
      cutoff = notBefore;
      cutoffGeneration += 1;
      if (loaded && Number.isFinite(notBefore)) options.onCutoffRaised?.(notBefore);
    }
  };
  let closed = false;
  // A broadcast only says that the cut-off was raised; its value is read from the database, where
  // only `gatehouse revoke-all` writes it. Taken from the message, anyone able to PUBLISH on Redis
  // could set a cut-off far ahead and refuse every token, in every running instance, until each
  // restarted. One read at a time: broadcasts during one cost one more read after it, however many.
  let cutoffRead: Promise<void> | undefined;
  let readCutoffAgain = false;
  const readCutoff = () => {
    if (cutoffRead !== undefined) {
      readCutoffAgain = true;
      return;
    }
    cutoffRead = store
      .readRevocationCutoff()
      .then(raiseCutoff, (error: unknown) => options.onReloadError?.(error))
      .finally(() => {
        cutoffRead = undefined;
        if (readCutoffAgain && !closed) {
          readCutoffAgain = false;
          readCutoff();
        }
      });
  };
  const loadSince = async (since: number) => {
    const now = clock();
    const [rows, notBefore] = await Promise.all([
      store.listRevokedSince(since, now),
      store.readRevocationCutoff(),
    ]);
    for (const row of rows) keep(row.id, Math.min(row.expiresAt, row.revokedAt + keepFor), now);
    raiseCutoff(notBefore);
    sweep(now);
    return now;
  };

  // First load: everything whose retention may still run. Later loads: since the previous load's
  // start minus the overlap (PostgreSQL makes a row visible at commit, not at `revoked_at`).
  // Subscribed first, so a broadcast sent while the first load runs is not lost.
  const unsubscribe = bus.subscribe((event) => {
    if (event.type === 'sessions_revoked') add(event.sessions);
    // Nothing to read for a cut-off this process already holds (a late or repeated broadcast).
    else if (event.type === 'revocation_cutoff_raised' && event.notBefore > cutoff) readCutoff();
  });
  let started: number;
  try {
    started = await loadSince(clock() - keepFor);
  } catch (error) {
    unsubscribe();
    throw error;
  }
  loaded = true;
  let watermark = started - overlapMs;
  let lastStart = started;

  let running: Promise<boolean> | undefined;
  const start = () => {
    // The wall clock stepped back since the last load (NTP, an operator, a restored VM): rows
    // revoked from now on carry times below the watermark, which the incremental read would skip
    // until the clock caught up (every instance's revocations lost but for the broadcast), and the
    // entries swept before the step guard tokens whose `exp` lies ahead again. Read everything
    // that may still matter from the new time, as the first load did, and restart the watermark.
    const steppedBack = clock() < lastStart;
    running ??= loadSince(steppedBack ? clock() - keepFor : watermark)
      .then(
        (start) => {
          watermark = steppedBack ? start - overlapMs : Math.max(watermark, start - overlapMs);
          lastStart = start;
          return true;
        },
        (error: unknown) => {
          options.onReloadError?.(error);
          return false;
        },
      )
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const reload = async () => {
    await start();
  };
  const reloadFresh = async () => {
    // One under way started before this call; the one after it (whoever starts it) did not.
    if (running !== undefined) await running;
    return start();
  };

  let timer: ScheduledTimer | undefined;
  // A chain of timeouts rather than an interval: a slow reload never overlaps the next one.
  const schedule = () => {
    timer = scheduler.setTimeout(() => {
      reload().finally(() => {
        if (!closed) schedule();
      });
    }, reloadIntervalMs);
  };
  schedule();

  return {
    isRevoked: (sessionId) => revoked.has(sessionId),
    // `iat` has whole seconds and the cut-off is a whole second (revoke-all rounds its time up):
    // every token issued before that time is refused, and so is one issued in the rest of its
    // second (its holder signs in again).
    isCutOff: (issuedAtSeconds) => issuedAtSeconds * 1000 < cutoff,
    get cutoff() {
      return cutoff;
    },
    get cutoffGeneration() {
      return cutoffGeneration;
    },
    refuseAll: () => raiseCutoff(Number.POSITIVE_INFINITY),
    add,
    reload,
    reloadFresh,
    get size() {
      return revoked.size;
    },
    close() {
      closed = true;
      timer?.cancel();
      unsubscribe();
    },
  };
}

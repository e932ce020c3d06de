import { createAuditLog } from '../audit/audit-log.js';
import { createAuditRetentionStore } from '../storage/audit-retention-store.js';
import { createAuditStore } from '../storage/audit-store.js';
import { readDatabaseClock } from '../storage/database-clock.js';
import { adoptSecretKey } from '../storage/secret-key-check.js';
import { createSessionStore, type RevokedSession } from '../storage/session-store.js';
import { IAT_CLOCK_SKEW_SECONDS } from '../tokens/keyring.js';
import {
  draftReplacementKeys,
  type RevokeAllSigningKeysOptions,
  type RevokeAllSigningKeysOutcome,
  revokeAllSigningKeysIn,
} from '../tokens/revoke-all-signing-keys.js';

/** Outcome of {@link revokeAll}. */
export interface RevokeAllOutcome {
  keys: RevokeAllSigningKeysOutcome;
  /** The sessions ended now, to announce to running instances after the commit. */
  sessions: RevokedSession[];
  /** The revocation cut-off now stored (epoch ms): no access token issued before it is accepted. */
  notBefore: number;
}

/**
 * How far this machine's clock may be from the database server's for {@link revokeAll} to set a
 * cut-off: the skew every instance already tolerates in a token's `iat`.
 */
export const REVOKE_ALL_MAX_CLOCK_SKEW_MS = IAT_CLOCK_SKEW_SECONDS * 1000;

/**
 * This machine's clock and the database server's differ by more than
 * {@link REVOKE_ALL_MAX_CLOCK_SKEW_MS}: {@link revokeAll} set nothing. A cut-off ahead of the time
 * refuses every token on every instance until the time comes (and it is never lowered), one behind
 * it accepts the tokens issued in between.
 */
export class ClockSkewError extends Error {
  /** Stable machine-readable code. */
  readonly code = 'CLOCK_SKEW';
  constructor(
    /** This machine's clock (epoch ms). */
    readonly localMs: number,
    /** The database server's (epoch ms). */
    readonly databaseMs: number,
  ) {
    const seconds = Math.round((localMs - databaseMs) / 1000);
    super(
      `this machine's clock is ${Math.abs(seconds)} s ${seconds > 0 ? 'ahead of' : 'behind'} the database ` +
        "server's: the cut-off would be wrong on every instance; set the time right (NTP) and run it again. " +
        'Nothing was revoked',
    );
    this.name = 'ClockSkewError';
  }
}

/**
 * `gatehouse revoke-all`, after a backup was restored: in **one** transaction, revokes every
 * signing key (a fresh one signs at once), raises the revocation cut-off to the next whole second,
 * ends every session with its unexchanged authorization codes, and writes the `all_revoked` audit
 * entry. One transaction, so a process that dies half-way leaves everything as it was rather than
 * keys revoked and sessions alive (red-team 2026-12n R1 left that to a second run).
 *
 * The cut-off reaches what neither a key revocation nor the restored rows can: under HS256 the
 * key is `SECRET_KEY`, which no backup holds, so access tokens of sessions opened after the
 * backup, `client_credentials` tokens and apps' tokens verified until they expired. Every instance
 * refuses tokens whose `iat` lies before it (`RevocationList.isCutOff`), from the broadcast the
 * caller sends after the commit or at its next revocation reload.
 *
 * It runs on the connection given (`gatehouse revoke-all` uses the migration connection, whose
 * statement timeout allows a whole site's sessions in one statement) and needs no core: a core
 * needs its current key to open, and a restored backup's keys may be sealed under a `SECRET_KEY`
 * replaced since.
 */
export async function revokeAll(options: RevokeAllSigningKeysOptions): Promise<RevokeAllOutcome> {
  // The cut-off is stored for good and read by every instance against its own clock: a command run
  // on a machine whose clock is wrong (a laptop, a container) must not set it. PostgreSQL gives a
  // second clock to check against; an SQLite file is on this machine, with the servers' clock.
  const databaseNow = await readDatabaseClock(options.database);
  if (databaseNow !== undefined && Math.abs(options.now - databaseNow) > REVOKE_ALL_MAX_CLOCK_SKEW_MS) {
    throw new ClockSkewError(options.now, databaseNow);
  }
  const drafts = await draftReplacementKeys(options);
  // `iat` has whole seconds: rounded up, every token issued before `now` has an `iat` below it.
  const notBefore = Math.ceil(options.now / 1000) * 1000;
  return options.database.transaction(async (trx) => {
    const keys = await revokeAllSigningKeysIn(trx, drafts, options);
    const sessionStore = createSessionStore(trx);
    const cutoff = await sessionStore.raiseRevocationCutoff(notBefore);
    const sessions = await sessionStore.revokeAllSessions(options.now);
    // The secret the command runs with becomes the instances' (a new one replacing a leaked one):
    // what was signed or sealed under another ends here anyway.
    await adoptSecretKey(trx, options.secret, options.now);
    const audit = createAuditLog(createAuditStore(trx), () => options.now, createAuditRetentionStore(trx));
    await audit.record({
      event: 'all_revoked',
      details: { sessions: sessions.length, signing_keys: keys.revoked.length, not_before: cutoff },
    });
    return { keys, sessions, notBefore: cutoff };
  });
}

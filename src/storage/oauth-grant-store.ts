import { type Kysely, PostgresAdapter, sql } from 'kysely';
import { deleteInBatches, type SweepBatchOptions } from './batched-sweep.js';
import { lockUserRow } from './lock-user-row.js';
import type { Schema } from './schema.js';
import { createSessionStore } from './session-store.js';

/** A stored authorization code (its hash, never the code). */
export interface AuthorizationCodeRecord {
  codeHash: string;
  clientId: string;
  userId: string;
  /** The redirect URI the code is bound to: the request's, or the client's only one when it left it out. */
  redirectUri: string;
  /** Whether the authorization request carried `redirect_uri` (RFC 6749 §4.1.3: /token must then repeat it). */
  redirectUriGiven: boolean;
  scopes: string[];
  codeChallenge: string;
  nonce: string | null;
  authTime: number;
  amr: string[];
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  sessionId: string | null;
  /** The browser session whose approval issued the code, if recorded: it must be live at the exchange. */
  approvedBySession: string | null;
}

/** What a new code is written with: the record less what its exchange and its approval fill in. */
export type NewAuthorizationCode = Omit<
  AuthorizationCodeRecord,
  'usedAt' | 'sessionId' | 'approvedBySession'
>;

/** The bounds of {@link OAuthGrantStore.insertCodeWithinCap}: live codes per account and client, and per account. */
export interface LiveCodeCaps {
  perClient: number;
  perAccount: number;
}

/**
 * What an approval rested on, re-checked where its code is written ({@link OAuthGrantStore.insertCodeWithinCap}).
 * Between the guard that saw it and that write, the owner may have ended the session ("log out
 * everywhere", a password change or reset) or disconnected the app; each of those takes the
 * account's row lock and deletes the unexchanged codes, so a code written after it must see it.
 */
export interface CodeApproval {
  /** The browser session that approved: it must still be live (not revoked, not expired). */
  sessionId: string;
  /** Whether the approval was the person's remembered consent, which must still be there. */
  consentRemembered: boolean;
}

/** The outcome of {@link OAuthGrantStore.insertCodeWithinCap}. */
export type CodeInsertOutcome = 'inserted' | 'capped' | 'withdrawn';

/** A remembered consent, with the client's display name. */
export interface ConsentRecord {
  clientId: string;
  clientName: string;
  scopes: string[];
  createdAt: number;
  updatedAt: number;
}

/** Persistence of authorization codes and consent (rules live in `src/oauth`). */
export interface OAuthGrantStore {
  /** Adds a code (with no approving session recorded). */
  insertCode(code: NewAuthorizationCode): Promise<void>;
  /**
   * Adds a code within `caps` of codes unexpired at `code.createdAt`: at most `perClient` of
   * `code.clientId` for `code.userId`, and `perAccount` for the account in all. At the client's cap
   * the code displaces that client's oldest unexchanged code; at the account's, the oldest
   * unexchanged code of the client holding the most. `capped` when the cap reached holds only spent
   * codes (kept for replay detection): at the client's cap that refuses the client alone;
   * `withdrawn` (nothing written) when the client is disabled or gone, or what `approval` rested on
   * is no longer there. Exact under concurrency: the checks, the counts, the displacement and the
   * insert run in one transaction holding the account's row lock (see `lockUserRow`), and a code
   * spent meanwhile is never displaced. `approval.sessionId` is recorded with the code, for the
   * exchange to check again.
   */
  insertCodeWithinCap(
    code: NewAuthorizationCode,
    caps: LiveCodeCaps,
    approval?: CodeApproval,
  ): Promise<CodeInsertOutcome>;
  /** Codes of `userId` not yet expired at `now`. */
  countLiveCodes(userId: string, now: number): Promise<number>;
  /** One code by hash, spent or not. */
  findCode(codeHash: string): Promise<AuthorizationCodeRecord | undefined>;
  /**
   * Reads whether a client is still there and enabled, holding its row (PostgreSQL `FOR SHARE`)
   * until the transaction ends: a code exchange's first step on the client, so an admin's disable or
   * removal running at the same moment either waits for the exchange and ends the session it made,
   * or commits first and is seen here (red-team 2026-12j R1). Its `client_id` has no foreign key
   * from `sessions`, so nothing else in the exchange would meet the change.
   */
  holdClient(clientId: string): Promise<'enabled' | 'disabled' | 'gone'>;
  /** Marks an unspent code spent; false when it was spent already (compare-and-set, race-safe). */
  spendCode(codeHash: string, now: number): Promise<boolean>;
  /**
   * Records a replay of a spent code; returns the session its exchange started, if any yet, or
   * undefined when the code's row is gone (deleted since it was read: an app disconnected, "log
   * out everywhere", the sweep).
   */
  markReplayed(codeHash: string, now: number): Promise<string | null | undefined>;
  /** Records the session a code's exchange started; returns true when a replay came meanwhile. */
  attachSession(codeHash: string, sessionId: string): Promise<boolean>;
  /** Deletes codes expired before `now`, a batch at a time; returns how many. */
  deleteExpiredCodes(now: number, options?: SweepBatchOptions): Promise<number>;
  /** The scopes `userId` allowed `clientId`, or undefined. */
  findConsent(userId: string, clientId: string): Promise<string[] | undefined>;
  /** Sets the scopes `userId` allowed `clientId` (insert or replace). */
  saveConsent(userId: string, clientId: string, scopes: readonly string[], now: number): Promise<void>;
  /** Every consent of `userId`, newest first. */
  listConsents(userId: string): Promise<ConsentRecord[]>;
  /**
   * The registered apps holding a live session (not revoked, not expired at `now`) of `userId`,
   * each with the scopes of those sessions, when the first of them started (`createdAt`) and when
   * the newest did (`updatedAt`: the person's latest approval, not the app's latest use).
   */
  listSessionApps(userId: string, now: number): Promise<ConsentRecord[]>;
  /** Forgets a consent; false when there was none. */
  deleteConsent(userId: string, clientId: string): Promise<boolean>;
  /**
   * Unrevoked sessions started for `clientId` (of `userId` only, when given; at most `limit`, when
   * given; unexpired at `liveAt`, when given), with or without refresh tokens.
   */
  sessionsOfClient(clientId: string, userId?: string, limit?: number, liveAt?: number): Promise<string[]>;
  /**
   * Deletes the codes `clientId` holds for `userId` and has not exchanged (spent ones stay, for
   * replay detection); returns how many.
   */
  deleteUnexchangedCodes(userId: string, clientId: string): Promise<number>;
}

const scopeList = (scope: string) => scope.split(' ').filter((item) => item !== '');

/**
 * Whether `clientId` is still registered and enabled, read holding its row until `db`'s transaction
 * ends (PostgreSQL `FOR SHARE`): see {@link OAuthGrantStore.holdClient}.
 */
async function holdClientRow(db: Kysely<Schema>, clientId: string): Promise<'enabled' | 'disabled' | 'gone'> {
  let query = db.selectFrom('oauth_clients').select('disabled_at').where('client_id', '=', clientId);
  // FOR SHARE conflicts with a disable's UPDATE and a removal's DELETE of the row: either waits
  // for this transaction (and then ends what it made), or this one waits and reads the change.
  // SQLite's write transactions are serial already.
  if (db.getExecutor().adapter instanceof PostgresAdapter) query = query.forShare();
  const row = await query.executeTakeFirst();
  if (row === undefined) return 'gone';
  return row.disabled_at === null ? 'enabled' : 'disabled';
}

/** Creates the {@link OAuthGrantStore} over `oauth_codes` and `oauth_consents` (pool or transaction). */
export function createOAuthGrantStore(db: Kysely<Schema>): OAuthGrantStore {
  const insertCode = async (
    trx: Kysely<Schema>,
    code: NewAuthorizationCode,
    approvedBySession: string | null,
  ) => {
    await trx
      .insertInto('oauth_codes')
      .values({
        code_hash: code.codeHash,
        client_id: code.clientId,
        user_id: code.userId,
        redirect_uri: code.redirectUri,
        redirect_uri_given: code.redirectUriGiven ? 1 : 0,
        scope: code.scopes.join(' '),
        code_challenge: code.codeChallenge,
        nonce: code.nonce,
        auth_time: code.authTime,
        amr: code.amr.join(' '),
        created_at: code.createdAt,
        expires_at: code.expiresAt,
        used_at: null,
        replayed_at: null,
        session_id: null,
        approved_by_session: approvedBySession,
      })
      .execute();
  };
  const countLiveCodes = async (trx: Kysely<Schema>, userId: string, now: number, clientId?: string) => {
    let query = trx
      .selectFrom('oauth_codes')
      .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
      .where('user_id', '=', userId)
      .where('expires_at', '>', now);
    if (clientId !== undefined) query = query.where('client_id', '=', clientId);
    const row = await query.executeTakeFirst();
    return Number(row?.n ?? 0);
  };
  const unexchanged = (trx: Kysely<Schema>, userId: string, now: number) =>
    trx
      .selectFrom('oauth_codes')
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .where('used_at', 'is', null);
  /** The oldest unexchanged live code of `clientId` for `userId`. */
  const oldestCodeOf = async (trx: Kysely<Schema>, userId: string, now: number, clientId: string) => {
    const oldest = await unexchanged(trx, userId, now)
      .select('code_hash')
      .where('client_id', '=', clientId)
      .orderBy('created_at')
      .orderBy('code_hash')
      .executeTakeFirst();
    return oldest?.code_hash;
  };
  /** The oldest unexchanged live code of the client holding the most of them for `userId`. */
  const oldestCodeOfBusiestClient = async (trx: Kysely<Schema>, userId: string, now: number) => {
    // Among equally busy clients, the one whose code waited longest.
    const busiest = await unexchanged(trx, userId, now)
      .select((eb) => [
        'client_id',
        eb.fn.countAll<number | string | bigint>().as('n'),
        eb.fn.min('created_at').as('oldest'),
      ])
      .groupBy('client_id')
      .orderBy('n', 'desc')
      .orderBy('oldest')
      .orderBy('client_id')
      .executeTakeFirst();
    return busiest === undefined ? undefined : oldestCodeOf(trx, userId, now, busiest.client_id);
  };
  /**
   * Deletes the code `pick` chooses, if it is still unexchanged; false when there is none to
   * choose. RFC 6749 §4.1.2 / RFC 9700 §4.5: a spent code must stay until it expires, so that its
   * replay is refused *and* revokes the tokens it produced; deleting it would leave a replay
   * nothing to find. On PostgreSQL an exchange may spend the chosen code between the pick and the
   * DELETE (the account's row lock does not cover the exchange): the DELETE waits for its row,
   * re-checks `used_at` and deletes nothing, and the next round picks another. Each lost round
   * is a code spent, so the rounds are bounded by the live codes.
   */
  /** Whether the session that approved is live and, for a remembered consent, the consent is there. */
  const approvalStands = async (
    trx: Kysely<Schema>,
    userId: string,
    clientId: string,
    approval: CodeApproval,
    now: number,
  ): Promise<boolean> => {
    if (!(await createSessionStore(trx).isSessionLive(approval.sessionId, userId, now))) return false;
    if (!approval.consentRemembered) return true;
    const consent = await trx
      .selectFrom('oauth_consents')
      .select('client_id')
      .where('user_id', '=', userId)
      .where('client_id', '=', clientId)
      .executeTakeFirst();
    return consent !== undefined;
  };
  const displaceUnexchanged = async (
    trx: Kysely<Schema>,
    pick: () => Promise<string | undefined>,
    rounds: number,
  ) => {
    for (let round = 0; round < rounds; round += 1) {
      const victim = await pick();
      if (victim === undefined) return false;
      const deleted = await trx
        .deleteFrom('oauth_codes')
        .where('code_hash', '=', victim)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 1) return true;
    }
    return false;
  };
  return {
    insertCode: (code) => insertCode(db, code, null),
    insertCodeWithinCap: (code, caps, approval) =>
      lockUserRow(db, code.userId, async (trx): Promise<CodeInsertOutcome> => {
        const { userId, clientId, createdAt: now } = code;
        // The client's row next (the exchange's order: account, then client): a disable running now
        // either waits for this code and then deletes it, or is seen here and the code is refused.
        if ((await holdClientRow(trx, clientId)) !== 'enabled') return 'withdrawn';
        // Race review 2026-12-06 P1: the session and the consent the approval rested on, read
        // under the account's lock. "Log out everywhere", a password change or reset, and a
        // disconnect take it too and delete the unexchanged codes: one that committed first is
        // seen here; one that comes later finds this code and deletes it.
        if (approval !== undefined && !(await approvalStands(trx, userId, clientId, approval, now)))
          return 'withdrawn';
        // Red-team 2026-12f K2: with one account-wide cap, an app that bounced the browser through
        // silent /authorize visits and exchanged every code filled it with spent codes, which
        // cannot be displaced (above), and refused the person's sign-ins to every other app. Its
        // own cap makes a client's spent codes refuse that client alone.
        const ownCodes = await countLiveCodes(trx, userId, now, clientId);
        if (
          ownCodes >= caps.perClient &&
          !(await displaceUnexchanged(trx, () => oldestCodeOf(trx, userId, now, clientId), ownCodes))
        ) {
          return 'capped';
        }
        // Red-team 2026-12e J2: refusing the newest code let any page that steers the person's
        // browser through silent /authorize visits (codes it never exchanges) refuse their real
        // sign-ins. Displacing the oldest unexchanged code keeps the table bounded and hits the
        // flood first: it holds the most codes, and an honest flow exchanges its code at once.
        // Filled with spent codes only by at least perAccount / perClient clients together.
        const allCodes = await countLiveCodes(trx, userId, now);
        if (
          allCodes >= caps.perAccount &&
          !(await displaceUnexchanged(trx, () => oldestCodeOfBusiestClient(trx, userId, now), allCodes))
        ) {
          return 'capped';
        }
        await insertCode(trx, code, approval?.sessionId ?? null);
        return 'inserted';
      }),
    countLiveCodes: (userId, now) => countLiveCodes(db, userId, now),
    async findCode(codeHash) {
      const row = await db
        .selectFrom('oauth_codes')
        .selectAll()
        .where('code_hash', '=', codeHash)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        codeHash: row.code_hash,
        clientId: row.client_id,
        userId: row.user_id,
        redirectUri: row.redirect_uri,
        redirectUriGiven: Number(row.redirect_uri_given) === 1,
        scopes: scopeList(row.scope),
        codeChallenge: row.code_challenge,
        nonce: row.nonce,
        authTime: Number(row.auth_time),
        amr: scopeList(row.amr),
        createdAt: Number(row.created_at),
        expiresAt: Number(row.expires_at),
        usedAt: row.used_at === null ? null : Number(row.used_at),
        sessionId: row.session_id,
        approvedBySession: row.approved_by_session,
      };
    },
    holdClient: (clientId) => holdClientRow(db, clientId),
    async spendCode(codeHash, now) {
      const result = await db
        .updateTable('oauth_codes')
        .set({ used_at: now })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async markReplayed(codeHash, now) {
      await db
        .updateTable('oauth_codes')
        .set({ replayed_at: now })
        .where('code_hash', '=', codeHash)
        .execute();
      const row = await db
        .selectFrom('oauth_codes')
        .select('session_id')
        .where('code_hash', '=', codeHash)
        .executeTakeFirst();
      return row === undefined ? undefined : row.session_id;
    },
    async attachSession(codeHash, sessionId) {
      await db
        .updateTable('oauth_codes')
        .set({ session_id: sessionId })
        .where('code_hash', '=', codeHash)
        .execute();
      const row = await db
        .selectFrom('oauth_codes')
        .select('replayed_at')
        .where('code_hash', '=', codeHash)
        .executeTakeFirst();
      return row !== undefined && row.replayed_at !== null;
    },
    deleteExpiredCodes: (now, options) =>
      deleteInBatches(db, 'oauth_codes', ['code_hash'], sql`expires_at <= ${now}`, options),
    async findConsent(userId, clientId) {
      const row = await db
        .selectFrom('oauth_consents')
        .select('scope')
        .where('user_id', '=', userId)
        .where('client_id', '=', clientId)
        .executeTakeFirst();
      return row === undefined ? undefined : scopeList(row.scope);
    },
    async saveConsent(userId, clientId, scopes, now) {
      await db
        .insertInto('oauth_consents')
        .values({
          user_id: userId,
          client_id: clientId,
          scope: scopes.join(' '),
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) =>
          oc.columns(['user_id', 'client_id']).doUpdateSet({ scope: scopes.join(' '), updated_at: now }),
        )
        .execute();
    },
    async listConsents(userId) {
      const rows = await db
        .selectFrom('oauth_consents')
        .innerJoin('oauth_clients', 'oauth_clients.client_id', 'oauth_consents.client_id')
        .select([
          'oauth_consents.client_id as clientId',
          'oauth_clients.name as clientName',
          'oauth_consents.scope as scope',
          'oauth_consents.created_at as createdAt',
          'oauth_consents.updated_at as updatedAt',
        ])
        .where('oauth_consents.user_id', '=', userId)
        .orderBy('oauth_consents.updated_at', 'desc')
        .execute();
      return rows.map((row) => ({
        clientId: row.clientId,
        clientName: row.clientName,
        scopes: scopeList(row.scope),
        createdAt: Number(row.createdAt),
        updatedAt: Number(row.updatedAt),
      }));
    },
    async listSessionApps(userId, now) {
      // One row per live session: bounded by the account's session caps (per app and in all).
      const rows = await db
        .selectFrom('sessions')
        .innerJoin('oauth_clients', 'oauth_clients.client_id', 'sessions.client_id')
        .select([
          'sessions.client_id as clientId',
          'oauth_clients.name as clientName',
          'sessions.scope as scope',
          'sessions.created_at as createdAt',
        ])
        .where('sessions.user_id', '=', userId)
        .where('sessions.revoked_at', 'is', null)
        .where('sessions.expires_at', '>', now)
        .execute();
      const apps = new Map<string, ConsentRecord>();
      for (const row of rows) {
        const app = apps.get(row.clientId) ?? {
          clientId: row.clientId,
          clientName: row.clientName,
          scopes: [],
          createdAt: Number(row.createdAt),
          updatedAt: Number(row.createdAt),
        };
        app.scopes = [...new Set([...app.scopes, ...scopeList(row.scope)])];
        app.createdAt = Math.min(app.createdAt, Number(row.createdAt));
        app.updatedAt = Math.max(app.updatedAt, Number(row.createdAt));
        apps.set(row.clientId, app);
      }
      return [...apps.values()].sort((a, b) => b.updatedAt - a.updatedAt);
    },
    async deleteConsent(userId, clientId) {
      const result = await db
        .deleteFrom('oauth_consents')
        .where('user_id', '=', userId)
        .where('client_id', '=', clientId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async deleteUnexchangedCodes(userId, clientId) {
      const result = await db
        .deleteFrom('oauth_codes')
        .where('user_id', '=', userId)
        .where('client_id', '=', clientId)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async sessionsOfClient(clientId, userId, limit, liveAt) {
      // The session's own client (migration 024a), not its refresh tokens' rows: a session of an
      // app registered without the refresh_token grant has none, and must end all the same.
      // No registered client is the first party (`FIRST_PARTY_CLIENT_ID`): the predicate of
      // `sessions_client_live_idx` (migration 031a), literally, so both engines can use that index.
      if (clientId === 'gatehouse') return [];
      let query = db
        .selectFrom('sessions')
        .select('id')
        .where('client_id', '=', clientId)
        .where(sql<boolean>`client_id <> 'gatehouse'`)
        .where('revoked_at', 'is', null);
      if (userId !== undefined) query = query.where('user_id', '=', userId);
      if (liveAt !== undefined) query = query.where('expires_at', '>', liveAt);
      if (limit !== undefined) query = query.limit(limit);
      return (await query.execute()).map((row) => row.id);
    },
  };
}

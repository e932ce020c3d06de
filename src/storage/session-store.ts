import { type Kysely, type Selectable, sql } from 'kysely';
import { deleteByKeyWalk, deleteInBatches, type SweepBatchOptions, walkByKey } from './batched-sweep.js';
import { takeTransactionLock } from './lock-user-row.js';
import { precompiledQuery } from './precompiled-query.js';
import type { RefreshTokensTable, Schema, SessionsTable } from './schema.js';
import { moveCredentialsVersion } from './user-store.js';

/** How a session's tokens travel. */
export type SessionTransport = 'bearer' | 'cookie';

/** A stored session (one login). */
export interface SessionRecord {
  id: string;
  userId: string;
  transport: SessionTransport;
  scopes: string[];
  createdAt: number;
  lastUsedAt: number;
  expiresAt: number;
  revokedAt: number | null;
  userAgent: string | null;
  ip: string | null;
  /**
   * When the user last authenticated in this session, epoch ms (OIDC `auth_time`): the login, or
   * a later re-authentication. @default createdAt
   */
  authTime?: number;
  /** How (RFC 8176 `amr` values: `pwd`, `otp`, `mfa`, …). @default ['pwd'] */
  amr?: string[];
  /**
   * The client the session was started for (its tokens' RFC 9068 `client_id`); what the
   * per-account session cap groups by. @default 'gatehouse' (first-party)
   */
  clientId?: string;
}

/** A revoked session id with the time after which its tokens are dead anyway. */
export interface RevokedSession {
  id: string;
  expiresAt: number;
}

/** A session revoked to make room for a new one of its account (see {@link SessionStore.insertSessionWithinCap}). */
export interface DisplacedSession extends RevokedSession {
  clientId: string;
}

/** The bounds of {@link SessionStore.insertSessionWithinCap}: live sessions per account and client, and per account. */
export interface SessionCaps {
  perClient: number;
  perAccount: number;
}

/** What {@link SessionStore.insertSessionWithinCap} revoked before inserting. */
export interface SessionAdmission {
  /** The session the sign-in replaces (`replaces`), if it was live. */
  replaced: RevokedSession[];
  /** Sessions revoked because the account was at its cap, least recently used first. */
  displaced: DisplacedSession[];
}

/** A revoked session as the database holds it: {@link RevokedSession} plus when it was revoked. */
export interface RevokedSessionRow extends RevokedSession {
  revokedAt: number;
}

/** Result of spending a refresh token. */
export type SpendResult =
  | { status: 'spent'; sessionId: string; expiresAt: number }
  | { status: 'reused'; sessionId: string }
  | { status: 'unknown' };

/** A stored refresh token (the token itself is never stored, only its hash). */
export interface RefreshTokenRecord {
  sessionId: string;
  expiresAt: number;
  /** When it was rotated away; null while it is the session's live refresh token. */
  spentAt: number | null;
  /** The encrypted successor, kept during the refresh grace interval; see {@link SessionStore.spendRefreshToken}. */
  successor: string | null;
  /** RFC 9068 `client_id` of the client it was issued to; null for tokens from before migration 009. */
  clientId: string | null;
}

/** A database-strategy access token. */
export interface AccessTokenRecord {
  sessionId: string;
  userId: string;
  scopes: string[];
  expiresAt: number;
  /** RFC 9068 `client_id` of the client it was issued to; absent for tokens from before migration 009. */
  clientId?: string;
}

/** Persistence of sessions and the tokens derived from them. */
export interface SessionStore {
  /** Inserts a session (with the hash of its cookie token for cookie sessions). */
  insertSession(session: SessionRecord, cookieTokenHash?: string): Promise<void>;
  /**
   * Inserts `session` within `perClient` live sessions of its client for its account and
   * `perAccount` for the account. `replaces` (the browser's previous session) is revoked first;
   * then, while the session's client holds `perClient` or more, its least recently used session is
   * revoked; then, while the account holds `perAccount` or more, the least recently used session
   * of the client holding the most. The new session is inserted last, so it is never the one
   * displaced. Exact under concurrency: the counts, the revocations and the insert run under a
   * per-account lock held until the caller's transaction ends (joined when `db` is one).
   */
  insertSessionWithinCap(
    session: SessionRecord,
    options: SessionCaps & { cookieTokenHash?: string | undefined; replaces?: string | undefined },
  ): Promise<SessionAdmission>;
  /** The session with this id. */
  findSession(id: string): Promise<SessionRecord | undefined>;
  /**
   * Whether session `id` of `userId` is live at `now` (neither revoked nor expired). For a write
   * a session authorized, read again in the write's transaction after the account's row lock,
   * which "log out everywhere" and every other remedy that ends sessions take: a remedy that
   * committed since the session was checked is then seen (red-team 2026-12t P1, and its review).
   */
  isSessionLive(id: string, userId: string, now: number): Promise<boolean>;
  /** The session whose cookie token hashes to `hash`. */
  findSessionByCookieHash(hash: string): Promise<SessionRecord | undefined>;
  /** Sessions of a user that are neither revoked nor expired, newest first. */
  listLiveSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /** Records use of a session. */
  touchSession(id: string, now: number): Promise<void>;
  /**
   * Records a re-authentication of a live session (step-up): its `auth_time` becomes `now` and
   * its `amr` `amr`. False when the session is unknown or revoked.
   */
  recordAuthentication(id: string, amr: readonly string[], now: number): Promise<boolean>;
  /** Revokes sessions by id (already-revoked ones are left alone); returns those revoked now. */
  revokeSessions(ids: readonly string[], now: number): Promise<RevokedSession[]>;
  /**
   * Revokes every live session of a user except `keep`; returns those revoked now. It first moves
   * the account's credentials version under the user row's `FOR UPDATE` lock, so a sign-in in
   * flight writes no session after this (red-team 2026-12d I3); then the user's unexchanged
   * authorization codes go, since each would start a new session after this one (red-team 2026-12d
   * I2), and every "end my sessions" (log out everywhere, a password change or reset, a disable)
   * means those too. Runs in the caller's transaction, or in one of its own; a caller that touched
   * other rows of the account before must have locked the user row first (ARCHITECTURE.md, "Lock
   * order").
   */
  revokeUserSessions(userId: string, now: number, keep?: string): Promise<RevokedSession[]>;
  /**
   * Revokes every live session of every account and client, and deletes every unexchanged
   * authorization code (each would start a session after this): `gatehouse revoke-all`, after a
   * backup was restored. Returns the sessions revoked now. One transaction (its own, or the
   * caller's); its size is the number of live sessions, which a restore makes a one-off.
   */
  revokeAllSessions(now: number): Promise<RevokedSession[]>;
  /**
   * The revocation cut-off (epoch ms; 0 when never set): no access token issued before it is
   * accepted, whatever key signed it. One primary-key read.
   */
  readRevocationCutoff(): Promise<number>;
  /**
   * Raises the revocation cut-off to `notBefore` (never lowers it): `gatehouse revoke-all`, in its
   * transaction. Returns the cut-off now stored.
   */
  raiseRevocationCutoff(notBefore: number): Promise<number>;
  /**
   * Sessions revoked after `since` that have not expired at `now`: what an in-memory revocation
   * list loads and incrementally reloads. A range scan on the `(revoked_at, expires_at)` index,
   * so its cost depends on the revocations since `since`, not on all revocations ever made.
   */
  listRevokedSince(since: number, now: number): Promise<RevokedSessionRow[]>;
  /** Stores the hash of a new refresh token, issued to `clientId` (RFC 6749 §10.4: the binding is kept). */
  insertRefreshToken(
    hash: string,
    sessionId: string,
    now: number,
    expiresAt: number,
    clientId?: string,
    /** Whether the token is of the family layout (`tokens/refresh-token.ts`). @default true */
    tagged?: boolean,
  ): Promise<void>;
  /** The refresh token with this hash, spent or not. */
  findRefreshToken(hash: string): Promise<RefreshTokenRecord | undefined>;
  /** Whether `sessionId` holds a refresh token that is neither spent nor expired at `now`. */
  hasLiveRefreshToken(sessionId: string, now: number): Promise<boolean>;
  /**
   * Atomically marks a refresh token spent, keeping `successor` (an encrypted token) beside it.
   * Exactly one concurrent caller gets `spent`; callers presenting an already-spent token get
   * `reused` (RFC 9700 §4.14.2 reuse detection).
   */
  spendRefreshToken(hash: string, now: number, successor?: string): Promise<SpendResult>;
  /**
   * Deletes the tagged spent refresh tokens of `sessionId` except `exceptHash`'s, the one a rotation
   * just spent: a session keeps that one and its successor (the family tag recognises the rest,
   * `refresh-token.ts`). Untagged rows (the earlier layout) stay until they expire: nothing would
   * recognise their tokens once gone.
   */
  deleteSpentRefreshTokens(sessionId: string, exceptHash: string): Promise<void>;
  /**
   * Forgets every kept successor of a token spent before `spentBefore` (the grace interval is over),
   * one key range at a time (`walkByKey`).
   */
  forgetRefreshSuccessors(filter: { spentBefore: number }, options?: SweepBatchOptions): Promise<void>;
  /** Stores the hash of a database-strategy access token. */
  insertAccessToken(hash: string, token: Omit<AccessTokenRecord, 'userId'>, now: number): Promise<void>;
  /** Deletes the access tokens of `sessionId` but its `keep` newest (`TOKEN_STRATEGY=database`). */
  deleteOlderAccessTokens(sessionId: string, keep: number): Promise<void>;
  /** The live access token with this hash (joined with a session that is not revoked). */
  findAccessToken(hash: string, now: number): Promise<AccessTokenRecord | undefined>;
  /**
   * Deletes expired tokens and sessions, and, with `revokedBefore`, the sessions revoked before it
   * (their tokens go with them); returns rows removed. A batch at a time (`storage/batched-sweep.ts`);
   * the hourly sweep runs the parts as steps of their own ({@link deleteExpiredAccessTokens} …).
   */
  deleteExpired(now: number, revokedBefore?: number, options?: SweepBatchOptions): Promise<number>;
  /** Deletes expired database-strategy access tokens, a key range at a time; returns how many. */
  deleteExpiredAccessTokens(now: number, options?: SweepBatchOptions): Promise<number>;
  /** Deletes expired refresh tokens, a key range at a time; returns how many. */
  deleteExpiredRefreshTokens(now: number, options?: SweepBatchOptions): Promise<number>;
  /** Deletes expired sessions (their tokens go with them), a key range at a time; returns how many. */
  deleteExpiredSessions(now: number, options?: SweepBatchOptions): Promise<number>;
  /**
   * Deletes the sessions revoked before `revokedBefore` (their tokens go with them), in batches
   * through the revoked-sessions index; returns how many.
   */
  deleteRevokedSessions(revokedBefore: number, options?: SweepBatchOptions): Promise<number>;
}

function toRecord(row: Selectable<SessionsTable>): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    transport: row.transport as SessionTransport,
    scopes: row.scope === '' ? [] : row.scope.split(' '),
    createdAt: Number(row.created_at),
    lastUsedAt: Number(row.last_used_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    userAgent: row.user_agent,
    ip: row.ip,
    authTime: Number(row.auth_time ?? row.created_at),
    amr: row.amr === null || row.amr === '' ? ['pwd'] : row.amr.split(' '),
    clientId: row.client_id,
  };
}

// Every login runs these two inserts: compiled once, not rebuilt per call (see precompiledQuery).
const insertSessionRow = precompiledQuery<Schema, SessionsTable>(
  [
    'id',
    'user_id',
    'transport',
    'scope',
    'created_at',
    'last_used_at',
    'expires_at',
    'revoked_at',
    'user_agent',
    'ip',
    'cookie_token_hash',
    'auth_time',
    'amr',
    'client_id',
  ],
  (db, row) => db.insertInto('sessions').values(row),
);
const insertRefreshTokenRow = precompiledQuery<
  Schema,
  Omit<RefreshTokensTable, 'successor' | 'tagged'> & { tagged: number }
>(['token_hash', 'session_id', 'created_at', 'expires_at', 'spent_at', 'client_id', 'tagged'], (db, row) =>
  db.insertInto('refresh_tokens').values(row),
);

// Every sign-in counts its account's and its client's live sessions (the session caps): compiled
// once (see precompiledQuery); built per call, Kysely's builder and compiler ran on every login.
// Answered from `sessions_user_idx (user_id, revoked_at, expires_at, client_id)` alone (migration
// 027a): one index range, not one table page per session of the account.
const countLiveSessions = precompiledQuery<
  Schema,
  { userId: string; now: number; clientId: string },
  { account: number | string | bigint; client: number | string | bigint }
>(['userId', 'now', 'clientId'], (db, { userId, now, clientId }) =>
  db
    .selectFrom('sessions')
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .select((eb) => [
      eb.fn.countAll<number | string | bigint>().as('account'),
      eb.fn.countAll<number | string | bigint>().filterWhere('client_id', '=', clientId).as('client'),
    ]),
);

// A sign-in at its client's cap (MAX_SESSIONS_PER_ACCOUNT / 2) picks and revokes a victim on
// every login: a client that signs in again and again without logging out (a script, a CLI run by
// cron) lives there. Compiled once (see precompiledQuery); built per call, Kysely's builder and
// compiler ran for both statements on each such login. `limit 1`: only the first row is used, so
// SQLite keeps one row in its sorter instead of handing every live session of the client back.
const selectLeastRecentlyUsedOfClient = precompiledQuery<
  Schema,
  { userId: string; now: number; clientId: string },
  { id: string }
>(['userId', 'now', 'clientId'], (db, { userId, now, clientId }) =>
  db
    .selectFrom('sessions')
    .select('id')
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .where('client_id', '=', clientId)
    .orderBy('last_used_at')
    .orderBy('created_at')
    .orderBy('id')
    // A literal, not a parameter: precompiledQuery binds only the listed values.
    .limit(sql.lit(1)),
);
/** One session revoked unless it already was (a displaced one, a browser's replaced one). */
const revokeSessionRow = precompiledQuery<
  Schema,
  { now: number; id: string },
  { id: string; expires_at: number | string | bigint; client_id: string }
>(['now', 'id'], (db, { now, id }) =>
  db
    .updateTable('sessions')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returning(['id', 'expires_at', 'client_id']),
);

// Every rotation prunes its session's older spent tokens: compiled once (see precompiledQuery).
// Through `refresh_tokens_session_idx`, so it reads only the session's own rows: two, or a
// session's untagged ones from before migration 025a besides (kept until they expire).
const deleteSpentRefreshTokenRows = precompiledQuery<Schema, { sessionId: string; exceptHash: string }>(
  ['sessionId', 'exceptHash'],
  (db, { sessionId, exceptHash }) =>
    db
      .deleteFrom('refresh_tokens')
      .where('session_id', '=', sessionId)
      .where('spent_at', 'is not', null)
      // A literal, not a parameter: precompiledQuery binds only the listed values.
      .where('tagged', '=', sql.lit(1))
      .where('token_hash', '!=', exceptHash),
);

/** `sessions.client_id` of a session started with no client named (the migration's default too). */
const FIRST_PARTY_SESSION_CLIENT = 'gatehouse';

/** A {@link SessionStore} over Kysely; the same code serves SQLite and PostgreSQL. */
export function createSessionStore(db: Kysely<Schema>): SessionStore {
  const expired = (now: number) => sql`expires_at <= ${now}`;
  const sweeps: Pick<
    SessionStore,
    | 'deleteExpiredAccessTokens'
    | 'deleteExpiredRefreshTokens'
    | 'deleteExpiredSessions'
    | 'deleteRevokedSessions'
  > = {
    // No index on `expires_at` of these three tables (each sign-in would write one more): one
    // walk over each table's primary key a pass, a range at a time.
    deleteExpiredAccessTokens: (now, options) =>
      deleteByKeyWalk(db, 'access_tokens', 'token_hash', expired(now), options),
    deleteExpiredRefreshTokens: (now, options) =>
      deleteByKeyWalk(db, 'refresh_tokens', 'token_hash', expired(now), options),
    deleteExpiredSessions: (now, options) => deleteByKeyWalk(db, 'sessions', 'id', expired(now), options),
    // Through the `(revoked_at, expires_at)` index over revoked sessions (refresh and access tokens
    // cascade): the first sweep after an upgrade may find a month of them.
    deleteRevokedSessions: (revokedBefore, options) =>
      deleteInBatches(db, 'sessions', ['id'], sql`revoked_at <= ${revokedBefore}`, options),
  };
  const insertSession = async (trx: Kysely<Schema>, session: SessionRecord, cookieTokenHash?: string) => {
    await insertSessionRow(trx, {
      id: session.id,
      user_id: session.userId,
      transport: session.transport,
      scope: session.scopes.join(' '),
      created_at: session.createdAt,
      last_used_at: session.lastUsedAt,
      expires_at: session.expiresAt,
      revoked_at: session.revokedAt,
      user_agent: session.userAgent,
      ip: session.ip,
      cookie_token_hash: cookieTokenHash ?? null,
      auth_time: session.authTime ?? session.createdAt,
      amr: (session.amr ?? ['pwd']).join(' '),
      client_id: session.clientId ?? FIRST_PARTY_SESSION_CLIENT,
    });
  };
  const revokeSessions = async (trx: Kysely<Schema>, ids: readonly string[], now: number) => {
    if (ids.length === 0) return [];
    // One id (a displaced or replaced session, a logout): the precompiled statement.
    const rows =
      ids.length === 1
        ? (await revokeSessionRow(trx, { now, id: ids[0] as string })).rows
        : await revokeSessionsBuilt(trx, ids, now);
    return rows.map((row) => ({ id: row.id, expiresAt: Number(row.expires_at), clientId: row.client_id }));
  };
  const revokeSessionsBuilt = (trx: Kysely<Schema>, ids: readonly string[], now: number) =>
    trx
      .updateTable('sessions')
      .set({ revoked_at: now })
      .where('id', 'in', ids)
      .where('revoked_at', 'is', null)
      .returning(['id', 'expires_at', 'client_id'])
      .execute();
  const live = (trx: Kysely<Schema>, userId: string, now: number) =>
    trx
      .selectFrom('sessions')
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now);
  /** The least recently used live session of `clientId` for `userId`. */
  const leastRecentlyUsedOf = async (trx: Kysely<Schema>, userId: string, now: number, clientId: string) => {
    const [victim] = (await selectLeastRecentlyUsedOfClient(trx, { userId, now, clientId })).rows;
    return victim?.id;
  };
  /** The least recently used live session of the client holding the most live sessions of `userId`. */
  const leastRecentlyUsedOfBusiestClient = async (trx: Kysely<Schema>, userId: string, now: number) => {
    // Among equally busy clients, the one whose session went unused longest.
    const busiest = await live(trx, userId, now)
      .select((eb) => [
        'client_id',
        eb.fn.countAll<number | string | bigint>().as('n'),
        eb.fn.min('last_used_at').as('idlest'),
      ])
      .groupBy('client_id')
      .orderBy('n', 'desc')
      .orderBy('idlest')
      .orderBy('client_id')
      .executeTakeFirst();
    return busiest === undefined ? undefined : leastRecentlyUsedOf(trx, userId, now, busiest.client_id);
  };
  /** Live sessions of `userId`: all of them, and `clientId`'s, in one statement (a sign-in's hot path). */
  const countLive = async (trx: Kysely<Schema>, userId: string, now: number, clientId: string) => {
    const [counts] = (await countLiveSessions(trx, { userId, now, clientId })).rows;
    return { account: Number(counts?.account ?? 0), client: Number(counts?.client ?? 0) };
  };
  /**
   * Revokes what `pick` chooses until `excess` are gone (more than one only when the cap was
   * lowered; each round revokes one, so the rounds are bounded by the sessions counted). A victim
   * a logout revoked meanwhile revokes nothing here and made room just the same.
   */
  const displace = async (
    trx: Kysely<Schema>,
    excess: number,
    pick: () => Promise<string | undefined>,
    now: number,
  ) => {
    const displaced: DisplacedSession[] = [];
    for (let round = 0; round < excess; round += 1) {
      const victim = await pick();
      if (victim === undefined) break;
      displaced.push(...(await revokeSessions(trx, [victim], now)));
    }
    return displaced;
  };
  /**
   * Serialises the session caps of one account until the transaction ends. PostgreSQL: a
   * transaction-scoped advisory lock on the account, taken only here. Not the user row's
   * `FOR NO KEY UPDATE`: a sign-in holds that row's `FOR KEY SHARE` from its first statement (the
   * lock order, ARCHITECTURE.md) and a code exchange arrives holding its code's row, while an
   * approval holds `FOR NO KEY UPDATE` as it deletes codes: a deadlock. A hash collision between two
   * accounts only makes their sign-ins wait for each other. SQLite: the transaction
   * (`BEGIN IMMEDIATE`) alone serialises it.
   */
  const lockSessionCap = (trx: Kysely<Schema>, userId: string) =>
    takeTransactionLock(trx, `gatehouse.sessions:${userId}`, 'exclusive');
  return {
    insertSession: (session, cookieTokenHash) => insertSession(db, session, cookieTokenHash),
    insertSessionWithinCap(session, { perClient, perAccount, cookieTokenHash, replaces }) {
      const admit = async (trx: Kysely<Schema>): Promise<SessionAdmission> => {
        const now = session.createdAt;
        await lockSessionCap(trx, session.userId);
        const replaced = (await revokeSessions(trx, replaces === undefined ? [] : [replaces], now)).map(
          ({ id, expiresAt }) => ({ id, expiresAt }),
        );
        const { userId } = session;
        const clientId = session.clientId ?? FIRST_PARTY_SESSION_CLIENT;
        // First the client's own share: an app minting a session per code exchange (red-team
        // 2026-12f, K2's loop) ends its own, and cannot make itself the account's busiest client
        // by more than half, so it never pushes out the person's other devices and apps.
        const counts = await countLive(trx, userId, now, clientId);
        const clientExcess = counts.client - (perClient - 1);
        const displaced = await displace(
          trx,
          clientExcess,
          () => leastRecentlyUsedOf(trx, userId, now, clientId),
          now,
        );
        // Then the account: several clients together fill it; the busiest gives way. Counted
        // again only when the client's own share made room (the usual sign-in, under both caps,
        // counts once).
        const accountLive =
          clientExcess > 0 ? (await countLive(trx, userId, now, clientId)).account : counts.account;
        displaced.push(
          ...(await displace(
            trx,
            accountLive - (perAccount - 1),
            () => leastRecentlyUsedOfBusiestClient(trx, userId, now),
            now,
          )),
        );
        await insertSession(trx, session, cookieTokenHash);
        return { replaced, displaced };
      };
      return db.isTransaction ? admit(db) : db.transaction().execute(admit);
    },
    async recordAuthentication(id, amr, now) {
      const result = await db
        .updateTable('sessions')
        .set({ auth_time: now, amr: amr.join(' ') })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async findSession(id) {
      const row = await db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toRecord(row);
    },
    async isSessionLive(id, userId, now) {
      const row = await db
        .selectFrom('sessions')
        .select('id')
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return row !== undefined;
    },
    async findSessionByCookieHash(hash) {
      const row = await db
        .selectFrom('sessions')
        .selectAll()
        .where('cookie_token_hash', '=', hash)
        .executeTakeFirst();
      return row && toRecord(row);
    },
    async listLiveSessions(userId, now) {
      const rows = await db
        .selectFrom('sessions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .orderBy('created_at', 'desc')
        .execute();
      return rows.map(toRecord);
    },
    async touchSession(id, now) {
      await db.updateTable('sessions').set({ last_used_at: now }).where('id', '=', id).execute();
    },
    async revokeSessions(ids, now) {
      return (await revokeSessions(db, ids, now)).map(({ id, expiresAt }) => ({ id, expiresAt }));
    },
    async revokeUserSessions(userId, now, keep) {
      const revoke = async (trx: Kysely<Schema>) => {
        // The user row first (the lock order, ARCHITECTURE.md "Lock order"): every sign-in and
        // refresh takes its share of it as its first statement, before it spends a code or a
        // refresh token. So one in progress makes this wait until it commits, and the statements
        // below (newer snapshots, READ COMMITTED) see the session it started; one that comes later
        // waits for this commit and then finds the version moved and its code gone. Deleting the
        // codes first, as before, deadlocked with an exchange that held the user row's share and
        // waited for its code's row (40P01, test/http/lock-order.test.ts).
        await moveCredentialsVersion(trx, userId);
        // Unexchanged codes: each would start a session after this (red-team 2026-12d I2).
        await trx
          .deleteFrom('oauth_codes')
          .where('user_id', '=', userId)
          .where('used_at', 'is', null)
          .execute();
        let query = trx
          .updateTable('sessions')
          .set({ revoked_at: now })
          .where('user_id', '=', userId)
          .where('revoked_at', 'is', null)
          .where('expires_at', '>', now);
        if (keep !== undefined) query = query.where('id', '!=', keep);
        const rows = await query.returning(['id', 'expires_at']).execute();
        return rows.map((row) => ({ id: row.id, expiresAt: Number(row.expires_at) }));
      };
      // The version's lock must be held until the revocation commits: its own transaction when
      // the caller has none.
      return db.isTransaction ? revoke(db) : db.transaction().execute(revoke);
    },
    async revokeAllSessions(now) {
      const revoke = async (trx: Kysely<Schema>) => {
        await trx.deleteFrom('oauth_codes').where('used_at', 'is', null).execute();
        const rows = await trx
          .updateTable('sessions')
          .set({ revoked_at: now })
          .where('revoked_at', 'is', null)
          .where('expires_at', '>', now)
          .returning(['id', 'expires_at'])
          .execute();
        return rows.map((row) => ({ id: row.id, expiresAt: Number(row.expires_at) }));
      };
      return db.isTransaction ? revoke(db) : db.transaction().execute(revoke);
    },
    async readRevocationCutoff() {
      const row = await db
        .selectFrom('revocation_cutoff')
        .select('not_before')
        .where('id', '=', 1)
        .executeTakeFirst();
      return row === undefined ? 0 : Number(row.not_before);
    },
    async raiseRevocationCutoff(notBefore) {
      const raise = async (trx: Kysely<Schema>) => {
        await trx
          .insertInto('revocation_cutoff')
          .values({ id: 1, not_before: notBefore })
          .onConflict((conflict) => conflict.column('id').doNothing())
          .execute();
        await trx
          .updateTable('revocation_cutoff')
          .set({ not_before: notBefore })
          .where('id', '=', 1)
          .where('not_before', '<', notBefore)
          .execute();
        const row = await trx
          .selectFrom('revocation_cutoff')
          .select('not_before')
          .where('id', '=', 1)
          .executeTakeFirstOrThrow();
        return Number(row.not_before);
      };
      return db.isTransaction ? raise(db) : db.transaction().execute(raise);
    },
    async listRevokedSince(since, now) {
      const rows = await db
        .selectFrom('sessions')
        .select(['id', 'expires_at', 'revoked_at'])
        .where('revoked_at', '>', since)
        .where('expires_at', '>', now)
        .execute();
      return rows.map((row) => ({
        id: row.id,
        expiresAt: Number(row.expires_at),
        revokedAt: Number(row.revoked_at),
      }));
    },
    async insertRefreshToken(hash, sessionId, now, expiresAt, clientId, tagged = true) {
      await insertRefreshTokenRow(db, {
        token_hash: hash,
        session_id: sessionId,
        created_at: now,
        expires_at: expiresAt,
        spent_at: null,
        client_id: clientId ?? null,
        tagged: tagged ? 1 : 0,
      });
    },
    async hasLiveRefreshToken(sessionId, now) {
      const row = await db
        .selectFrom('refresh_tokens')
        .select('token_hash')
        .where('session_id', '=', sessionId)
        .where('spent_at', 'is', null)
        .where('expires_at', '>', now)
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },
    async findRefreshToken(hash) {
      const row = await db
        .selectFrom('refresh_tokens')
        .select(['session_id', 'expires_at', 'spent_at', 'successor', 'client_id'])
        .where('token_hash', '=', hash)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        sessionId: row.session_id,
        expiresAt: Number(row.expires_at),
        spentAt: row.spent_at === null ? null : Number(row.spent_at),
        successor: row.successor,
        clientId: row.client_id,
      };
    },
    async spendRefreshToken(hash, now, successor) {
      // A conditional UPDATE is the compare-and-set: only one transaction can flip spent_at from NULL.
      const spent = await db
        .updateTable('refresh_tokens')
        .set({ spent_at: now, successor: successor ?? null })
        .where('token_hash', '=', hash)
        .where('spent_at', 'is', null)
        .returning(['session_id', 'expires_at'])
        .executeTakeFirst();
      if (spent !== undefined) {
        return { status: 'spent', sessionId: spent.session_id, expiresAt: Number(spent.expires_at) };
      }
      const existing = await db
        .selectFrom('refresh_tokens')
        .select('session_id')
        .where('token_hash', '=', hash)
        .executeTakeFirst();
      return existing ? { status: 'reused', sessionId: existing.session_id } : { status: 'unknown' };
    },
    async deleteSpentRefreshTokens(sessionId, exceptHash) {
      await deleteSpentRefreshTokenRows(db, { sessionId, exceptHash });
    },
    async forgetRefreshSuccessors({ spentBefore }, options) {
      // No index on `spent_at` (every rotation would write one): one walk over the table a pass.
      await walkByKey(
        db,
        'refresh_tokens',
        'token_hash',
        async (range) =>
          Number(
            (
              await sql`update refresh_tokens set successor = null where ${range} and successor is not null and spent_at < ${spentBefore}`.execute(
                db,
              )
            ).numAffectedRows ?? 0n,
          ),
        options,
      );
    },
    async insertAccessToken(hash, token, now) {
      await db
        .insertInto('access_tokens')
        .values({
          token_hash: hash,
          session_id: token.sessionId,
          scope: token.scopes.join(' '),
          created_at: now,
          expires_at: token.expiresAt,
          client_id: token.clientId ?? null,
        })
        .execute();
    },
    async deleteOlderAccessTokens(sessionId, keep) {
      // Through `access_tokens_session_idx`: only the session's own rows are read.
      await db
        .deleteFrom('access_tokens')
        .where('session_id', '=', sessionId)
        .where('token_hash', 'not in', (eb) =>
          eb
            .selectFrom('access_tokens')
            .select('token_hash')
            .where('session_id', '=', sessionId)
            .orderBy('created_at', 'desc')
            .orderBy('token_hash', 'desc')
            .limit(keep),
        )
        .execute();
    },
    async findAccessToken(hash, now) {
      const row = await db
        .selectFrom('access_tokens')
        .innerJoin('sessions', 'sessions.id', 'access_tokens.session_id')
        .select([
          'access_tokens.session_id',
          'sessions.user_id',
          'access_tokens.scope',
          'access_tokens.expires_at',
          'access_tokens.client_id',
        ])
        .where('access_tokens.token_hash', '=', hash)
        .where('access_tokens.expires_at', '>', now)
        .where('sessions.revoked_at', 'is', null)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        sessionId: row.session_id,
        userId: row.user_id,
        scopes: row.scope === '' ? [] : row.scope.split(' '),
        expiresAt: Number(row.expires_at),
        ...(row.client_id === null ? {} : { clientId: row.client_id }),
      };
    },
    ...sweeps,
    async deleteExpired(now, revokedBefore, options) {
      return (
        (await sweeps.deleteExpiredAccessTokens(now, options)) +
        (await sweeps.deleteExpiredRefreshTokens(now, options)) +
        (await sweeps.deleteExpiredSessions(now, options)) +
        (revokedBefore === undefined ? 0 : await sweeps.deleteRevokedSessions(revokedBefore, options))
      );
    },
  };
}

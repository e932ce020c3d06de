import {
  type Kysely,
  PostgresAdapter,
  type Selectable,
  type SelectQueryBuilder,
  sql,
  type Updateable,
} from 'kysely';
import type { Role } from '../accounts/roles.js';
import { enterAccountGate } from './lock-user-row.js';
import { isUniqueViolation } from './open-database.js';
import { precompiledQuery } from './precompiled-query.js';
import type { Schema, UsersTable } from './schema.js';

/** A stored account. */
export interface UserRecord {
  id: string;
  email: string;
  emailKey: string;
  fullName: string | null;
  passwordHash: string;
  role: Role;
  isActive: boolean;
  /** The owner followed a link mailed to `email` (verification, reset or email change). */
  emailVerified: boolean;
  createdAt: number;
  updatedAt: number;
  /**
   * Moves whenever every session of the account is ended (a reset, a password change, "log out
   * everywhere", a disable…): a sign-in decided on this record writes its session only while the
   * value is still this one (`SessionStartOptions.credentialsVersion`, red-team 2026-12d I3).
   */
  credentialsVersion: number;
}

/** A new account: its credentials version starts at 0. */
export type NewUser = Omit<UserRecord, 'credentialsVersion'>;

/** How {@link UserStore.lockUser} locks the account's row on PostgreSQL (`SELECT … FOR <mode>`). */
export type UserLockMode = 'key share' | 'no key update' | 'update';

/** Fields an update may change. */
export type UserPatch = Partial<
  Pick<UserRecord, 'fullName' | 'passwordHash' | 'role' | 'isActive' | 'email' | 'emailKey' | 'emailVerified'>
>;

/** Filters and paging for {@link UserStore.listUsers}. */
export interface UserQuery {
  limit: number;
  offset: number;
  emailPrefix?: string | undefined;
  role?: Role | undefined;
  isActive?: boolean | undefined;
}

/** Persistence of accounts. */
export interface UserStore {
  /** Inserts a user; `email_taken` when the email key exists (atomic under concurrency). */
  insertUser(user: NewUser): Promise<{ ok: true } | { ok: false; reason: 'email_taken' }>;
  /** The user with this id. */
  findUserById(id: string): Promise<UserRecord | undefined>;
  /** The user with this normalized email key. */
  findUserByEmailKey(emailKey: string): Promise<UserRecord | undefined>;
  /**
   * The account's credentials version ({@link UserRecord.credentialsVersion}), or undefined when the
   * account is gone: one primary-key read, which a sign-in makes inside its session's transaction.
   */
  findCredentialsVersion(id: string): Promise<number | undefined>;
  /**
   * The account, read as the first statement of a transaction that will touch its rows, holding on
   * PostgreSQL the row lock `mode` names until the transaction ends (ARCHITECTURE.md, "Lock
   * order": the user row first, in the strongest mode the transaction will need on it):
   * `key share` for one that only adds or changes rows referring to the account (a sign-in, a
   * refresh: the lock their foreign keys take anyway), `no key update` for one that also updates
   * the row (a login's hash upgrade), `update` for one that ends all its sessions or deletes rows
   * referring to it (a password change, a mailed link's use). A change holding the row `FOR UPDATE`
   * makes it wait here, before it holds any code, token or session row that change must delete.
   * After such a wait the read sees the committed change (READ COMMITTED re-reads a locked row):
   * the account gone, disabled, or its credentials version moved. The account's gate comes first
   * (`enterAccountGate`: exclusive for `update`, shared otherwise), so a stream of shares cannot
   * keep an `update` waiting. SQLite: a plain read (a transaction runs alone on the one
   * connection).
   */
  lockUser(id: string, mode: UserLockMode): Promise<UserRecord | undefined>;
  /**
   * {@link lockUser}, the same gate and row lock, reading only the account's credentials version
   * (undefined when the account is gone): for a sign-in's transaction, which needs nothing else of
   * the row (`signInTransaction`). Decoding the whole row (its hash, its email…) and building the
   * record was about half of that statement's cost on a login (issue 10).
   */
  lockCredentialsVersion(id: string, mode: UserLockMode): Promise<number | undefined>;
  /** Applies `patch`; returns the updated user, or undefined when it does not exist. */
  updateUser(id: string, patch: UserPatch, now: number): Promise<UserRecord | undefined>;
  /**
   * Replaces the password hash only while it is still `expected` (compare-and-set), so upgrading
   * a hash on login can never undo a password change that committed meanwhile. True if replaced.
   */
  replacePasswordHash(id: string, expected: string, next: string, now: number): Promise<boolean>;
  /** Deletes a user and (by cascade) their sessions and tokens. */
  deleteUser(id: string): Promise<boolean>;
  /** A page of users, ordered by creation, and the total matching the filters. */
  listUsers(query: UserQuery): Promise<{ items: UserRecord[]; total: number }>;
  /** Active super admins, for the "never remove the last one" rule. */
  countActiveSuperAdmins(): Promise<number>;
}

function toRecord(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    email: row.email,
    emailKey: row.email_key,
    fullName: row.full_name,
    passwordHash: row.password_hash,
    role: row.role as Role,
    isActive: row.is_active === 1,
    emailVerified: row.email_verified === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    credentialsVersion: Number(row.credentials_version),
  };
}

/** Escapes LIKE wildcards so an email prefix filter matches literally. */
function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (char) => `\\${char}`);
}

// Every password login looks its account up by email: compiled once (see precompiledQuery).
const selectUserByEmailKey = precompiledQuery<Schema, { email_key: string }, Selectable<UsersTable>>(
  ['email_key'],
  (db, { email_key }) => db.selectFrom('users').selectAll().where('email_key', '=', email_key),
);

// Every sign-in re-reads it in its session's transaction: compiled once (see precompiledQuery).
const selectCredentialsVersion = precompiledQuery<
  Schema,
  { id: string },
  Pick<Selectable<UsersTable>, 'credentials_version'>
>(['id'], (db, { id }) => db.selectFrom('users').select('credentials_version').where('id', '=', id));

const selectUserLocked = (mode: UserLockMode) =>
  precompiledQuery<Schema, { id: string }, Selectable<UsersTable>>(['id'], (db, { id }) =>
    lockedIn(db, mode, db.selectFrom('users').selectAll().where('id', '=', id)),
  );
// The first statement of every sign-in and refresh: compiled once per dialect (see precompiledQuery).
const selectUserLockedBy: Record<UserLockMode, ReturnType<typeof selectUserLocked>> = {
  'key share': selectUserLocked('key share'),
  'no key update': selectUserLocked('no key update'),
  update: selectUserLocked('update'),
};
const selectCredentialsVersionLocked = (mode: UserLockMode) =>
  precompiledQuery<Schema, { id: string }, Pick<Selectable<UsersTable>, 'credentials_version'>>(
    ['id'],
    (db, { id }) =>
      lockedIn(db, mode, db.selectFrom('users').select('credentials_version').where('id', '=', id)),
  );
const selectCredentialsVersionLockedBy: Record<
  UserLockMode,
  ReturnType<typeof selectCredentialsVersionLocked>
> = {
  'key share': selectCredentialsVersionLocked('key share'),
  'no key update': selectCredentialsVersionLocked('no key update'),
  update: selectCredentialsVersionLocked('update'),
};

/** `query` with PostgreSQL's row lock `mode` (`FOR KEY SHARE`…); as it is on SQLite. */
function lockedIn<Query extends SelectQueryBuilder<Schema, 'users', object>>(
  db: Kysely<Schema>,
  mode: UserLockMode,
  query: Query,
): Query {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return query;
  if (mode === 'key share') return query.forKeyShare() as Query;
  return (mode === 'no key update' ? query.forNoKeyUpdate() : query.forUpdate()) as Query;
}

/**
 * Moves `userId`'s credentials version, as part of ending all of the account's sessions; `db` must
 * be the transaction that ends them, and this must run before anything else of the account is
 * touched (the lock order: the user row first, ARCHITECTURE.md "Lock order").
 *
 * PostgreSQL: the row is first locked `FOR UPDATE` (after the account's gate, exclusive:
 * `enterAccountGate`, so sign-ins arriving meanwhile queue behind it), which conflicts with the
 * `FOR KEY SHARE` a sign-in takes as its first statement (`UserStore.lockUser`, the lock its session insert's
 * foreign key would take anyway). So a sign-in that locked first makes this wait until it commits,
 * and the revocation that follows (a statement with a newer snapshot, READ COMMITTED) sees and ends
 * its session; a sign-in that comes after this lock waits until this transaction commits, and then
 * reads the moved version and writes nothing. A plain UPDATE would take only `FOR NO KEY UPDATE`,
 * which does not conflict: a sign-in could read the old version, and commit its session after this
 * transaction revoked the ones it saw. SQLite: a transaction runs alone on the one connection.
 */
export async function moveCredentialsVersion(db: Kysely<Schema>, userId: string): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await enterAccountGate(db, userId, 'exclusive');
    await db.selectFrom('users').select('id').where('id', '=', userId).forUpdate().execute();
  }
  await db
    .updateTable('users')
    .set((eb) => ({ credentials_version: eb('credentials_version', '+', 1) }))
    .where('id', '=', userId)
    .execute();
}

/** A {@link UserStore} over Kysely; the same code serves SQLite and PostgreSQL. */
export function createUserStore(db: Kysely<Schema>): UserStore {
  return {
    async insertUser(user) {
      try {
        await db
          .insertInto('users')
          .values({
            id: user.id,
            email: user.email,
            email_key: user.emailKey,
            full_name: user.fullName,
            password_hash: user.passwordHash,
            role: user.role,
            is_active: user.isActive ? 1 : 0,
            email_verified: user.emailVerified ? 1 : 0,
            created_at: user.createdAt,
            updated_at: user.updatedAt,
          })
          .execute();
        return { ok: true };
      } catch (error) {
        if (isUniqueViolation(error)) return { ok: false, reason: 'email_taken' };
        throw error;
      }
    },
    async findUserById(id) {
      const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toRecord(row);
    },
    async findUserByEmailKey(emailKey) {
      const [row] = (await selectUserByEmailKey(db, { email_key: emailKey })).rows;
      return row && toRecord(row);
    },
    async findCredentialsVersion(id) {
      const [row] = (await selectCredentialsVersion(db, { id })).rows;
      return row === undefined ? undefined : Number(row.credentials_version);
    },
    async lockUser(id, mode) {
      await enterAccountGate(db, id, mode === 'update' ? 'exclusive' : 'shared');
      const [row] = (await selectUserLockedBy[mode](db, { id })).rows;
      return row && toRecord(row);
    },
    async lockCredentialsVersion(id, mode) {
      await enterAccountGate(db, id, mode === 'update' ? 'exclusive' : 'shared');
      const [row] = (await selectCredentialsVersionLockedBy[mode](db, { id })).rows;
      return row === undefined ? undefined : Number(row.credentials_version);
    },
    async updateUser(id, patch, now) {
      const values: Updateable<UsersTable> = { updated_at: now };
      if (patch.fullName !== undefined) values.full_name = patch.fullName;
      if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
      if (patch.role !== undefined) values.role = patch.role;
      if (patch.isActive !== undefined) values.is_active = patch.isActive ? 1 : 0;
      if (patch.email !== undefined) values.email = patch.email;
      if (patch.emailKey !== undefined) values.email_key = patch.emailKey;
      if (patch.emailVerified !== undefined) values.email_verified = patch.emailVerified ? 1 : 0;
      const row = await db
        .updateTable('users')
        .set(values)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row && toRecord(row);
    },
    async replacePasswordHash(id, expected, next, now) {
      const result = await db
        .updateTable('users')
        .set({ password_hash: next, updated_at: now })
        .where('id', '=', id)
        .where('password_hash', '=', expected)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async deleteUser(id) {
      const result = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async listUsers(query) {
      let base = db.selectFrom('users');
      if (query.emailPrefix !== undefined && query.emailPrefix !== '') {
        const pattern = `${escapeLike(query.emailPrefix.normalize('NFKC').toLowerCase())}%`;
        base = base.where(sql<boolean>`email_key like ${pattern} escape '\\'`);
      }
      if (query.role !== undefined) base = base.where('role', '=', query.role);
      if (query.isActive !== undefined) base = base.where('is_active', '=', query.isActive ? 1 : 0);
      const [rows, count] = await Promise.all([
        base
          .selectAll()
          .orderBy('created_at')
          .orderBy('id')
          .limit(query.limit)
          .offset(query.offset)
          .execute(),
        base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toRecord), total: Number(count.n) };
    },
    async countActiveSuperAdmins() {
      const row = await db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('role', '=', 'super_admin')
        .where('is_active', '=', 1)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}

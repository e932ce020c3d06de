import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import { GatehouseError } from '../errors.js';
import { costliestByFamily, type LegacyHashCost, legacyHashCost } from '../passwords/legacy-hash-class.js';
import { parseLegacyHash } from '../passwords/legacy-hash-format.js';
import type { LegacyHashCostStore } from '../storage/legacy-hash-cost-store.js';
import type { UserImportStore } from '../storage/user-import-store.js';
import type { NewUser } from '../storage/user-store.js';
import { normalizeFullName } from './account-service.js';
import { normalizeEmail } from './normalize-email.js';
import { isRole, type Role } from './roles.js';

/**
 * One record of an import file, as its reader produced it: the fields of a CSV row or a JSON
 * line, or why the line could not be read at all. `line` is 1-based, in the file.
 */
export type ImportRecord =
  | { line: number; fields: Readonly<Record<string, unknown>> }
  | { line: number; error: string };

/** A row that was not imported, and why. Never quotes the password hash. */
export interface ImportProblem {
  line: number;
  /** `invalid`: the row is malformed; `duplicate`: its email already has an account. */
  kind: 'invalid' | 'duplicate';
  reason: string;
}

/** Options of `UserImport.importUsers`. */
export interface UserImportOptions {
  /**
   * Import the good rows and report the others (`--continue`). Otherwise any problem rolls the
   * whole import back. @default false
   */
  continueOnError?: boolean;
  /** Told each problem as it is found (the CLI prints a line each). */
  onProblem?: (problem: ImportProblem) => void;
  /** Told the number of records read so far, once per batch (the CLI's progress line). */
  onProgress?: (recordsRead: number) => void;
  /**
   * All-or-nothing imports stop reading after this many problems: the file needs fixing anyway,
   * and the operator needs the first ones, not a million lines. @default 100
   */
  maxProblems?: number;
  /** Rows per INSERT statement. @default 500 */
  batchSize?: number;
}

/** What an import did. */
export interface UserImportResult {
  /** Accounts written (0 when rolled back). */
  imported: number;
  /** Records read (data rows; a header or blank line is not one). */
  records: number;
  /** Problems found (each reported through `onProblem`). */
  problems: number;
  /** False when problems rolled an all-or-nothing import back, or reading stopped early. */
  committed: boolean;
  /** All-or-nothing import that stopped reading at `maxProblems`. */
  stoppedEarly: boolean;
}

/** Imports accounts, with their existing password hashes, from another application. */
export interface UserImport {
  /**
   * Validates and writes `records` in one transaction, in batches, holding one batch in memory at
   * a time. Hashes are checked (format and work factors) but not computed: a user's first login
   * verifies the legacy hash and upgrades it to argon2id. Rejects with `GatehouseError` only for
   * failures of the import itself (the database), never for a bad row.
   */
  importUsers(records: AsyncIterable<ImportRecord>, options?: UserImportOptions): Promise<UserImportResult>;
}

/** The stores an import writes through, bound to its transaction. */
export interface UserImportStores {
  users: UserImportStore;
  /** Where the costliest hash class of each family is kept, with the accounts that need it. */
  hashCosts: Pick<LegacyHashCostStore, 'record'>;
  audit: Pick<AuditLog, 'record'>;
}

/** Dependencies of `createUserImport`. */
export interface UserImportDeps {
  /** Runs `work` in one transaction; rolls back when it throws. */
  transaction<T>(work: (stores: UserImportStores) => Promise<T>): Promise<T>;
  clock: () => number;
  /**
   * Told after an import committed accounts: the server's refusal floor reads the hash classes
   * again at its next refusal instead of within its re-read interval.
   */
  onCommitted?: () => void;
}

/** Most bytes of a hash string the import accepts (the longest supported format is ~150). */
const MAX_FIELD_LENGTH = 1024;

/** A row to insert, with what verifying its hash costs (undefined for our own argon2id). */
interface Row {
  line: number;
  user: NewUser;
  cost: LegacyHashCost | undefined;
}

type Validated =
  | { ok: true; user: NewUser; cost: LegacyHashCost | undefined }
  | { ok: false; reason: string };

function text(fields: Readonly<Record<string, unknown>>, name: string): string | undefined | null {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : null;
}

/** `disabled` as FastAPI's models store it: a JSON boolean, or in CSV true/false/1/0/empty. */
function parseDisabled(value: unknown): boolean | undefined {
  if (value === undefined || value === null || value === '') return false;
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return undefined;
  const lowered = value.trim().toLowerCase();
  if (lowered === 'true' || lowered === '1' || lowered === 't' || lowered === 'yes') return true;
  if (lowered === 'false' || lowered === '0' || lowered === 'f' || lowered === 'no') return false;
  return undefined;
}

/** Checks one row and builds the account it describes. */
function validate(fields: Readonly<Record<string, unknown>>, createdAt: number): Validated {
  const rawEmail = text(fields, 'email');
  if (rawEmail === undefined || rawEmail === '') return { ok: false, reason: 'email is missing' };
  if (rawEmail === null || rawEmail.length > MAX_FIELD_LENGTH)
    return { ok: false, reason: 'email is not text' };
  const email = normalizeEmail(rawEmail);
  if (email === undefined) return { ok: false, reason: 'email is not a valid address' };
  const hash = text(fields, 'hashed_password');
  if (hash === undefined || hash === '') return { ok: false, reason: 'hashed_password is missing' };
  if (hash === null) return { ok: false, reason: 'hashed_password is not text' };
  const parsed = parseLegacyHash(hash);
  if (!parsed.ok) return { ok: false, reason: `hashed_password: ${parsed.reason}` };
  const rawName = text(fields, 'full_name');
  if (rawName === null) return { ok: false, reason: 'full_name is not text' };
  let fullName: string | null;
  try {
    fullName = normalizeFullName(rawName);
  } catch (error) {
    return { ok: false, reason: error instanceof GatehouseError ? error.message : 'full_name is invalid' };
  }
  const disabled = parseDisabled(fields.disabled);
  if (disabled === undefined) return { ok: false, reason: 'disabled is not true or false' };
  const rawRole = text(fields, 'role');
  if (rawRole === null) return { ok: false, reason: 'role is not text' };
  const role: Role | undefined =
    rawRole === undefined || rawRole === '' ? 'user' : isRole(rawRole) ? rawRole : undefined;
  if (role === undefined) return { ok: false, reason: 'role is not user, admin or super_admin' };
  return {
    ok: true,
    cost: legacyHashCost(parsed.hash),
    user: {
      id: randomUUID(),
      email: email.display,
      emailKey: email.key,
      fullName,
      passwordHash: hash,
      role,
      isActive: !disabled,
      emailVerified: false,
      createdAt,
      updatedAt: createdAt,
    },
  };
}

/** Thrown inside the transaction to roll an all-or-nothing import back. */
class RollBack extends Error {}

/** Creates the `UserImport` service. */
export function createUserImport(deps: UserImportDeps): UserImport {
  return {
    async importUsers(records, options = {}) {
      const continueOnError = options.continueOnError ?? false;
      const maxProblems = options.maxProblems ?? 100;
      const batchSize = options.batchSize ?? 500;
      // Every account of one import shares its creation time: a row whose email is taken by an
      // account created at this very instant is a duplicate of an earlier line of this file.
      const startedAt = deps.clock();
      const counts = { imported: 0, records: 0, problems: 0, stoppedEarly: false };
      const report = (problem: ImportProblem) => {
        counts.problems += 1;
        options.onProblem?.(problem);
      };

      const flush = async (stores: UserImportStores, batch: Row[]) => {
        const inserted = await stores.users.insertUsers(batch.map((row) => row.user));
        counts.imported += inserted.size;
        // In the accounts' transaction: no imported account exists that a running server's
        // refusal floor does not know the cost of (once it re-reads the table, within a minute).
        await stores.hashCosts.record(
          costliestByFamily(batch.filter((row) => inserted.has(row.user.emailKey)).map((row) => row.cost)),
        );
        const refused = batch.filter((row) => !inserted.has(row.user.emailKey));
        if (refused.length === 0) return;
        const createdAt = await stores.users.createdAtOf(refused.map((row) => row.user.emailKey));
        for (const row of refused) {
          report({
            line: row.line,
            kind: 'duplicate',
            reason:
              createdAt.get(row.user.emailKey) === startedAt
                ? `${row.user.email} is on an earlier line of this file`
                : `${row.user.email} already has an account`,
          });
        }
      };

      const run = async (stores: UserImportStores) => {
        // One batch in memory at a time: the file is never held whole (1 000 000 rows stream).
        let batch: Row[] = [];
        let batchLines = new Map<string, number>();
        for await (const record of records) {
          counts.records += 1;
          if ('error' in record) {
            report({ line: record.line, kind: 'invalid', reason: record.error });
          } else {
            const checked = validate(record.fields, startedAt);
            if (!checked.ok) {
              report({ line: record.line, kind: 'invalid', reason: checked.reason });
            } else {
              const earlier = batchLines.get(checked.user.emailKey);
              if (earlier !== undefined) {
                report({
                  line: record.line,
                  kind: 'duplicate',
                  reason: `${checked.user.email} is on line ${earlier} of this file`,
                });
              } else {
                batchLines.set(checked.user.emailKey, record.line);
                batch.push({ line: record.line, user: checked.user, cost: checked.cost });
              }
            }
          }
          if (batch.length >= batchSize) {
            await flush(stores, batch);
            batch = [];
            batchLines = new Map();
            options.onProgress?.(counts.records);
          }
          if (!continueOnError && counts.problems >= maxProblems) {
            counts.stoppedEarly = true;
            break;
          }
        }
        await flush(stores, batch);
        options.onProgress?.(counts.records);
        if (!continueOnError && counts.problems > 0) throw new RollBack();
        await stores.audit.record({
          event: 'users_imported',
          details: { imported: counts.imported, skipped: counts.problems },
        });
      };

      try {
        await deps.transaction(run);
      } catch (error) {
        if (!(error instanceof RollBack)) throw error;
        return { ...counts, imported: 0, committed: false };
      }
      if (counts.imported > 0) deps.onCommitted?.();
      return { ...counts, committed: true };
    },
  };
}

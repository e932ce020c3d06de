import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImportProblem, ImportRecord, UserImportOptions } from '../../src/accounts/user-import.js';
import { createGatehouseCore } from '../../src/gatehouse.js';
import type { GatehouseCore } from '../../src/gatehouse-core.js';
import { createLegacyHashCostStore } from '../../src/storage/legacy-hash-cost-store.js';
import { testConfig } from '../../src/testing.js';
import { uniqueEmail } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

const fixtures: { scheme: string; password: string; hash: string }[] = JSON.parse(
  readFileSync(new URL('../fixtures/legacy-hashes/hashes.json', import.meta.url), 'utf8'),
).hashes;
const BCRYPT = fixtures.find((row) => row.hash.startsWith('$2b$04$'))?.hash ?? '';
const PBKDF2 = fixtures.find((row) => row.hash.startsWith('$pbkdf2-sha256$'))?.hash ?? '';

async function* recordsOf(rows: (Record<string, unknown> | string)[]): AsyncGenerator<ImportRecord> {
  let line = 1;
  for (const row of rows) {
    line += 1;
    yield typeof row === 'string' ? { line, error: row } : { line, fields: row };
  }
}

/** A core on a throwaway database of `engine` for the enclosing suite; call the result for it. */
function useCore(engine: 'sqlite' | 'postgres'): () => GatehouseCore {
  let gatehouse: GatehouseCore | undefined;
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    const database = await createTestDatabaseUrl(engine);
    drop = database.drop;
    gatehouse = await createGatehouseCore(testConfig({ databaseUrl: database.url }));
  });
  afterAll(async () => {
    await gatehouse?.close();
    await drop();
  });
  return () => {
    if (gatehouse === undefined) throw new Error('the suite has not started');
    return gatehouse;
  };
}

describe.each(engines)('importing users on $name', ({ name: engine }) => {
  const core = useCore(engine);

  const run = async (rows: (Record<string, unknown> | string)[], options: UserImportOptions = {}) => {
    const problems: ImportProblem[] = [];
    const result = await core().userImport.importUsers(recordsOf(rows), {
      ...options,
      onProblem: (problem) => problems.push(problem),
    });
    return { result, problems };
  };

  it('imports accounts with their legacy hashes, names, roles and disabled flags', async () => {
    const [ada, bob] = [uniqueEmail('ada'), uniqueEmail('bob')];
    const { result, problems } = await run([
      { email: ada.toUpperCase(), hashed_password: BCRYPT, full_name: 'Ada  Lovelace', role: 'admin' },
      { email: bob, hashed_password: PBKDF2, disabled: 'true' },
    ]);
    expect(problems).toEqual([]);
    expect(result).toMatchObject({ imported: 2, records: 2, problems: 0, committed: true });
    const first = await core().users.findUserByEmailKey(ada);
    expect(first).toMatchObject({
      passwordHash: BCRYPT,
      fullName: 'Ada Lovelace',
      role: 'admin',
      isActive: true,
    });
    expect(await core().users.findUserByEmailKey(bob)).toMatchObject({ isActive: false, role: 'user' });
    const audit = await core().audit.list({ limit: 50, offset: 0, event: 'users_imported' });
    expect(audit.items.some((entry) => entry.details?.imported === 2)).toBe(true);
  });

  it('reports every bad row with its line and imports nothing by default (one transaction)', async () => {
    const good = uniqueEmail('good');
    const { result, problems } = await run([
      { email: good, hashed_password: BCRYPT },
      { email: 'not an address', hashed_password: BCRYPT },
      {
        email: uniqueEmail(),
        hashed_password: '$2b$31$dfB7jnT11ROoD.IDMo71Y.9ehpk8azXWThMhjBW14YjcCM5snDhau',
      },
      { email: uniqueEmail(), hashed_password: 'plaintext password' },
      { email: uniqueEmail(), hashed_password: BCRYPT, role: 'root' },
      { email: uniqueEmail(), hashed_password: BCRYPT, disabled: 'maybe' },
      { email: uniqueEmail(), hashed_password: BCRYPT, full_name: 'a\u0000b' },
      { email: uniqueEmail() },
      'not valid JSON',
    ]);
    expect(problems.map((problem) => [problem.line, problem.kind])).toEqual([
      [3, 'invalid'],
      [4, 'invalid'],
      [5, 'invalid'],
      [6, 'invalid'],
      [7, 'invalid'],
      [8, 'invalid'],
      [9, 'invalid'],
      [10, 'invalid'],
    ]);
    expect(problems[1]?.reason).toMatch(/bcrypt cost 31 is outside 4\.\.13/);
    expect(problems.map((problem) => problem.reason).join(' ')).not.toContain('dfB7jnT11ROoD');
    expect(result).toMatchObject({ imported: 0, committed: false, problems: 8 });
    expect(await core().users.findUserByEmailKey(good)).toBeUndefined();
  });

  it('with continueOnError imports the good rows and reports the skipped ones', async () => {
    const good = uniqueEmail('kept');
    const { result, problems } = await run(
      [
        { email: good, hashed_password: BCRYPT },
        { email: 'nope', hashed_password: BCRYPT },
      ],
      { continueOnError: true },
    );
    expect(problems).toEqual([{ line: 3, kind: 'invalid', reason: 'email is not a valid address' }]);
    expect(result).toMatchObject({ imported: 1, problems: 1, committed: true });
    expect(await core().users.findUserByEmailKey(good)).toBeDefined();
  });

  it('tells duplicates within the file (same batch or an earlier one) from existing accounts', async () => {
    const existing = uniqueEmail('existing');
    await core().accounts.register({ email: existing, password: 'a sufficiently long passphrase' });
    const twice = uniqueEmail('twice');
    const across = uniqueEmail('across');
    const { result, problems } = await run(
      [
        { email: twice, hashed_password: BCRYPT },
        { email: twice.toUpperCase(), hashed_password: PBKDF2 },
        { email: across, hashed_password: BCRYPT },
        { email: existing, hashed_password: BCRYPT },
        { email: uniqueEmail(), hashed_password: BCRYPT },
        { email: across, hashed_password: BCRYPT },
      ],
      { continueOnError: true, batchSize: 4 },
    );
    expect(problems).toEqual([
      { line: 3, kind: 'duplicate', reason: `${twice.toUpperCase()} is on line 2 of this file` },
      { line: 5, kind: 'duplicate', reason: `${existing} already has an account` },
      { line: 7, kind: 'duplicate', reason: `${across} is on an earlier line of this file` },
    ]);
    expect(result).toMatchObject({ imported: 3, committed: true });
    // The existing account keeps its own password hash: an import never overwrites.
    expect((await core().users.findUserByEmailKey(existing))?.passwordHash.startsWith('$argon2id$')).toBe(
      true,
    );
  });

  it('stops reading an all-or-nothing import after maxProblems problems', async () => {
    const rows = Array.from({ length: 50 }, () => ({ email: 'bad', hashed_password: BCRYPT }));
    const { result, problems } = await run(rows, { maxProblems: 5 });
    expect(problems).toHaveLength(5);
    expect(result).toMatchObject({ committed: false, stoppedEarly: true, records: 5 });
  });

  it('rolls back everything when the database fails mid-import, and rejects', async () => {
    const first = uniqueEmail('first');
    async function* failing(): AsyncGenerator<ImportRecord> {
      yield { line: 2, fields: { email: first, hashed_password: BCRYPT } };
      throw new Error('disk read failed');
    }
    await expect(core().userImport.importUsers(failing(), { batchSize: 1 })).rejects.toThrow(
      'disk read failed',
    );
    expect(await core().users.findUserByEmailKey(first)).toBeUndefined();
  });

  it('holds one batch at a time: progress is told once per batch', async () => {
    const seen: number[] = [];
    const rows = Array.from({ length: 7 }, () => ({ email: uniqueEmail('batch'), hashed_password: BCRYPT }));
    const { result } = await run(rows, { batchSize: 3, onProgress: (count) => seen.push(count) });
    expect(result.imported).toBe(7);
    expect(seen).toEqual([3, 6, 7]);
  });
});

describe.each(engines)('the hash classes an import records on $name', ({ name: engine }) => {
  const core = useCore(engine);

  const classes = () => createLegacyHashCostStore(core().database.db).list();
  const costly = fixtures.find((row) => row.hash.startsWith('$2b$12$'))?.hash ?? '';

  it('records the costliest class of each family with the accounts, and nothing for rows not written', async () => {
    const taken = uniqueEmail('taken');
    await core().userImport.importUsers(recordsOf([{ email: taken, hashed_password: BCRYPT }]));
    expect(await classes()).toEqual(['bcrypt:4']);

    // Rolled back (a bad row): neither the account nor its class.
    await core().userImport.importUsers(
      recordsOf([
        { email: uniqueEmail('rolled'), hashed_password: costly },
        { email: 'bad', hashed_password: PBKDF2 },
      ]),
    );
    expect(await classes()).toEqual(['bcrypt:4']);
    // A duplicate is not written: its hash is never verified, so its class does not count.
    await core().userImport.importUsers(recordsOf([{ email: taken, hashed_password: costly }]), {
      continueOnError: true,
    });
    expect(await classes()).toEqual(['bcrypt:4']);

    await core().userImport.importUsers(
      recordsOf([
        { email: uniqueEmail('pbkdf2'), hashed_password: PBKDF2 },
        { email: uniqueEmail('costly'), hashed_password: costly },
        { email: uniqueEmail('cheap'), hashed_password: BCRYPT },
      ]),
      { batchSize: 1 },
    );
    expect(await classes()).toEqual(['bcrypt:12', 'pbkdf2-sha256:29000']);
  });
});

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

/** Real hashes made by passlib, pyca/bcrypt, argon2-cffi and Django (fixtures/legacy-hashes). */
const FIXTURES: { scheme: string; password: string; hash: string }[] = JSON.parse(
  readFileSync(new URL('./fixtures/legacy-hashes/hashes.json', import.meta.url), 'utf8'),
).hashes;
const BCRYPT = FIXTURES.find((row) => row.hash.startsWith('$2b$04$'))?.hash ?? '';

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-import-'));
  temporary.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

/** A CSV field, quoted the way Python's csv module writes one that needs it. */
const field = (value: string) => (/[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);
const csv = (rows: string[][]) => `${rows.map((row) => row.map(field).join(',')).join('\r\n')}\r\n`;

/** A folder with a DATA_DIR for the embedded SQLite database. */
function workspace() {
  const dir = tempDir();
  const dataDir = join(dir, 'data');
  const env = { DATA_DIR: dataDir };
  const users = () => {
    const db = new SQLite(join(dataDir, 'gatehouse.db'), { readonly: true });
    try {
      return db
        .prepare('select email, password_hash, role, is_active, full_name from users order by email')
        .all() as {
        email: string;
        password_hash: string;
        role: string;
        is_active: number;
        full_name: string | null;
      }[];
    } finally {
      db.close();
    }
  };
  return { dir, env, users };
}

describe('gatehouse import-users (compiled)', { timeout: 120_000 }, () => {
  it('imports a CSV of every supported hash in one transaction', async () => {
    const { dir, env, users } = workspace();
    const rows = FIXTURES.map((fixture, index) => [
      `user${index}@example.com`,
      fixture.hash,
      `User ${index}`,
      'false',
      'user',
    ]);
    rows[0] = ['admin@example.com', BCRYPT, 'Ada, the admin', 'true', 'admin'];
    writeFileSync(
      join(dir, 'users.csv'),
      csv([['email', 'hashed_password', 'full_name', 'disabled', 'role'], ...rows]),
    );
    const result = await run(['import-users', 'users.csv'], env, dir);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`Imported ${rows.length} of ${rows.length} rows from users.csv.\n`);
    const stored = users();
    expect(stored).toHaveLength(rows.length);
    expect(stored.find((user) => user.email === 'admin@example.com')).toEqual({
      email: 'admin@example.com',
      password_hash: BCRYPT,
      role: 'admin',
      is_active: 0,
      full_name: 'Ada, the admin',
    });
    expect(new Set(stored.map((user) => user.password_hash))).toEqual(new Set(rows.map((row) => row[1])));
  });

  it('refuses the whole file when a row is bad (65), listing each as FILE:LINE, and imports nothing', async () => {
    const { dir, env, users } = workspace();
    const jsonl = [
      JSON.stringify({ email: 'ok@example.com', hashed_password: BCRYPT }),
      JSON.stringify({ email: 'costly@example.com', hashed_password: BCRYPT.replace('$04$', '$20$') }),
      '',
      JSON.stringify({ email: 'ok@example.com', hashed_password: BCRYPT }),
      '{broken',
    ].join('\n');
    writeFileSync(join(dir, 'users.jsonl'), jsonl);
    const result = await run(['import-users', 'users.jsonl'], env, dir);
    expect(result.code).toBe(65);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toEqual([
      'users.jsonl:2: hashed_password: bcrypt cost 20 is outside 4..13',
      'users.jsonl:4: ok@example.com is on line 1 of this file',
      'users.jsonl:5: not valid JSON',
      'gatehouse: nothing was imported: 3 rows refused (listed above as users.jsonl:LINE): fix them, or rerun with --continue to import the others',
      '',
    ]);
    expect(result.stderr).not.toContain(BCRYPT.slice(7));
    // No progress line on a pipe: no carriage return, no escape sequence.
    expect(result.stderr.includes('\r') || result.stderr.includes('\u001b')).toBe(false);
    expect(users()).toEqual([]);
  });

  it('with --continue imports the good rows and lists the skipped ones (0)', async () => {
    const { dir, env, users } = workspace();
    const rows = [
      ['email', 'hashed_password'],
      ['a@example.com', BCRYPT],
      ['not-an-email', BCRYPT],
      ['b@example.com', 'md5:5f4dcc3b5aa765d61d8327deb882cf99'],
      ['c@example.com', BCRYPT],
    ];
    writeFileSync(join(dir, 'export.txt'), csv(rows));
    const result = await run(['import-users', '--format', 'csv', '--continue', 'export.txt'], env, dir);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      'export.txt:3: email is not a valid address\nexport.txt:4: hashed_password: not a supported password hash\n',
    );
    expect(result.stdout).toBe('Imported 2 of 4 rows from export.txt; skipped 2 rows (listed above).\n');
    expect(users().map((user) => user.email)).toEqual(['a@example.com', 'c@example.com']);
    // Run again: every row is now a duplicate of an existing account, and nothing changes.
    const again = await run(['import-users', '--format', 'csv', '--continue', 'export.txt'], env, dir);
    expect(again.stderr).toMatch(/export\.txt:2: a@example\.com already has an account/);
    expect(users()).toHaveLength(2);
  });

  it('fails in one line with a sysexits code for a bad command, file or header', async () => {
    const { dir, env } = workspace();
    mkdirSync(join(dir, 'folder.csv'));
    writeFileSync(join(dir, 'noheader.csv'), 'mail,password\na@example.com,x\n');
    writeFileSync(join(dir, 'empty.csv'), '');
    const cases: [string[], number, RegExp][] = [
      [['import-users'], 64, /^gatehouse: import-users needs the FILE to read; usage: /],
      [
        ['import-users', 'users.xlsx'],
        64,
        /cannot tell the format of users\.xlsx; name it \.csv or \.jsonl, or pass --format/,
      ],
      [['import-users', '--format', 'xml', 'a.csv'], 64, /--format xml is not a format; use csv or jsonl/],
      [['import-users', 'a.csv', '--force'], 64, /unknown option --force/],
      [
        ['import-users', 'missing.csv'],
        66,
        /^gatehouse: cannot read missing\.csv \(ENOENT\): check the path$/,
      ],
      [['import-users', 'folder.csv'], 66, /^gatehouse: folder\.csv is not a file/],
      [
        ['import-users', 'noheader.csv'],
        65,
        /^gatehouse: noheader\.csv: the CSV header \(line 1\) has no email or hashed_password column: nothing was imported$/,
      ],
      [['import-users', 'empty.csv'], 65, /no CSV header: nothing was imported$/],
    ];
    for (const [args, code, message] of cases) {
      const result = await run(args, env, dir);
      expect({ args, code: result.code }).toEqual({ args, code });
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(result.stderr.trimEnd()).toMatch(message);
    }
  });

  it('says the database is unreachable (69), without its password', async () => {
    const { dir } = workspace();
    writeFileSync(
      join(dir, 'users.csv'),
      csv([
        ['email', 'hashed_password'],
        ['a@example.com', BCRYPT],
      ]),
    );
    const result = await run(
      ['import-users', 'users.csv'],
      {
        DATA_DIR: join(dir, 'data'),
        DATABASE_URL: 'postgres://gatehouse:hunter2@127.0.0.1:1/gatehouse',
        DATABASE_CONNECT_TIMEOUT: '1s',
      },
      dir,
    );
    expect(result.code).toBe(69);
    expect(result.stderr).toMatch(
      /^gatehouse: cannot reach the database at postgres:\/\/gatehouse:\*\*\*@127\.0\.0\.1:1\/gatehouse/,
    );
    expect(result.stderr).not.toContain('hunter2');
  });
});

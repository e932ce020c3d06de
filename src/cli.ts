#!/usr/bin/env node
import { accessSync, constants, createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { isRole } from './accounts/roles.js';
import type { AppSettings, AppSettingValues } from './config/app-settings.js';
import type { GatehouseConfig } from './config/config.js';
import { loadConfig, readEnvironment } from './config/load-config.js';
import { type ConfigNotice, resolveConfig } from './config/resolve-config.js';
import { ConfigError, type ErrorCode, GatehouseError } from './errors.js';
import { createLogDestination } from './lib/log-destination.js';
import { systemScheduler } from './lib/scheduler.js';
import { pinTickObjectShape } from './lib/tick-object-shape.js';
import { databaseRefusal } from './storage/database-refusal.js';

// The commands' heavy modules (Fastify, Kysely, the database drivers, jose) are imported by the
// command that needs them, so help and usage errors answer at once and `backup` loads no server.

/**
 * Exit codes, from BSD's sysexits.h, so scripts and supervisors can tell "fix the command" from
 * "fix the settings" from "try again later" without parsing messages.
 */
const EXIT = {
  usage: 64,
  dataError: 65,
  noInput: 66,
  unavailable: 69,
  software: 70,
  cantCreate: 73,
  ioError: 74,
  config: 78,
} as const;

type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const HELP = `Usage: gatehouse <command> [options] [--debug]

Commands:
  serve                                   run the server (what npm start runs)
  migrate                                 bring the database schema up to date: the core's
                                          and the apps' (Dicery, clothes), as serve needs it
  create-user --email E [--role R] [--name N]
                                          create an account; R is user, admin or super_admin.
                                          The password is the first line of stdin (a second
                                          non-empty line is refused), or prompted for on a terminal.
                                          The address counts as verified: the operator vouches for it
  reset-mfa --email E                     remove an account's second factors (authenticator app,
                                          recovery codes, passkeys) and end its sessions, as an
                                          admin's reset does: the way back for a lone super admin
  rotate-keys [--revoke=KID]              add a next signing key (published now, signing after the
                                          publication delay), or withdraw a key at once; under
                                          JWT_ALG=HS256, the ES256 keys that sign ID tokens; and
                                          the RS256 ID-token keys once a client chose RS256
  backup FILE                             copy the SQLite database to FILE, safely while servers run
  revoke-all [--new-secret]               after restoring a backup: revoke every signing key (a
                                          fresh one signs at once) and end every session, so
                                          nothing issued before verifies; every user signs in again;
                                          --new-secret when SECRET_KEY replaces the instances' one
  import-users FILE [--continue] [--format csv|jsonl]
                                          import accounts with their password hashes (passlib
                                          bcrypt, bcrypt-sha256, pbkdf2-sha256, argon2; Django
                                          pbkdf2_sha256) from CSV or JSON lines; all or nothing,
                                          or --continue to import the good rows and list the rest
  clients create --name N [--redirect-uri U]... [--post-logout-redirect-uri U]...
                 [--confidential] [--grant G]... [--scope S]... [--id-token-alg A]
                                          register an OAuth client and print it as JSON (with
                                          client_secret, shown once, when --confidential); A is
                                          its ID tokens' algorithm: RS256, or the default
  clients list                            print every OAuth client as JSON
  clients disable CLIENT_ID               stop an OAuth client and its tokens at once
  clients enable CLIENT_ID                let a disabled OAuth client work again
  clients delete CLIENT_ID                remove an OAuth client
  verify-room-log FILE [--keys KEYS]      check a Dicery room log (GET /rooms/{code}/log, pages
                                          joined): the chain, the Ed25519 signatures and every
                                          revealed secret roll; KEYS (GET /rooms/log-keys saved
                                          to a file) replaces the keys the log names itself
  help                                    print this help (also --help, -h)

Options:
  --debug                                 on failure, print the stack trace too

Exit codes (sysexits.h):
  0   done
  64  usage: no or unknown command, unknown option, missing or bad argument
  65  data error: a room log did not verify (one line per problem) or is not a log;
      the account or client was refused (weak password, taken or invalid email, two
      stdin lines, a bad redirect URI, grant or scope), no such client to delete, disable or
      enable, or no such account to reset-mfa; import-users found bad or duplicate rows
      (nothing imported) or a file that is no import
  66  no input: no password on stdin; no database file to back up or to revoke-all in; no
      file to import or room log to verify
  69  unavailable: database unreachable (migrate, create-user, revoke-all…); the port is in use
      or not allowed
  70  software: an unexpected error (rerun with --debug and report it)
  73  can't create: DATA_DIR not a writable directory; the backup file exists or cannot be created
  74  I/O error: reading stdin or the import file, or writing the backup failed; no room
      left on the disk (or under the file size limit) for DATA_DIR or the database
  78  config: a setting is invalid (one line per problem), or the command does not fit the settings
      (rotate-keys: a next key still waiting, an unknown KID)

Settings come from the environment and .env; see README.md.`;

const USAGE_LINE =
  'usage: gatehouse <serve|migrate|create-user|rotate-keys|backup|revoke-all|reset-mfa|import-users|clients|verify-room-log|help> [options] (see gatehouse help)';

/**
 * A failure the operator can act on: one line naming the cause and the fix, and its exit code.
 * `lines` holds more than one line only for a configuration with several problems (one each).
 */
class CliFailure extends Error {
  readonly exitCode: ExitCode;
  readonly lines: readonly string[];

  constructor(exitCode: ExitCode, lines: string | readonly string[], options: { cause?: unknown } = {}) {
    const all = typeof lines === 'string' ? [lines] : lines;
    super(all.join('\n'), options);
    this.name = 'CliFailure';
    this.exitCode = exitCode;
    this.lines = all;
  }
}

/** A usage error (exit 64): what was wrong, then the usage line, on one line. */
/**
 * The options of every core a command creates: it writes security notices (`reset-mfa`'s) but
 * never sends them. A command ends at once: a core that swept would take the servers' pending
 * notices and mail them through its own transport (an outbox directory nobody reads, without
 * SMTP_URL), or leave them leased. The servers mail them.
 */
const COMMAND_CORE = { sendNotices: false } as const;

const usage = (message: string) => new CliFailure(EXIT.usage, `${message}; ${USAGE_LINE}`);

/**
 * A refused change in one line: the error's sentence, then each field's problem not already said
 * by it ("The client registration is invalid. redirect_uris/0: must use https; scope: …").
 */
function refusalText(error: GatehouseError): string {
  const details = (error.errors ?? [])
    .filter((field) => field.message !== error.message)
    .map((field) => `${field.field}: ${field.message}`);
  if (details.length === 0) return error.message;
  return `${error.message}${/[.!?]$/.test(error.message) ? ' ' : ': '}${details.join('; ')}`;
}

/**
 * Parses a command's options strictly: an unknown option or a missing value is a usage error
 * (exit 64), never silently ignored.
 */
function parseCommand<const T extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>>(
  command: string,
  args: string[],
  options: T,
  positionals = 0,
) {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? error.code : undefined;
    const option = /'(--?[\w-]+)/.exec(error instanceof Error ? error.message : '')?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw usage(`${command}: unknown option ${option}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
      throw usage(`${command}: option ${option} needs a value`);
    throw usage(`${command}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (parsed.positionals.length > positionals) {
    throw usage(`${command}: unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`);
  }
  return parsed;
}

/**
 * Reads the settings, making sure first that DATA_DIR is a directory this user can write: the
 * secret, signing keys and the SQLite database live there, and a failure deep inside start-up
 * would otherwise surface as a stack trace about `mkdir` or `SQLITE_CANTOPEN`.
 */
async function settings(options: { refuseGeneratedSecret?: string } = {}): Promise<{
  config: GatehouseConfig & AppSettingValues;
  notices: ConfigNotice[];
  apps: readonly AppSettings[];
}> {
  const env = readEnvironment();
  // The reference apps' variables (ROOM_*, MAX_*) are read and checked with the core's, so every
  // command accepts the environment `serve` runs with. Loaded on demand, like the commands' code.
  const { dicerySettings } = await import('./apps/dicery/settings.js');
  const apps = [dicerySettings];
  const loaded = loadConfig(env, { settings: apps });
  // A command that makes its secret the instances' must not make one up: refused, with this
  // message, before resolveConfig would generate it into DATA_DIR.
  if (
    options.refuseGeneratedSecret !== undefined &&
    loaded.secretKey === undefined &&
    !existsSync(resolve(loaded.dataDir, 'secret.key'))
  ) {
    throw new CliFailure(EXIT.config, options.refuseGeneratedSecret);
  }
  if (usesDataDir(loaded)) prepareDataDir(loaded.dataDir);
  return { ...resolveConfig(env, { settings: apps }), apps };
}

/**
 * Whether these settings keep anything in DATA_DIR (the generated secret, the SQLite file), so a
 * deployment with SECRET_KEY and PostgreSQL on a read-only disk is not refused for a folder it
 * never uses. Signing keys live in the database; a legacy `signing-keys.json` is only read.
 */
function usesDataDir(config: GatehouseConfig | ReturnType<typeof loadConfig>): boolean {
  if (config.secretKey === undefined) return true;
  if (!config.databaseUrl.startsWith('sqlite:')) return false;
  return resolve(config.databaseUrl.slice('sqlite:'.length)).startsWith(resolve(config.dataDir) + sep);
}

function prepareDataDir(dataDir: string): void {
  const fix = 'set DATA_DIR to a directory this user can write';
  const shown = resolve(dataDir);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = systemCode(error);
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new CliFailure(EXIT.cantCreate, `DATA_DIR ${shown} is not a directory: ${fix}`, { cause: error });
    }
    throw new CliFailure(EXIT.cantCreate, `cannot create DATA_DIR ${shown} (${code ?? 'error'}): ${fix}`, {
      cause: error,
    });
  }
  if (!statSync(dataDir).isDirectory()) {
    throw new CliFailure(EXIT.cantCreate, `DATA_DIR ${shown} is not a directory: ${fix}`);
  }
  try {
    accessSync(dataDir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new CliFailure(EXIT.cantCreate, `DATA_DIR ${shown} is not writable: ${fix}`, { cause: error });
  }
}

/** How long a stopping server waits for its last log lines to be written. */
const LOG_DRAIN_AT_EXIT_MS = 2_000;

async function serve(args: string[]): Promise<void> {
  parseCommand('serve', args, {});
  // First, before start-up's collections can kill the maps nextTick's entries use: a long-running
  // server keeps nextTick on V8's fast path only while they live (lib/tick-object-shape.ts).
  pinTickObjectShape();
  const { config, notices } = await settings();
  // Listens at once and starts the core in the background (retrying while the database is down),
  // so a database outage at start-up is not a crash loop; see startServer.
  const { MetricsListenError, startServer } = await import('./start-server.js');
  // compactHeapWhenReady: the process is ours alone, so the start-up heap's free pages can be
  // released at once (idle RSS, issue 10) rather than ≈ 20 s later by V8's memory reducer.
  // Our own stdout destination: with pino's, a log line the disk refused hung the process for good
  // (lib/log-destination.ts). Its held lines are written at exit, once.
  const logStream = createLogDestination(1, systemScheduler);
  process.on('exit', () => logStream.flushSync());
  const server = await startServer(config, {
    notices,
    compactHeapWhenReady: true,
    logStream,
    droppedLogLines: () => logStream.dropped,
  }).catch((error: unknown) => {
    throw error instanceof MetricsListenError
      ? listenFailure(
          { host: config.metricsHost, port: config.metricsPort ?? 0, setting: 'METRICS_' },
          error.cause,
        )
      : listenFailure({ host: config.host, port: config.port, setting: '' }, error);
  });
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    server.log.info(`${signal} received: finishing in-flight requests, then stopping`);
    // close() forces the last connections shut after the grace period; this is only the backstop
    // for a close that cannot complete (e.g. a hung dependency in the core's own close).
    // The last lines ("stopped") are written before exiting: process.exit does not wait for a
    // log write still in the thread pool.
    const exit = (code: number) => {
      void logStream.drain(LOG_DRAIN_AT_EXIT_MS).then(() => process.exit(code));
    };
    const force = setTimeout(() => {
      server.log.error('shutdown did not complete in time; exiting');
      exit(1);
    }, config.shutdownGracePeriodMs + 5000);
    force.unref();
    server.close().then(
      () => {
        server.log.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        server.log.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  server.ready.catch(async (error: unknown) => {
    // Not a dependency outage (those are retried) but a bug or a bad setting (a database that
    // refused DATABASE_URL among them): stop for good.
    server.log.fatal({ reason: describe(error) }, 'the server could not be built');
    exitWith(await databaseFailure(config, error));
  });
}

/**
 * The one line for a socket that could not listen (Node's `listen` error codes), naming the
 * listener's settings: `HOST`/`PORT` (`setting` '') or `METRICS_HOST`/`METRICS_PORT` ('METRICS_').
 */
function listenFailure(
  listener: { host: string; port: number; setting: '' | 'METRICS_' },
  error: unknown,
): unknown {
  const { host, port, setting } = listener;
  const where = `${host}:${port}`;
  switch (systemCode(error)) {
    case 'EADDRINUSE':
      return new CliFailure(
        EXIT.unavailable,
        `port ${port} is in use on ${host}: set ${setting}PORT to a free port or stop the other process`,
        { cause: error },
      );
    case 'EACCES':
      return new CliFailure(
        EXIT.unavailable,
        `not allowed to listen on ${where}: set ${setting}PORT to 1024 or above, or grant the capability to bind low ports`,
        { cause: error },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new CliFailure(
        EXIT.config,
        `${setting}HOST=${host} is not an address of this machine: set ${setting}HOST to one of its addresses (or 0.0.0.0)`,
        { cause: error },
      );
    default:
      return error;
  }
}

async function migrate(args: string[]): Promise<void> {
  parseCommand('migrate', args, {});
  const { config } = await settings();
  const { database, migrateToLatest } = await openToMigrate(config);
  try {
    const { applied, newer, indexes } = await migrateToLatest();
    console.log(applied.length === 0 ? 'Schema is up to date.' : `Applied: ${applied.join(', ')}`);
    if (newer.length > 0) console.log(`Migrated by a newer release as well: ${newer.join(', ')}`);
    if (indexes !== undefined && indexes.built.length > 0) console.log(`Built: ${indexes.built.join(', ')}`);
    if (indexes?.busy === true) console.log('Indexes: another session is building them.');
    // Not a failure of the command: queries work without the index, and every start-up tries again.
    if (indexes?.failed !== undefined)
      console.error(
        `warning: index ${indexes.failed.index} was not built (${indexes.failed.reason}); queries that use it ` +
          'read more until it is; the next start-up or `gatehouse migrate` tries again',
      );
  } catch (error) {
    throw await databaseFailure(config, error);
  } finally {
    await database.close();
  }
}

/** A connection to the database with the timeouts a migration needs, and the migration it runs. */
async function openToMigrate(config: GatehouseConfig) {
  const { openDatabase } = await import('./storage/open-database.js');
  const { migrateToLatest, MIGRATION_LOCK_TIMEOUT_MS, MIGRATION_STATEMENT_TIMEOUT_MS } = await import(
    './storage/migrate.js'
  );
  // The whole schema `serve` needs: the core's and the reference server's apps' (Dicery, clothes),
  // so servers started after `gatehouse migrate` (a rolling deploy) find nothing left to run.
  const { REFERENCE_APP_MIGRATIONS } = await import('./server.js');
  // The configured timeouts, but PostgreSQL statements as long as a migration may need (see
  // MIGRATION_STATEMENT_TIMEOUT_MS: the 5 s default failed a big table's migration as "cannot
  // reach"). SQLite's timeout is only the wait for another process's write lock: as configured.
  const database = openDatabase(config.databaseUrl, {
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    ...(config.databaseUrl.startsWith('postgres')
      ? { statementTimeoutMs: MIGRATION_STATEMENT_TIMEOUT_MS, lockTimeoutMs: MIGRATION_LOCK_TIMEOUT_MS }
      : { statementTimeoutMs: config.databaseStatementTimeoutMs }),
  });
  return { database, migrateToLatest: () => migrateToLatest(database, REFERENCE_APP_MIGRATIONS) };
}

/** Longest stdin accepted as a password: far above any passphrase, small enough to hold. */
const MAX_STDIN_BYTES = 64 * 1024;

/**
 * The password piped on stdin: its first line. A second non-empty line is refused rather than
 * joined, so `cat file | gatehouse create-user` never sets a password with a newline in it; only
 * the line break a pipe adds (and empty lines after it) are tolerated.
 */
async function readPipedPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of process.stdin) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += buffer.byteLength;
      if (size > MAX_STDIN_BYTES) {
        throw new CliFailure(
          EXIT.dataError,
          `stdin holds more than ${MAX_STDIN_BYTES} bytes: pipe only the password, on one line`,
        );
      }
      chunks.push(buffer);
    }
  } catch (error) {
    if (error instanceof CliFailure) throw error;
    throw new CliFailure(EXIT.ioError, `cannot read the password from stdin: ${describe(error)}`, {
      cause: error,
    });
  }
  const [first = '', ...rest] = Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
  if (rest.some((line) => line !== '')) {
    throw new CliFailure(
      EXIT.dataError,
      'stdin has more than one line: pipe the password alone, on the first line (no line is joined)',
    );
  }
  if (first === '') {
    throw new CliFailure(
      EXIT.noInput,
      'no password on stdin: pipe it as the first line, or run in a terminal to be prompted',
    );
  }
  return first;
}

/** Prompts on the terminal without echoing what is typed (raw mode, so nothing reaches the screen). */
function promptPassword(input: typeof process.stdin): Promise<string> {
  process.stderr.write('Password: ');
  return new Promise((resolvePassword, reject) => {
    let answer = '';
    const finish = (outcome: () => void) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      outcome();
    };
    const onData = (text: string) => {
      for (const char of text) {
        if (char === '\r' || char === '\n') {
          const password = answer;
          return finish(() =>
            password === ''
              ? reject(new CliFailure(EXIT.noInput, 'no password typed: type one, then Enter'))
              : resolvePassword(password),
          );
        }
        if (char === '\u0003' || char === '\u0004') {
          return finish(() => reject(new CliFailure(EXIT.noInput, 'cancelled: no account was created')));
        }
        if (char === '\u007f' || char === '\b') answer = Array.from(answer).slice(0, -1).join('');
        else if (char >= ' ') answer += char;
      }
    };
    input.setEncoding('utf8');
    input.setRawMode(true);
    input.on('data', onData);
    input.resume();
  });
}

/** Codes of an account the core refused because of what was asked, not because it failed. */
const REFUSED: ReadonlySet<ErrorCode> = new Set([
  'VALIDATION_FAILED',
  'BAD_REQUEST',
  'WEAK_PASSWORD',
  'EMAIL_TAKEN',
  'LAST_SUPER_ADMIN',
]);

async function createUser(args: string[]): Promise<void> {
  const { values } = parseCommand('create-user', args, {
    email: { type: 'string' },
    role: { type: 'string' },
    name: { type: 'string' },
  });
  const role = values.role ?? 'user';
  if (values.email === undefined) throw usage('create-user needs --email');
  if (!isRole(role)) throw usage(`create-user: --role ${role} is not a role; use user, admin or super_admin`);
  const { config, apps } = await settings();
  const password = process.stdin.isTTY ? await promptPassword(process.stdin) : await readPipedPassword();
  const { createGatehouse } = await import('./gatehouse.js');
  const gatehouse = await createGatehouse(config, { settings: apps, ...COMMAND_CORE }).catch(
    async (error: unknown) => {
      throw await databaseFailure(config, error);
    },
  );
  try {
    const user = await gatehouse.users.register({
      email: values.email,
      password,
      fullName: values.name,
      role,
      // The operator vouches for the address: the account may set up a second factor at once
      // (second factors need a proved address: red team 2026-12d I4).
      emailVerified: true,
    });
    console.log(`Created ${user.role} ${user.email} (id ${user.id})`);
  } catch (error) {
    if (error instanceof GatehouseError && REFUSED.has(error.code)) {
      throw new CliFailure(EXIT.dataError, `account not created: ${refusalText(error)}`, { cause: error });
    }
    throw await databaseFailure(config, error);
  } finally {
    await gatehouse.close();
  }
}

/**
 * `reset-mfa --email E`: removes every second factor of an account (authenticator app, recovery
 * codes, passkeys) and ends its sessions, on the operator's word, as an admin's reset does
 * (`mfa_reset` audited with no actor, the owner mailed `second_factor_removed`). The way back for
 * an account nobody can reset over HTTP: a lone super admin who lost their phone, or whose codes
 * are refused at MFA_MAX_CONSECUTIVE_FAILURES with no passkey and no device used before (a
 * password reset by mail does not lift that, by design). Shell access to the server is the proof.
 */
async function resetMfa(args: string[]): Promise<void> {
  const { values } = parseCommand('reset-mfa', args, { email: { type: 'string' } });
  if (values.email === undefined) throw usage('reset-mfa needs --email');
  const { config, apps } = await settings();
  const { createGatehouse } = await import('./gatehouse.js');
  const { gatehouseCore } = await import('./gatehouse-core.js');
  const { normalizeEmail } = await import('./accounts/normalize-email.js');
  const email = normalizeEmail(values.email);
  if (email === undefined) throw usage(`reset-mfa: ${values.email} is not an email address`);
  const gatehouse = await createGatehouse(config, { settings: apps, ...COMMAND_CORE }).catch(
    async (error: unknown) => {
      throw await databaseFailure(config, error);
    },
  );
  try {
    const core = gatehouseCore(gatehouse);
    const user = await core.users.findUserByEmailKey(email.key).catch(async (error: unknown) => {
      throw await databaseFailure(config, error);
    });
    if (user === undefined)
      throw new CliFailure(EXIT.dataError, `no account has the address ${values.email}`);
    try {
      // The factors and every session of the account, in one transaction; the sessions end even
      // with nothing left to remove (a retry after a failure here).
      const { removed, endedSessions: ended } = await core.mfa.reset(user.id, {
        actorId: null,
        targetId: user.id,
        details: { via: 'cli' },
      });
      console.log(
        `${removed ? 'Removed the second factors of' : 'No second factor to remove for'} ${user.email}; ` +
          `ended ${ended} session${ended === 1 ? '' : 's'}` +
          // Stored with the change; the servers mail it (this command sends no mail of its own).
          (removed ? '; the server mails the owner a notice' : ''),
      );
    } catch (error) {
      throw await databaseFailure(config, error);
    }
  } finally {
    await gatehouse.close();
  }
}

async function rotateKeys(args: string[]): Promise<void> {
  const { values } = parseCommand('rotate-keys', args, { revoke: { type: 'string' } });
  const { config, apps } = await settings();
  // Under HS256 the access-token key is SECRET_KEY itself (rotated by setting a new one with the
  // old as SECRET_KEY_PREVIOUS); what rotates here is the ES256 keyring that signs ID tokens.
  const idTokensOnly = config.jwtAlgorithm === 'HS256';
  const { createGatehouseCore } = await import('./gatehouse.js');
  const { KEY_RELOAD_INTERVAL_SECONDS } = await import('./tokens/keyring.js');
  const { revokeSigningKey, rotateSigningKeys } = await import('./tokens/rotate-keys.js');
  const { SigningKeyError } = await import('./tokens/signing-key-error.js');
  const { createSigningKeyStore } = await import('./storage/signing-key-store.js');
  const keyFailure = async (error: unknown) =>
    // A key set this SECRET_KEY cannot open, an unknown KID, a rotation already waiting: the
    // message names the fix.
    error instanceof SigningKeyError
      ? new CliFailure(EXIT.config, `rotate-keys: ${error.message}`, { cause: error })
      : databaseFailure(config, error);
  // The core's start-up provisions the key set first (imports DATA_DIR/signing-keys.json once),
  // so a rotation run before any server started on this database still builds on the old keys.
  const gatehouse = await createGatehouseCore(config, { settings: apps, ...COMMAND_CORE }).catch(
    async (error: unknown) => {
      throw await keyFailure(error);
    },
  );
  try {
    // The ID-token keyring is made on first use; provisioned now, so that the rotation's next key
    // has a current one to follow (a lone next key would leave nothing signing until it activates).
    if (idTokensOnly) await gatehouse.idTokenKeys.keyring();
    const store = createSigningKeyStore(gatehouse.database.db);
    const { defaultAlgorithm, algorithms } = gatehouse.idTokenKeys;
    // The default key set always; another ID-token algorithm's (RS256 for the clients that chose
    // it) once it has keys: one that has none yet is created, fresh, on its first use.
    const kidsByAlgorithm = new Map<typeof defaultAlgorithm, string[]>();
    for (const algorithm of algorithms) {
      const kids = (await store.listKeys(algorithm)).map((key) => key.kid);
      if (algorithm === defaultAlgorithm || kids.length > 0) kidsByAlgorithm.set(algorithm, kids);
    }
    const targets = [...kidsByAlgorithm.keys()];
    const what = (algorithm: string) =>
      algorithm !== defaultAlgorithm
        ? `${algorithm} ID-token signing key`
        : idTokensOnly
          ? 'ID-token signing key'
          : 'signing key';
    const common = {
      database: gatehouse.database,
      secret: config.secretKey,
      now: Date.now(),
      // Keep retired keys for longer than any token they signed can live (the apps' declared tokens included).
      retentionSeconds: gatehouse.keyRetentionSeconds,
    };
    if (values.revoke !== undefined) {
      const kid = values.revoke;
      // The set that holds the kid (read above); the default's refusal names an unknown one.
      const algorithm =
        targets.find((candidate) => kidsByAlgorithm.get(candidate)?.includes(kid)) ?? defaultAlgorithm;
      const { revoked, replacement } = await revokeSigningKey({ ...common, algorithm, kid });
      console.log(
        `Revoked ${what(algorithm)} ${revoked}: its tokens stop verifying on every instance within ${KEY_RELOAD_INTERVAL_SECONDS} s.`,
      );
      if (replacement !== undefined) console.log(`Key ${replacement} signs from now on.`);
      return;
    }
    // Each key set on its own: one refused (a next key still waiting) must not keep the others
    // from rotating, or a second run, refused by the first set, could never reach them.
    const refusals: InstanceType<typeof SigningKeyError>[] = [];
    for (const algorithm of targets) {
      try {
        const { kid, activatesAt, removed } = await rotateSigningKeys({ ...common, algorithm });
        console.log(
          `New ${what(algorithm)} ${kid}: in every instance's JWKS within ${KEY_RELOAD_INTERVAL_SECONDS} s, signing from ${new Date(activatesAt).toISOString()}.` +
            (removed.length > 0 ? ` Removed expired keys: ${removed.join(', ')}.` : ''),
        );
      } catch (error) {
        if (!(error instanceof SigningKeyError)) throw error;
        refusals.push(
          targets.length === 1 ? error : new SigningKeyError(error.code, `${algorithm}: ${error.message}`),
        );
      }
    }
    // The last refusal is the command's failure (printed as such); any before it are told first.
    const last = refusals.pop();
    for (const refusal of refusals) console.error(`gatehouse: rotate-keys: ${refusal.message}`);
    if (last !== undefined) throw last;
  } catch (error) {
    throw await keyFailure(error);
  } finally {
    await gatehouse.close();
  }
}

/** Codes of a client change the core refused because of what was asked. */
const CLIENT_REFUSED: ReadonlySet<string> = new Set([
  'VALIDATION_FAILED',
  'CLIENT_NOT_FOUND',
  'TOO_MANY_CLIENTS',
]);

/**
 * `clients create|list|delete`: the operator's way to manage OAuth clients (issue 15), the same
 * service as the admin routes. Output is JSON on stdout, so scripts can read `client_id` and
 * `client_secret` with `jq`; the secret is printed once and stored only as a hash.
 */
async function clients(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'create') {
    const { values } = parseCommand('clients create', rest, {
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      confidential: { type: 'boolean' },
      grant: { type: 'string', multiple: true },
      scope: { type: 'string', multiple: true },
      'id-token-alg': { type: 'string' },
    });
    const { name } = values;
    if (name === undefined) throw usage('clients create needs --name');
    return withClients('created', async (service, clientView, config) => {
      const created = await service.create(
        {
          name,
          redirectUris: values['redirect-uri'],
          postLogoutRedirectUris: values['post-logout-redirect-uri'],
          confidential: values.confidential === true,
          grantTypes: values.grant,
          scopes: values.scope,
          idTokenSignedResponseAlg: values['id-token-alg'],
        },
        { actorId: null },
      );
      // As the admin route: an app whose origin CORS_CREDENTIALED_ORIGINS trusts gets the person's
      // cookie session, so the operator is told (in the JSON, and on stderr for a person).
      const { credentialedAppOrigins, credentialedAppWarning } = await import(
        './oauth/credentialed-app-origins.js'
      );
      const origins = credentialedAppOrigins(created.client, config.corsCredentialedOrigins);
      const warning = origins.length === 0 ? undefined : credentialedAppWarning(created.client, origins);
      if (warning !== undefined) console.error(`warning: ${warning}`);
      const output = {
        ...clientView(created.client),
        ...(created.clientSecret === undefined ? {} : { client_secret: created.clientSecret }),
        ...(warning === undefined ? {} : { warnings: [warning] }),
      };
      console.log(JSON.stringify(output, null, 2));
    });
  }
  if (sub === 'list') {
    parseCommand('clients list', rest, {});
    return withClients('listed', async (service, clientView) => {
      console.log(JSON.stringify((await service.list()).map(clientView), null, 2));
    });
  }
  if (sub === 'disable' || sub === 'enable') {
    const [clientId] = parseCommand(`clients ${sub}`, rest, {}, 1).positionals;
    if (clientId === undefined) throw usage(`clients ${sub} needs the CLIENT_ID`);
    return withClients(`${sub}d`, async (service, clientView) => {
      const client = await service.setDisabled(clientId, sub === 'disable', { actorId: null });
      console.log(JSON.stringify(clientView(client), null, 2));
    });
  }
  if (sub === 'delete') {
    const [clientId] = parseCommand('clients delete', rest, {}, 1).positionals;
    if (clientId === undefined) throw usage('clients delete needs the CLIENT_ID');
    return withClients('deleted', async (service) => {
      await service.remove(clientId, { actorId: null });
      console.log(`Deleted OAuth client ${clientId}`);
    });
  }
  throw usage(
    sub === undefined
      ? 'clients needs create, list, disable, enable or delete'
      : `clients: unknown command ${JSON.stringify(sub)}`,
  );
}

/** Runs `work` with the core's client service, mapping refusals to exit 65 and outages to 69. */
async function withClients(
  verb: string,
  work: (
    service: import('./oauth/oauth-clients.js').OAuthClients,
    clientView: typeof import('./oauth/client-view.js').clientView,
    config: GatehouseConfig,
  ) => Promise<void>,
): Promise<void> {
  const { config, apps } = await settings();
  const { createGatehouseCore } = await import('./gatehouse.js');
  const { clientView } = await import('./oauth/client-view.js');
  // A client may list the reference apps' scopes (`clothes:read`, `rooms:host`) as the server offers them.
  const [{ clothesScopes }, { diceryScopes }] = await Promise.all([
    import('./apps/clothes/scopes.js'),
    import('./apps/dicery/scopes.js'),
  ]);
  const scopes = { ...clothesScopes, ...diceryScopes };
  const gatehouse = await createGatehouseCore(config, { scopes, settings: apps, ...COMMAND_CORE }).catch(
    async (error: unknown) => {
      throw await databaseFailure(config, error);
    },
  );
  try {
    await work(gatehouse.oauthClients, clientView, config);
  } catch (error) {
    if (error instanceof GatehouseError && CLIENT_REFUSED.has(error.code)) {
      throw new CliFailure(EXIT.dataError, `client not ${verb}: ${refusalText(error)}`, { cause: error });
    }
    throw await databaseFailure(config, error);
  } finally {
    await gatehouse.close();
  }
}

/** Largest log file `verify-room-log` reads: far above a room's rolls, far below the heap. */
const MAX_ROOM_LOG_BYTES = 64 * 1024 * 1024;

/** Reads a JSON file for `verify-room-log`; a missing, huge or non-JSON file is a clear failure. */
async function readJsonFile(file: string): Promise<unknown> {
  const { readFile, stat } = await import('node:fs/promises');
  const size = await stat(file).then(
    (info) => info.size,
    (error: unknown) => {
      throw new CliFailure(EXIT.noInput, `cannot read ${file}: ${systemCode(error) ?? String(error)}`);
    },
  );
  if (size > MAX_ROOM_LOG_BYTES) {
    throw new CliFailure(
      EXIT.dataError,
      `${file} is larger than ${MAX_ROOM_LOG_BYTES} bytes: not a room log`,
    );
  }
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    throw new CliFailure(EXIT.ioError, `cannot read ${file}: ${systemCode(error) ?? String(error)}`);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new CliFailure(EXIT.dataError, `${file} is not JSON`);
  }
}

/** `verify-room-log FILE [--keys KEYS]`: checks a Dicery room log offline (issue 14, item 7). */
async function verifyRoomLogFile(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand('verify-room-log', args, { keys: { type: 'string' } }, 1);
  const [file] = positionals;
  if (file === undefined) throw usage('verify-room-log needs the FILE to check');
  const { verifyRoomLog } = await import('./apps/dicery/shared/room-log.js');
  const document = await readJsonFile(file);
  let trustedKeys: Parameters<typeof verifyRoomLog>[1] = {};
  if (values.keys !== undefined) {
    const published = await readJsonFile(values.keys);
    const keys =
      typeof published === 'object' && published !== null && 'keys' in published ? published.keys : undefined;
    if (!Array.isArray(keys)) throw new CliFailure(EXIT.dataError, `${values.keys} holds no "keys" list`);
    trustedKeys = { trustedKeys: keys };
  }
  const verdict = await verifyRoomLog(document, trustedKeys);
  if (!verdict.ok) {
    throw new CliFailure(
      EXIT.dataError,
      verdict.problems.map(
        (p) =>
          `NOT VERIFIED: entry ${p.index}${p.seq === null ? '' : ` (roll ${p.seq})`}: ${p.reason}: ${p.message}`,
      ),
    );
  }
  console.log(
    [
      `verified ${verdict.entries} entries: unchanged, none removed or reordered between the first and the last`,
      verdict.fromGenesis
        ? "the first is the room's first roll"
        : "the first is NOT the room's first roll (earlier entries were not checked)",
      `head ${verdict.head} (compare it with a hash you saw live to detect a cut-off tail)`,
      `${verdict.revealed} revealed secret rolls match their commitments; ${verdict.secret} secret rolls still hidden`,
    ].join('\n'),
  );
}

/** The SQLite file of `databaseUrl`, which must exist (66 otherwise: a DATA_DIR or URL typo). */
function requireSqliteFile(databaseUrl: string): string {
  const file = databaseUrl.slice('sqlite:'.length);
  if (file === ':memory:' || !existsSync(file)) {
    throw new CliFailure(
      EXIT.noInput,
      `no database at ${file}: check DATABASE_URL and DATA_DIR, or run gatehouse migrate to create it`,
    );
  }
  return file;
}

/**
 * `revoke-all`: the step after restoring a backup (red-team: a restore brought back a key revoked
 * as compromised, and the sessions ended since). Every signing key goes and a fresh one signs at
 * once, then every session ends (refresh tokens, cookies, access tokens of either strategy), so
 * nothing issued before verifies. A command to run after any restore rather than a `restore FILE`
 * that copies the file too: PostgreSQL is restored with pg_restore, a VM or volume snapshot with
 * neither, and one step after all of them is one thing to remember.
 */
async function revokeAll(args: string[]): Promise<void> {
  const { values } = parseCommand('revoke-all', args, { 'new-secret': { type: 'boolean' } });
  // It seals the fresh keys under SECRET_KEY and records it as the one every instance must use: a
  // secret generated here, on a host without the servers' one, would lock every instance out.
  const { config, apps } = await settings({
    refuseGeneratedSecret:
      "revoke-all: SECRET_KEY is not set and DATA_DIR holds no secret.key: set SECRET_KEY to the servers' secret " +
      '(or to the new one replacing a leaked one); revoke-all seals the fresh keys under it and every instance must then use it',
  });
  // Never a new empty database in a mistyped DATA_DIR: that would revoke nothing and say it did.
  if (config.databaseUrl.startsWith('sqlite:')) requireSqliteFile(config.databaseUrl);
  const { revokeAll: revokeEverything, ClockSkewError } = await import('./sessions/revoke-all.js');
  const { idTokenAlgorithms } = await import('./tokens/id-token-keys.js');
  const { KEY_RELOAD_INTERVAL_SECONDS } = await import('./tokens/keyring.js');
  const { SigningKeyError } = await import('./tokens/signing-key-error.js');
  const { createGatehouseCore } = await import('./gatehouse.js');
  // Keys, cut-off, sessions and the audit entry in one transaction, over the migration connection
  // (its statement timeout allows a whole site's sessions) and before any core starts: a core
  // needs its current key to open, and a backup's keys may be sealed under a SECRET_KEY replaced since.
  const { database, migrateToLatest } = await openToMigrate(config);
  let outcome: Awaited<ReturnType<typeof revokeEverything>>;
  try {
    // A backup from an older version: its schema first, as `serve` would at start-up.
    await migrateToLatest();
    // It makes its secret the one every instance must use, and running instances on another one
    // then refuse every token (red-team 2026-12r R4): a mistyped SECRET_KEY here would take them
    // all out at once. Replacing the secret is said out loud (red-team 2026-12r S4).
    if (values['new-secret'] !== true) {
      const { precheckSharedSecretKey } = await import('./storage/secret-key-check.js');
      try {
        await precheckSharedSecretKey(database.db, config.secretKey, config.secretKeyPrevious);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        throw new CliFailure(
          EXIT.config,
          "revoke-all: SECRET_KEY is not the secret this database's instances use: to replace it (it leaked), " +
            'run again with --new-secret (every instance must then be restarted with it); otherwise set the right one',
        );
      }
    }
    outcome = await revokeEverything({
      database,
      algorithms: idTokenAlgorithms(config.jwtAlgorithm),
      secret: config.secretKey,
      now: Date.now(),
    });
  } catch (error) {
    if (error instanceof ClockSkewError)
      throw new CliFailure(EXIT.config, `revoke-all: ${error.message}`, { cause: error });
    throw error instanceof SigningKeyError
      ? new CliFailure(EXIT.unavailable, `revoke-all: ${error.message}`, { cause: error })
      : await databaseFailure(config, error);
  } finally {
    await database.close();
  }
  const { keys, sessions } = outcome;
  const listed = (list: readonly { algorithm: string; kid: string }[]) =>
    list.map(({ algorithm, kid }) => `${algorithm} ${kid}`).join(', ');
  console.log(
    `Revoked ${keys.revoked.length} signing key${keys.revoked.length === 1 ? '' : 's'}` +
      (keys.revoked.length > 0 ? ` (${listed(keys.revoked)})` : '') +
      `; signing from now on: ${listed(keys.replacements)}.`,
  );
  console.log(
    `Ended ${sessions.length} session${sessions.length === 1 ? '' : 's'}: every user signs in again; ` +
      `no access token issued before ${new Date(outcome.notBefore).toISOString()} is accepted.`,
  );
  // Then the broadcast, through a core's bus: running instances (with Redis) drop the sessions and
  // take the cut-off at once. Everything is committed already, so a failure here only delays it.
  const told =
    `Running instances drop the old keys within ${KEY_RELOAD_INTERVAL_SECONDS} s and the sessions ` +
    'at their next revocation reload (REVOCATION_RELOAD_INTERVAL)';
  try {
    const gatehouse = await createGatehouseCore(config, { settings: apps, ...COMMAND_CORE });
    try {
      await gatehouse.sessions.announceRevokeAll(outcome);
    } finally {
      await gatehouse.close();
    }
    console.log(`${told}, or at once with Redis.`);
  } catch (error) {
    console.error(
      `revoke-all: done, but the running instances could not be told (${error instanceof Error ? error.message : String(error)}). ${told}.`,
    );
  }
}

async function backup(args: string[]): Promise<void> {
  const { positionals } = parseCommand('backup', args, {}, 1);
  const [file] = positionals;
  if (file === undefined) throw usage('backup needs the FILE to write');
  const { config } = await settings();
  if (!config.databaseUrl.startsWith('sqlite:')) {
    throw new CliFailure(
      EXIT.config,
      'backup copies the embedded SQLite database only; for PostgreSQL run ' +
        'pg_dump --format=custom --file=gatehouse.dump "$DATABASE_URL" and restore into an empty database with ' +
        'pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" gatehouse.dump',
    );
  }
  const source = requireSqliteFile(config.databaseUrl);
  // Checked here for a clear code; backupDatabase checks again atomically (`wx`) against a race.
  if (existsSync(file)) throw new CliFailure(EXIT.cantCreate, `${file} exists: choose a new file name`);
  const { backupDatabase } = await import('./storage/backup-database.js');
  const { pages } = await backupDatabase(config.databaseUrl, file).catch((error: unknown) => {
    const code = systemCode(error);
    if (
      code === 'ENOENT' ||
      code === 'EACCES' ||
      code === 'EPERM' ||
      code === 'EROFS' ||
      code === 'ENOTDIR'
    ) {
      throw new CliFailure(
        EXIT.cantCreate,
        `cannot create ${file} (${code}): choose a file in an existing directory this user can write`,
        { cause: error },
      );
    }
    throw new CliFailure(EXIT.ioError, `backup failed, no copy was kept: ${describe(error)}`, {
      cause: error,
    });
  });
  console.log(`Backed up ${source} to ${file} (${pages} pages).`);
}

async function importUsers(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(
    'import-users',
    args,
    { continue: { type: 'boolean' }, format: { type: 'string' } },
    1,
  );
  const [file] = positionals;
  if (file === undefined) throw usage('import-users needs the FILE to read');
  const { formatOfFileName, readImportRecords } = await import('./accounts/read-import-file.js');
  if (values.format !== undefined && values.format !== 'csv' && values.format !== 'jsonl') {
    throw usage(`import-users: --format ${values.format} is not a format; use csv or jsonl`);
  }
  const format = values.format ?? formatOfFileName(file);
  if (format === undefined) {
    throw usage(`import-users: cannot tell the format of ${file}; name it .csv or .jsonl, or pass --format`);
  }
  let size: number;
  try {
    const stats = statSync(file);
    if (!stats.isFile()) throw new CliFailure(EXIT.noInput, `${file} is not a file: give the file to import`);
    size = stats.size;
  } catch (error) {
    if (error instanceof CliFailure) throw error;
    throw new CliFailure(
      EXIT.noInput,
      `cannot read ${file} (${systemCode(error) ?? describe(error)}): check the path`,
      {
        cause: error,
      },
    );
  }
  const { config, apps } = await settings();
  const { createGatehouseCore } = await import('./gatehouse.js');
  const { createProgressLine } = await import('./lib/progress-line.js');
  const gatehouse = await createGatehouseCore(config, { settings: apps, ...COMMAND_CORE }).catch(
    async (error: unknown) => {
      throw await databaseFailure(config, error);
    },
  );
  const input = createReadStream(file);
  // A failure of the file (not of the database) is an I/O error: told apart by where it came from.
  let readError: unknown;
  input.on('error', (error) => {
    readError = error;
  });
  const progress = createProgressLine(process.stderr);
  const startedAt = Date.now();
  const label = `importing ${file}`;
  const show = (done: number, force = false) =>
    progress.update(
      { label, done, bytes: { read: input.bytesRead, total: size }, elapsedMs: Date.now() - startedAt },
      force,
    );
  try {
    const result = await gatehouse.userImport
      .importUsers(readImportRecords(input, format), {
        continueOnError: values.continue === true,
        onProblem: (problem) => progress.print(`${file}:${problem.line}: ${problem.reason}\n`),
        onProgress: (done) => show(done),
      })
      .catch(async (error: unknown) => {
        if (error instanceof GatehouseError && error.code === 'VALIDATION_FAILED') {
          throw new CliFailure(EXIT.dataError, `${file}: ${error.message}: nothing was imported`, {
            cause: error,
          });
        }
        if (readError !== undefined) {
          throw new CliFailure(
            EXIT.ioError,
            `reading ${file} failed (${describe(readError)}): nothing was imported`,
            { cause: readError },
          );
        }
        throw await databaseFailure(config, error);
      });
    progress.clear();
    const rows = (count: number) => `${count} ${count === 1 ? 'row' : 'rows'}`;
    if (!result.committed) {
      const read = result.stoppedEarly ? `, stopped reading after the first ${result.problems}` : '';
      throw new CliFailure(
        EXIT.dataError,
        `nothing was imported: ${rows(result.problems)} refused${read} (listed above as ${file}:LINE): fix them, or rerun with --continue to import the others`,
      );
    }
    const skipped = result.problems === 0 ? '' : `; skipped ${rows(result.problems)} (listed above)`;
    console.log(`Imported ${result.imported} of ${rows(result.records)} from ${file}${skipped}.`);
  } finally {
    progress.clear();
    input.destroy();
    await gatehouse.close();
  }
}

/**
 * The database's failures as the operator's: unreachable → 69 (start it or fix the address);
 * refused credentials or a missing database → 78 (fix DATABASE_URL); anything else unchanged.
 */
async function databaseFailure(config: GatehouseConfig, error: unknown): Promise<unknown> {
  if (error instanceof CliFailure || error instanceof ConfigError) return error;
  const { isDatabaseUnavailable } = await import('./storage/open-database.js');
  const where = redactUrl(config.databaseUrl);
  const full = diskFullFailure(error);
  if (full !== undefined) return full;
  const code = innermostCode(error);
  // Before the outage check, which counts a read-only file too (a server answers 503 and waits):
  // for a command, a file it cannot write is a setting to fix, not a wait.
  if (code === 'SQLITE_CANTOPEN' || code?.startsWith('SQLITE_READONLY')) {
    return new CliFailure(
      EXIT.cantCreate,
      `cannot open ${where} for writing (${code}): set DATABASE_URL or DATA_DIR to a writable place`,
      { cause: error },
    );
  }
  if (isDatabaseUnavailable(error)) {
    return new CliFailure(
      EXIT.unavailable,
      `cannot reach the database at ${where} (${describe(error)}): start it, or set DATABASE_URL to one that answers`,
      { cause: error },
    );
  }
  // A TLS handshake that DATABASE_URL asked for and the server cannot give (no TLS there, an
  // untrusted or mismatched certificate) is a setting to fix, not a bug to report (red-team
  // 2026-12q Q1: `sslmode=require` exited 70 "internal error").
  const refusal = databaseRefusal(error);
  if (refusal === 'tls') {
    return new CliFailure(
      EXIT.config,
      `TLS to the database at ${where} failed (${describe(error)}): fix DATABASE_URL (its host must match ` +
        "the certificate; sslmode=disable only on a trusted network), or trust the server's CA with " +
        'NODE_EXTRA_CA_CERTS=ca.pem',
      { cause: error },
    );
  }
  if (refusal === 'privilege') {
    return new CliFailure(
      EXIT.config,
      `the database at ${where} refused: ${describe(error)}; connect as a role that may create tables ` +
        "there (the database's owner, or one granted CREATE on its schema: PostgreSQL 15 no longer " +
        'grants it on public to everyone)',
      { cause: error },
    );
  }
  if (refusal === 'refused') {
    return new CliFailure(
      EXIT.config,
      `the database at ${where} refused: ${describe(error)}; fix DATABASE_URL`,
      {
        cause: error,
      },
    );
  }
  return error;
}

/** `DATABASE_URL` without its password, for messages. */
function redactUrl(url: string): string {
  if (!url.startsWith('postgres')) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    // pg also reads credentials from the query (operator red-team): those go, the rest (a socket
    // `host=`, `sslmode=`) stays to tell the operator where it tried.
    for (const name of ['password', 'sslpassword', 'sslkey', 'sslcert']) {
      if (parsed.searchParams.has(name)) parsed.searchParams.set(name, '***');
    }
    return parsed.toString();
  } catch {
    return 'DATABASE_URL';
  }
}

/** Node's system error code (`EADDRINUSE`, `ENOTDIR`…) of `error` itself. */
function systemCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** The `code` of the deepest error in the `cause` chain that has one. */
function innermostCode(error: unknown): string | undefined {
  let found: string | undefined;
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth += 1) {
    found = systemCode(current) ?? found;
    current = current.cause;
  }
  return found;
}

/** One line for an error: its message and the causes behind it. */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current instanceof Error && parts.length < 5) {
    const message = current.message || current.name;
    if (!parts.includes(message)) parts.push(message);
    current = current.cause;
  }
  return (parts.length > 0 ? parts.join(': ') : String(error)).replaceAll(/\s*\n\s*/g, ' ');
}

/** Codes of a write refused for want of room: the disk, the user's quota, the file size limit. */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'SQLITE_FULL']);

/**
 * A write that found no room, as one line (exit 74) instead of "internal error … report it": the
 * operator frees space and starts again. Nothing half-written is left behind (the secret file
 * appears whole or not at all, a migration commits whole or not at all).
 */
function diskFullFailure(error: unknown): CliFailure | undefined {
  const code = innermostCode(error);
  if (code === undefined || !DISK_FULL_CODES.has(code)) return undefined;
  return new CliFailure(
    EXIT.ioError,
    `no room to write (${code}: ${describe(error)}): free space on the disk holding DATA_DIR and the database, then retry`,
    { cause: error },
  );
}

/** The lines and exit code an error ends the command with. */
function toFailure(error: unknown): CliFailure {
  if (error instanceof CliFailure) return error;
  const full = diskFullFailure(error);
  if (full !== undefined) return full;
  if (error instanceof ConfigError) {
    return new CliFailure(
      EXIT.config,
      error.problems.map((problem) => `invalid setting: ${problem}`),
      { cause: error },
    );
  }
  if (
    error instanceof GatehouseError &&
    (error.code === 'SERVICE_UNAVAILABLE' || error.code === 'DATABASE_UNAVAILABLE')
  ) {
    return new CliFailure(EXIT.unavailable, `${error.message}: retry shortly`, { cause: error });
  }
  return new CliFailure(
    EXIT.software,
    `internal error: ${describe(error)} (rerun with --debug for the stack trace and report it)`,
    { cause: error },
  );
}

let debug = false;

/** Prints the failure's line(s) on stderr (the stack only with --debug) and exits with its code. */
function exitWith(error: unknown): never {
  const failure = toFailure(error);
  for (const line of failure.lines) process.stderr.write(`gatehouse: ${line}\n`);
  if (debug) console.error(failure.cause ?? failure);
  process.exit(failure.exitCode);
}

async function main(argv: string[]): Promise<void> {
  debug = argv.includes('--debug');
  const args = argv.filter((arg) => arg !== '--debug');
  if (args.includes('--help') || args.includes('-h')) {
    console.log(HELP);
    return;
  }
  const [command, ...rest] = args;
  switch (command) {
    case undefined:
      // `gatehouse` alone is a usage error, not a server: a typo'd script should fail loudly
      // rather than start listening. `serve` is explicit (npm start passes it).
      process.stderr.write(`${HELP}\n`);
      process.exit(EXIT.usage);
      return;
    case 'serve':
      return serve(rest);
    case 'migrate':
      return migrate(rest);
    case 'create-user':
      return createUser(rest);
    case 'reset-mfa':
      return resetMfa(rest);
    case 'rotate-keys':
      return rotateKeys(rest);
    case 'backup':
      return backup(rest);
    case 'revoke-all':
      return revokeAll(rest);
    case 'import-users':
      return importUsers(rest);
    case 'clients':
      return clients(rest);
    case 'verify-room-log':
      return verifyRoomLogFile(rest);
    case 'help':
      console.log(HELP);
      return;
    default:
      throw usage(
        command.startsWith('-') ? `unknown option ${command}` : `unknown command ${JSON.stringify(command)}`,
      );
  }
}

main(process.argv.slice(2)).catch(exitWith);

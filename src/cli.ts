#!/usr/bin/env node
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { isRole } from './accounts/roles.js';
import { resolveConfig } from './config/resolve-config.js';
import { ConfigError, GatehouseError } from './errors.js';
import { createGatehouse } from './gatehouse.js';
import { startServer } from './start-server.js';
import { backupDatabase } from './storage/backup-database.js';
import { migrateToLatest } from './storage/migrate.js';
import { openDatabase } from './storage/open-database.js';
import { KEY_RELOAD_INTERVAL_SECONDS, retiredKeyRetentionSeconds } from './tokens/keyring.js';
import { revokeSigningKey, rotateSigningKeys } from './tokens/rotate-keys.js';
import { SigningKeyError } from './tokens/signing-key-error.js';

const USAGE = `Usage: gatehouse <command>

Commands:
  serve                                   run the server (default)
  migrate                                 bring the database schema up to date
  create-user --email E [--role R] [--name N]
                                          create an account; the password is read from stdin
                                          (or prompted for); R is user, admin or super_admin
  rotate-keys [--revoke KID]              add a next signing key, or withdraw a key at once (EdDSA, ES256, RS256)
  backup FILE                             copy the SQLite database to FILE, safely while servers run

Settings come from the environment and .env; see README.md.`;

async function serve(): Promise<void> {
  const { config, notices } = resolveConfig();
  // Listens at once and starts the core in the background (retrying while the database is down),
  // so a database outage at start-up is not a crash loop; see startServer.
  const server = await startServer(config, { notices });
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    server.log.info(`${signal} received: finishing in-flight requests, then stopping`);
    // close() forces the last connections shut after the grace period; this is only the backstop
    // for a close that cannot complete (e.g. a hung dependency in the core's own close).
    const force = setTimeout(() => {
      server.log.error('shutdown did not complete in time; exiting');
      process.exit(1);
    }, config.shutdownGracePeriodMs + 5000);
    force.unref();
    server.close().then(
      () => {
        server.log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        server.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  server.ready.catch((error: unknown) => {
    // Not a dependency outage (those are retried) but a bug or a bad setting: stop for good.
    server.log.fatal({ err: error }, 'the server could not be built');
    process.exit(1);
  });
}

async function migrate(): Promise<void> {
  const { config } = resolveConfig();
  const database = openDatabase(config.databaseUrl);
  try {
    const { applied } = await migrateToLatest(database);
    console.log(applied.length === 0 ? 'Schema is up to date.' : `Applied: ${applied.join(', ')}`);
  } finally {
    await database.close();
  }
}

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    let data = '';
    for await (const chunk of process.stdin) data += chunk;
    // Only the line break a shell pipe adds is removed; other whitespace is part of the password.
    return data.replace(/\r?\n$/, '');
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  // Hide typed characters: echo nothing after the prompt.
  const output = rl as unknown as { _writeToOutput: (text: string) => void; output: NodeJS.WriteStream };
  process.stdout.write('Password: ');
  output._writeToOutput = () => {};
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stdout.write('\n');
  return answer;
}

async function createUser(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: 'string' },
      role: { type: 'string', default: 'user' },
      name: { type: 'string' },
    },
  });
  if (values.email === undefined) throw new UsageError('create-user needs --email');
  if (!isRole(values.role)) throw new UsageError('--role must be user, admin or super_admin');
  const password = await readPassword();
  const { config } = resolveConfig();
  const gatehouse = await createGatehouse(config);
  try {
    const user = await gatehouse.accounts.register({
      email: values.email,
      password,
      fullName: values.name,
      role: values.role,
    });
    console.log(`Created ${user.role} ${user.email} (id ${user.id})`);
  } finally {
    await gatehouse.close();
  }
}

async function rotateKeys(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { revoke: { type: 'string' } } });
  const { config } = resolveConfig();
  if (config.jwtAlgorithm === 'HS256') {
    throw new UsageError(
      'rotate-keys needs JWT_ALG=EdDSA, ES256 or RS256 (HS256: set a new SECRET_KEY and the old one as SECRET_KEY_PREVIOUS)',
    );
  }
  // The core's start-up provisions the key set first (imports DATA_DIR/signing-keys.json once),
  // so a rotation run before any server started on this database still builds on the old keys.
  const gatehouse = await createGatehouse(config).catch((error: unknown) => {
    // A key set this SECRET_KEY cannot open: the message names the fix (SECRET_KEY_PREVIOUS).
    throw error instanceof SigningKeyError ? new CommandError(`rotate-keys: ${error.message}`) : error;
  });
  try {
    const common = {
      database: gatehouse.database,
      algorithm: config.jwtAlgorithm,
      secret: config.secretKey,
      now: Date.now(),
      // Keep retired keys for longer than any token they signed can live (room tokens included).
      retentionSeconds: retiredKeyRetentionSeconds(config),
    };
    if (values.revoke !== undefined) {
      const { revoked, replacement } = await revokeSigningKey({ ...common, kid: values.revoke });
      console.log(
        `Revoked signing key ${revoked}: its tokens stop verifying on every instance within ${KEY_RELOAD_INTERVAL_SECONDS} s.`,
      );
      if (replacement !== undefined) console.log(`Key ${replacement} signs from now on.`);
      return;
    }
    const { kid, activatesAt, removed } = await rotateSigningKeys(common);
    console.log(
      `New signing key ${kid}: in every instance's JWKS within ${KEY_RELOAD_INTERVAL_SECONDS} s, signing from ${new Date(activatesAt).toISOString()}.` +
        (removed.length > 0 ? ` Removed expired keys: ${removed.join(', ')}.` : ''),
    );
  } catch (error) {
    if (error instanceof SigningKeyError) throw new CommandError(`rotate-keys: ${error.message}`);
    throw error;
  } finally {
    await gatehouse.close();
  }
}

async function backup(args: string[]): Promise<void> {
  const [file, ...extra] = args;
  if (file === undefined || extra.length > 0) throw new UsageError('backup needs exactly one FILE');
  const { config } = resolveConfig();
  if (!config.databaseUrl.startsWith('sqlite:')) {
    throw new CommandError(
      'backup copies the embedded SQLite database only. For PostgreSQL use its own tools:\n' +
        '  pg_dump --format=custom --file=gatehouse.dump "$DATABASE_URL"\n' +
        'and restore into an empty database with:\n' +
        '  pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" gatehouse.dump',
    );
  }
  const { pages } = await backupDatabase(config.databaseUrl, file).catch((error: unknown) => {
    throw new CommandError(`backup failed: ${error instanceof Error ? error.message : String(error)}`);
  });
  console.log(`Backed up ${config.databaseUrl.slice('sqlite:'.length)} to ${file} (${pages} pages).`);
}

class UsageError extends Error {}

/** A command that could not do its job for a reason the operator can act on (exit 1, no stack). */
class CommandError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve();
    case 'migrate':
      return migrate();
    case 'create-user':
      return createUser(rest);
    case 'rotate-keys':
      return rotateKeys(rest);
    case 'backup':
      return backup(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      throw new UsageError(`Unknown command: ${command}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (
    error instanceof ConfigError ||
    error instanceof UsageError ||
    error instanceof CommandError ||
    error instanceof GatehouseError
  ) {
    console.error(error.message);
    if (error instanceof UsageError) console.error(`\n${USAGE}`);
  } else {
    console.error(error);
  }
  process.exit(error instanceof UsageError ? 64 : 1);
});

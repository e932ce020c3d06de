#!/usr/bin/env node
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { isRole } from './accounts/roles.js';
import { resolveConfig } from './config/resolve-config.js';
import { ConfigError, GatehouseError } from './errors.js';
import { createGatehouse } from './gatehouse.js';
import { buildServer } from './server.js';
import { migrateToLatest } from './storage/migrate.js';
import { openDatabase } from './storage/open-database.js';
import { retiredKeyRetentionSeconds, rotateSigningKeys } from './tokens/keyring.js';

const USAGE = `Usage: gatehouse <command>

Commands:
  serve                                   run the server (default)
  migrate                                 bring the database schema up to date
  create-user --email E [--role R] [--name N]
                                          create an account; the password is read from stdin
                                          (or prompted for); R is user, admin or super_admin
  rotate-keys                             add a new signing key (JWT_ALG=EdDSA or ES256)

Settings come from the environment and .env; see README.md.`;

async function serve(): Promise<void> {
  const { config, notices } = resolveConfig();
  const app = await buildServer(config);
  for (const notice of notices) app.log[notice.level](notice.message);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info(`${signal} received: finishing in-flight requests, then stopping`);
    // Graceful: stop accepting, let open requests finish, close the database, then exit.
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await app.listen({ host: config.host, port: config.port });
  const shown = config.host.includes(':') ? `[${config.host}]` : config.host;
  app.log.info(`Gatehouse is ready: http://${shown}:${config.port}/ (API docs at /docs)`);
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

async function rotateKeys(): Promise<void> {
  const { config } = resolveConfig();
  if (config.jwtAlgorithm === 'HS256') {
    throw new UsageError(
      'rotate-keys needs JWT_ALG=EdDSA or ES256 (HS256 uses SECRET_KEY; change it to rotate)',
    );
  }
  // Keep retired keys for longer than any token they signed can live (room tokens included).
  const { kid, removed } = await rotateSigningKeys(
    config.dataDir,
    config.jwtAlgorithm,
    retiredKeyRetentionSeconds(config),
  );
  console.log(
    `New signing key ${kid}.${removed.length > 0 ? ` Removed expired keys: ${removed.join(', ')}.` : ''}`,
  );
  console.log('Restart the servers to sign with it; tokens signed by older keys verify until they expire.');
}

class UsageError extends Error {}

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
      return rotateKeys();
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
  if (error instanceof ConfigError || error instanceof UsageError || error instanceof GatehouseError) {
    console.error(error.message);
    if (error instanceof UsageError) console.error(`\n${USAGE}`);
  } else {
    console.error(error);
  }
  process.exit(error instanceof UsageError ? 64 : 1);
});

import type { Kysely } from 'kysely';
import type { Static, TObject, TSchema } from 'typebox';
import {
  type AccountDeletingHook,
  type AccountDeletionPreparingHook,
  createAccountDeletion,
} from './accounts/account-deletion.js';
import { createAccountLifecycle } from './accounts/account-lifecycle.js';
import { createAccountService, type Registration } from './accounts/account-service.js';
import { createAccountChangeAnnouncer } from './accounts/announce-account-change.js';
import {
  createMemoryCounterStore,
  createResilientCounterStore,
  type WindowCount,
} from './accounts/counter-store.js';
import { createDeviceTokens } from './accounts/device-token.js';
import { createKeyedGate } from './accounts/keyed-gate.js';
import { createLoginThrottle } from './accounts/login-throttle.js';
import { normalizeEmail } from './accounts/normalize-email.js';
import { createPasskeyThrottle } from './accounts/passkey-throttle.js';
import { type AccountUser, withoutHash } from './accounts/public-user.js';
import { createScopePolicy, type ScopeDefinitions } from './accounts/scopes.js';
import { createSelfService } from './accounts/self-service.js';
import { createUserAdminService } from './accounts/user-admin-service.js';
import { createUserCache } from './accounts/user-cache.js';
import { createUserImport } from './accounts/user-import.js';
import { createAuditLog } from './audit/audit-log.js';
import {
  type AppSettingProperties,
  type AppSettings,
  type AppSettingValues,
  collectAppDeclarations,
  pickAppSettings,
} from './config/app-settings.js';
import type { GatehouseConfig } from './config/config.js';
import { assertValidConfig } from './config/validate-config.js';
import { type AppChannel, type AppChannelOptions, openAppChannel } from './events/app-channel.js';
import {
  createMemoryEventBus,
  type EventBus,
  type GatehouseEvent,
  publishRevokedSessions,
} from './events/event-bus.js';
import {
  type CoreWarn,
  createRedisConnections,
  type RedisConnections,
  type RedisState,
  warnByProcess,
} from './events/redis-connections.js';
import { createRedisEventBus } from './events/redis-event-bus.js';
import { bindGatehouseCore, type GatehouseCore } from './gatehouse-core.js';
import {
  type GatehouseTransaction,
  runCoreTransaction,
  runGatehouseTransaction,
} from './gatehouse-transaction.js';
import { startPeriodicSweep } from './lib/periodic-sweep.js';
import { type Scheduler, systemScheduler } from './lib/scheduler.js';
import { createSweepClock } from './lib/sweep-clock.js';
import { withTimeout } from './lib/with-timeout.js';
import { loadMailTemplates } from './mail/mail-templates.js';
import { createSmtpTransport } from './mail/mail-transport.js';
import { createMailer, MAIL_DRAIN_MAX_MS } from './mail/mailer.js';
import { createOutboxTransport, outboxDirectory } from './mail/outbox.js';
import { createSecurityNotices } from './mail/security-notices.js';
import { createMfaAdministration } from './mfa/mfa-administration.js';
import { createMfaService, resealTotpSecrets } from './mfa/mfa-service.js';
import { createMfaTokens } from './mfa/mfa-token.js';
import { createPasskeyChallenges } from './mfa/passkey-challenge.js';
import { createPasskeyService } from './mfa/passkeys.js';
import { createMfaStore } from './mfa/storage/mfa-store.js';
import { createPasskeyStore } from './mfa/storage/passkey-store.js';
import { createAuthorizationServer } from './oauth/authorization-server.js';
import { createClientCredentials } from './oauth/client-credentials.js';
import { createClientEndpointLimits } from './oauth/client-endpoint-limits.js';
import { createIdTokenHintVerifier } from './oauth/id-token-hint.js';
import { createLiveClients } from './oauth/live-clients.js';
import { createOAuthClients } from './oauth/oauth-clients.js';
import { createRpInitiatedLogout } from './oauth/rp-initiated-logout.js';
import { createTokenIntrospection } from './oauth/token-introspection.js';
import { createPasswordHasher } from './passwords/password-hasher.js';
import { createPasswordPolicy } from './passwords/password-policy.js';
import { createRefusalFloor } from './passwords/refusal-floor.js';
import { createExternalTokenVerifier } from './resource-server/external-token-verifier.js';
import { createReauthentication } from './sessions/reauthentication.js';
import { createRevocationList, revocationRetentionMs } from './sessions/revocation-list.js';
import { createSecretSupersededCheck } from './sessions/secret-superseded.js';
import {
  ACCESS_TOKEN_TYP,
  COOKIE_RECHECK_MS,
  type CookieSessionCheck,
  createSessionManager,
  type TokenFailure,
  type TokenIdentity,
} from './sessions/session-manager.js';
import { createStepUpPolicy } from './sessions/step-up.js';
import { createTokenGrants } from './sessions/token-grants.js';
import { createAccountTokenStore } from './storage/account-token-store.js';
import { appTables } from './storage/app-tables.js';
import { createAuditRetentionStore } from './storage/audit-retention-store.js';
import { createAuditStore } from './storage/audit-store.js';
import { createClientTokenRevocationStore } from './storage/client-token-revocation-store.js';
import { reachabilityLog } from './storage/connection-breaker.js';
import { createLegacyHashCostStore } from './storage/legacy-hash-cost-store.js';
import { createLifecycleStores, type LifecycleStores } from './storage/lifecycle-stores.js';
import { type AppMigrations, migrateToLatest, openMigrationDatabase } from './storage/migrate.js';
import { createOAuthClientStore } from './storage/oauth-client-store.js';
import { createOAuthGrantStore } from './storage/oauth-grant-store.js';
import { openDatabase } from './storage/open-database.js';
import type { Schema } from './storage/schema.js';
import { checkSharedSecretKey, precheckSharedSecretKey } from './storage/secret-key-check.js';
import { createSessionStore, type RevokedSession } from './storage/session-store.js';
import { createSigningKeyStore } from './storage/signing-key-store.js';
import { createSpentChallengeStore } from './storage/spent-challenge-store.js';
import { createUserAdminTransaction } from './storage/user-admin-transaction.js';
import { createUserImportStore } from './storage/user-import-store.js';
import { createUserStore, type UserRecord } from './storage/user-store.js';
import { type AppSealer, createAppSealer } from './tokens/app-sealer.js';
import { type AppTokens, createAppTokens } from './tokens/app-tokens.js';
import { createIdTokenKeys } from './tokens/id-token-keys.js';
import { createKeyring, retiredKeyRetentionSeconds } from './tokens/keyring.js';
import { SigningKeyError } from './tokens/signing-key-error.js';

/** Options of {@link createGatehouse} that are not settings. */
export interface GatehouseOptions {
  /** The clock in epoch ms; tests pass a controllable one. @default Date.now */
  clock?: () => number;
  /**
   * Where periodic work (the hourly sweep, revocation-list and signing-key reloads, the Redis
   * probe, apps' timers through `Gatehouse.scheduler`) is scheduled; tests pass
   * `createTestClock()` as both `clock` and `scheduler`, so advancing time fires the work that is due.
   * @default Node's timers, unref'd
   */
  scheduler?: Scheduler;
  /** Run migrations before returning. @default true */
  migrate?: boolean;
  /**
   * Receives the core's warnings (Redis down or back, malformed bus messages, failed broadcasts).
   * `buildServer` passes its logger. @default process warnings (`process.emitWarning`)
   */
  onWarning?: CoreWarn;
  /**
   * Told about database connection errors no request was waiting for (a terminated or lost pooled
   * connection, which the pool replaces). @default a warning through {@link onWarning}
   */
  onConnectionError?: (error: Error) => void;
  /**
   * The embedding app's own migrations, by app name: `{ dicery: { '001-tables': { up, down } } }`.
   * They run after the core's, each app with its own history table, so names never collide
   * with the core's or another app's. A bad app name fails here, naming it.
   * @default {}
   */
  migrations?: AppMigrations;
  /**
   * The embedding apps' OAuth scopes, by name, with who may hold them:
   * `{ 'scores:write': { description: 'Post scores', roles: ['user', 'admin'] } }`.
   * They join the core's `SCOPES` on `/token`, cookie sessions, refresh, client registration,
   * the OAuth metadata's `scopes_supported` and the OpenAPI document (super admins get them all).
   * A name that is no RFC 6749 scope token, or clashes with a core scope, fails here.
   * @default {}
   */
  scopes?: ScopeDefinitions;
  /**
   * The embedding apps' settings, each declared with `defineAppSettings` (`[dicerySettings]`). Their
   * values sit beside the core's in `config` (an app setting left out takes its default) and are
   * checked by the app's schema as the environment is (`resolveConfig(env, { settings })`); an
   * unknown property, or one two registrations share, fails here. Apps read theirs with
   * {@link Gatehouse.appSettings}. Their declarations are honoured: retired signing keys stay
   * published for the longest `tokenLifetime`, revocations stay in memory for two of the longest
   * `revocationCheckInterval`.
   * @default []
   */
  settings?: readonly AppSettings[];
  /**
   * Told the SQL text of every statement the core runs, `begin` and `commit` included, once it
   * has run (a query log; the tests count a login's write transactions with it). Keep it cheap:
   * it runs on the request path. @default none
   */
  onQuery?: (sql: string) => void;
  /**
   * Whether this instance mails the security notices stored with account changes (it sweeps
   * `pending_notices`), or only writes them for the servers to mail. The CLI's commands pass
   * false: a command that ends at once would take notices and leave them leased, or mail them
   * through a transport of its own. @default true
   */
  sendNotices?: boolean;
}

/** The settings of a {@link Gatehouse} as apps read them: everything but the signing secrets. */
export type GatehouseSettings = Readonly<Omit<GatehouseConfig, 'secretKey' | 'secretKeyPrevious'>>;

/** Accounts, as an embedding app reads and creates them (see {@link Gatehouse.users}). */
export interface GatehouseUsers {
  /**
   * The account with this id, without its password hash, or undefined when there is none. Read
   * through the user cache (the same one `request.auth.user` comes from), so it is current on every
   * instance within one broadcast. Rejects with `DATABASE_UNAVAILABLE` when the database is down and
   * the account was not cached.
   */
  get(id: string): Promise<AccountUser | undefined>;
  /** The account with this email address (compared case-insensitively), or undefined. */
  findByEmail(email: string): Promise<AccountUser | undefined>;
  /**
   * Creates an account as `POST /auth/register` does (email syntax, the password policy,
   * argon2id), with `role` (default `user`). Rejects with `EMAIL_TAKEN`, `WEAK_PASSWORD` or
   * `VALIDATION_FAILED`. Keep it off the hot path: it hashes the password.
   */
  register(input: Registration): Promise<AccountUser>;
}

/**
 * An access token that passed {@link GatehouseSessions.validate}: the session's facts and the
 * account, as `request.auth` holds them (Lucia's `validateSession` shape).
 */
export interface ValidSession {
  ok: true;
  user: AccountUser;
  session: TokenIdentity;
}

/** Why {@link GatehouseSessions.validate} refused a token: a token failure, or the account is disabled or gone. */
export type SessionRefusal = { ok: false; reason: TokenFailure | 'disabled' };

/** Sessions, as an embedding app checks and ends them (see {@link Gatehouse.sessions}). */
export interface GatehouseSessions {
  /**
   * Checks an access token (a JWT, or an opaque token under `TOKEN_STRATEGY=database`) exactly as
   * the bearer guard does: signature, expiry, revocation, then the account (active). For code that
   * reads tokens outside Fastify (a WebSocket upgrade, a job queue).
   */
  validate(accessToken: string): Promise<ValidSession | SessionRefusal>;
  /**
   * Whether an account session is still valid, for long-lived responses (event streams) that must
   * end when their session does: `revoked` is answered from memory (this instance's list, kept
   * current by broadcasts and a periodic reload); a live answer re-reads the session row.
   */
  check(sessionId: string): Promise<CookieSessionCheck>;
  /** Whether `sessionId` is known revoked, from memory only (cheap enough for every heartbeat). */
  isRevoked(sessionId: string): boolean;
  /**
   * Whether a credential issued at `issuedAtSeconds` (a token's `iat`) was ended by
   * `gatehouse revoke-all`'s cut-off, from memory only. For an app's own signed tokens that
   * outlive a request (event streams): Gatehouse's verifiers already refuse such tokens.
   */
  isCutOff(issuedAtSeconds: number): boolean;
  /**
   * The revocation cut-off, epoch ms (0 when `gatehouse revoke-all` never ran). When it rises,
   * every account session that existed before it has ended, including sessions the database
   * never knew (a restore): a long-lived response opened before it should re-check its session.
   */
  revocationCutoff(): number;
  /**
   * Ends every session of the user (logout everywhere), on every instance, from the very next
   * request; resolves with how many were live.
   */
  revokeAll(userId: string): Promise<number>;
}

/** The core's notifications, to keep an app's own caches in step (see {@link Gatehouse.events}). */
export interface GatehouseEvents {
  /**
   * Calls `handler` for every core event on this instance, whichever instance caused it
   * (`user_changed` after any account change, `sessions_revoked` after a logout or revocation).
   * Handlers run synchronously in publish order; one that throws is reported and the others still
   * run. Apps cannot publish core events. Returns the function that unsubscribes; every handler is
   * dropped when the core closes.
   */
  subscribe(handler: (event: GatehouseEvent) => void): () => void;
}

/**
 * Expiring counters for an app's rate limits (see `enforceRateLimit` in `gatehouse/fastify`),
 * shared by the deployment's instances when Redis is configured (local, bounded by
 * `RATE_LIMIT_MAX_KEYS`, otherwise). Every key is namespaced (`app:` + key) before it reaches the
 * store, so no app key can reach, reset or fill the core's login-throttling counters (those are in
 * a store of their own besides: no number of app keys evicts them from memory).
 */
export interface AppCounters {
  /** Adds one hit to `key`, opening a window of `windowMs` if none is open. */
  increment(key: string, windowMs: number): Promise<WindowCount>;
  /** The current window of `key`, if one is open (reading it counts as use, not as a hit). */
  peek(key: string): Promise<WindowCount | undefined>;
  /** Clears `key`. */
  reset(key: string): Promise<void>;
}

/**
 * One Gatehouse instance, as an embedding application (and the two reference apps) use it: a
 * narrow facade in the style of Lucia's core. It hands out operations, never handles: the
 * database, the stores, the caches and the keyring stay inside, so an app cannot change an
 * account or a session behind the caches and broadcasts that keep every instance correct. The
 * Fastify adapter (`gatehousePlugin`) reaches the rest through a module-private accessor.
 */
export interface Gatehouse {
  /** The settings in force, without the signing secrets. Frozen. */
  readonly config: GatehouseSettings;
  /** The clock in epoch ms (`GatehouseOptions.clock`). */
  readonly clock: () => number;
  /**
   * Where an app schedules its periodic work (Dicery's stream heartbeats): the core's own
   * (`GatehouseOptions.scheduler`), so a test's `createTestClock()` drives the app's timers too.
   */
  readonly scheduler: Scheduler;
  /** Read and create accounts. */
  readonly users: GatehouseUsers;
  /** Validate access tokens, check and end sessions. */
  readonly sessions: GatehouseSessions;
  /** The core's notifications (account changes, revocations). */
  readonly events: GatehouseEvents;
  /** Expiring, namespaced counters for the app's rate limits. */
  readonly counters: AppCounters;
  /**
   * Signed tokens of the app's own kinds (Dicery's player tokens), with the instance's keys. A token
   * may live as long as the access tokens, or the longest `tokenLifetime` a registered app declared.
   */
  readonly appTokens: AppTokens;
  /**
   * The values of an app's registered settings (`GatehouseOptions.settings`), typed by its
   * definition, defaults filled in, frozen. Throws a `TypeError` when `definition` was not registered.
   */
  appSettings<P extends AppSettingProperties>(definition: AppSettings<P>): Static<TObject<P>>;
  /**
   * Encryption at rest for an app's own secrets (Dicery seals its roll-log signing key with it):
   * AES-256-GCM under a key derived from `SECRET_KEY` for `purpose` alone (lower-case letters,
   * digits, `.`, `:`, `-`; a malformed one throws `TypeError`), opening values sealed under
   * `SECRET_KEY_PREVIOUS` during a rotation. The app never sees `SECRET_KEY`.
   */
  appSealer(purpose: string): AppSealer;
  /**
   * Registers `hook` to run inside the transaction that deletes an account, before its row goes
   * (Dicery closes what the account hosts there). It gets the transaction (`tx.appDatabase`,
   * `tx.afterCommit` for broadcasts) and the account's id; throwing aborts the deletion. Returns a
   * function that removes the hook.
   */
  onAccountDeleting(hook: AccountDeletingHook): () => void;
  /**
   * Registers `hook` to run when an account's deletion has been judged allowed, before the
   * deletion's transaction and outside it, with the account's id: delete there, in short
   * transactions of your own, what would make that one transaction long (Dicery empties the rooms
   * the account hosts in chunks). Do only what the deletion does anyway: what the hook did stands
   * if the deletion then fails (a retry finishes it) or is refused under its locks after all (a
   * race: see `AccountDeletionPreparingHook`). Throwing aborts the deletion. Returns a function
   * that removes the hook.
   */
  onAccountDeletionPreparing(hook: AccountDeletionPreparingHook): () => void;
  /**
   * A query handle typed with an app's own tables (`Tables`) only, for reads and single writes
   * outside a transaction (use {@link Gatehouse.transaction} for units of work). The core's tables
   * are not in its type: change them only through the core's operations, which keep the caches and
   * the other instances in step.
   */
  appDatabase<Tables extends Record<keyof Tables, object>>(): Kysely<Tables>;
  /**
   * Runs `work` as one unit of work: the app's own writes (`tx.appDatabase<T>()`) and the core's
   * (`tx.audit`) commit together or not at all, and `tx.afterCommit` callbacks run only after
   * the commit. Keep password hashing, Redis and
   * network calls out of `work` (they belong in `afterCommit`): the transaction holds row locks,
   * and on SQLite the only connection, until it ends.
   *
   * @example
   * await gatehouse.transaction(async (tx) => {
   *   const db = tx.appDatabase<AppTables>();
   *   await db.insertInto('scores').values({ player_id: playerId, score: 0 }).execute();
   *   await tx.audit.record({ event: 'score_created', targetId: playerId });
   *   tx.afterCommit(() => notifyScoreboard(playerId));
   * });
   */
  transaction<T>(work: (tx: GatehouseTransaction) => Promise<T>): Promise<T>;
  /**
   * Opens a channel to the other instances of the deployment for an app's events: Redis pub/sub
   * when `redisUrl` is set (messages schema-checked, resync after a reconnect), nothing to do on a
   * single instance. The channel closes with the core.
   */
  openChannel<S extends TSchema>(options: AppChannelOptions<S>): Promise<AppChannel<Static<S>>>;
  /**
   * Redis as readiness should report it: `disabled` without `redisUrl`; `down` while it is
   * unreachable, frozen or failing commands (the instance then runs on local counters and the
   * database reload); `up` otherwise. Never blocks.
   */
  redisState(): RedisState;
  /** Closes connections and timers. */
  close(): Promise<void>;
}

/**
 * Wires up a {@link Gatehouse} from settings (validated first: a bad value throws a `ConfigError`
 * naming the setting, as the environment path does).
 */
export async function createGatehouse(
  config: GatehouseConfig & AppSettingValues,
  options: GatehouseOptions = {},
): Promise<Gatehouse> {
  return (await createGatehouseCore(config, options)).facade;
}

/** Namespace of the keys apps count under (see {@link AppCounters}); the core's never start so. */
const APP_COUNTER_PREFIX = 'app:';

/** How often expired sessions, tokens, spent markers and old audit rows are deleted. */
const SWEEP_INTERVAL_MS = 3600_000;
/** The first sweep after start-up: not at once (start-up has work of its own), but not an hour on. */
const FIRST_SWEEP_AFTER_MS = 60_000;

/**
 * Least time a revoked session's row is kept (its tokens go with it). Kept at all for the revocation
 * list, whose first load reads the revocations its retention still needs (so never less than that),
 * and so that a refresh token of a session ended recently that comes back is still recognised and
 * audited as reuse. Kept until the session's own expiry, they piled up: every sign-in displaced by a
 * cap, each code exchange of an app, stayed up to SESSION_ABSOLUTE_TTL (red-team 2026-12g O4: one
 * account made ~29 000 rows a day per public client). After it, such a token is only `invalid_grant`.
 */
const REVOKED_SESSION_RETENTION_MS = 24 * 3600_000;

/** Sessions a client's removal or disable ends per statement. */
const CLIENT_SESSIONS_BATCH = 500;

/**
 * Wires up one instance and returns its internals (internal: the adapter, the reference server,
 * the CLI and white-box tests use it; embedders get the facade from {@link createGatehouse}).
 */
export async function createGatehouseCore(
  config: GatehouseConfig & AppSettingValues,
  options: GatehouseOptions = {},
): Promise<GatehouseCore> {
  const apps = options.settings ?? [];
  assertValidConfig(config, apps); // the environment's checks, for settings passed in code (issue 16)
  const appSettings = new Map(apps.map((app) => [app.app, { app, values: pickAppSettings(config, app) }]));
  const declarations = collectAppDeclarations(apps, (app) => appSettings.get(app.app)?.values ?? {});
  const keyRetentionSeconds = retiredKeyRetentionSeconds({
    accessTokenTtl: config.accessTokenTtl,
    appTokenLifetime: declarations.tokenLifetimeSeconds,
  });
  // Before anything is opened: an app's bad scope fails start-up without a connection to close.
  const scopePolicy = createScopePolicy(options.scopes);
  const clock = options.clock ?? Date.now;
  const scheduler = options.scheduler ?? systemScheduler;
  const warn = options.onWarning ?? warnByProcess;
  const database = openDatabase(config.databaseUrl, {
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    onConnectionError:
      options.onConnectionError ??
      ((error) => warn('database connection lost; the pool reconnects on demand', { error: error.message })),
    onReachabilityChange: reachabilityLog(warn),
    ...(options.onQuery === undefined ? {} : { onQuery: options.onQuery }),
  });
  /**
   * What start-up has opened (connections, timers, bus subscriptions), each pushed as it is made
   * and closed in reverse order by the core's `close`, or when a later step fails: the server
   * retries a failed start-up, and an attempt that left its revocation reload timer running logged
   * "revocation list reload failed" against its closed database every few seconds for the life of
   * the process (operator red-team 2026-12h F1).
   */
  const closers: (() => unknown)[] = [() => database.close()];
  /** Runs every closer once, newest first; all run even when one throws (the first error is rethrown). */
  const closeOpened = async () => {
    let failure: unknown;
    for (const closer of closers.splice(0).reverse()) {
      try {
        await closer();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  };
  let redis: RedisConnections | undefined;
  try {
    if (options.migrate ?? true) {
      const migrating = openMigrationDatabase(config.databaseUrl, database, {
        connectTimeoutMs: config.databaseConnectTimeoutMs,
        onConnectionError: (error) => warn('migration connection lost', { error: error.message }),
        ...(options.onQuery === undefined ? {} : { onQuery: options.onQuery }),
      });
      try {
        const { newer, indexes } = await migrateToLatest(migrating.database, options.migrations);
        if (newer.length > 0) {
          warn('the database was migrated by a newer release; running on its schema', {
            newerMigrations: newer,
          });
        }
        // Starting without it is the point: queries work without the index (online-indexes.ts).
        if (indexes?.failed !== undefined) {
          warn('an index was not built; queries that use it read more until the next start-up builds it', {
            index: indexes.failed.index,
            reason: indexes.failed.reason,
          });
        }
      } finally {
        await migrating.close();
      }
    }
    // Before anything is signed or sealed: every instance on this database must hold one secret
    // (recorded below, once the signing keys have opened under it).
    await precheckSharedSecretKey(database.db, config.secretKey, config.secretKeyPrevious);
    const users = createUserStore(database.db);
    const sessionStore = createSessionStore(database.db);
    // Connected in the background: Redis being down never fails nor blocks start-up (it is an
    // accelerator; every use below falls back to local state).
    redis =
      config.redisUrl === undefined
        ? undefined
        : createRedisConnections(
            {
              url: config.redisUrl,
              commandTimeoutMs: config.redisCommandTimeoutMs,
              connectTimeoutMs: config.redisConnectTimeoutMs,
              maxReconnectDelayMs: config.redisMaxReconnectDelayMs,
              scheduler,
            },
            warn,
          );
    if (redis !== undefined) {
      const connections = redis;
      closers.push(() => connections.close());
    }
    /**
     * After the bus re-subscribed (Redis came back), messages published meanwhile are lost:
     * re-read what they would have changed. Set once the caches exist (operator red-team 2026-12h F3).
     */
    let resyncAfterBusGap = () => {};
    const bus: EventBus =
      redis === undefined
        ? createMemoryEventBus({
            onHandlerError: (error, event) =>
              warn(`Event handler threw on ${event.type}`, {
                error: error instanceof Error ? error.message : String(error),
              }),
          })
        : await createRedisEventBus(redis, { warn, onResubscribed: () => resyncAfterBusGap() });
    closers.push(() => bus.close());
    const localCounters = createMemoryCounterStore(clock, { maxKeys: config.rateLimitMaxKeys });
    const counters =
      redis === undefined
        ? localCounters
        : createResilientCounterStore({ connections: redis, fallback: localCounters });
    // Sign-in, second-factor and passkey lock-outs, the per-address mail caps and the email-change
    // limits count in a store of their own (its own RATE_LIMIT_MAX_KEYS in memory; in Redis, the
    // one Redis and its `maxmemory`): route limits and apps make a key per client address, and one
    // IPv6 /48 holds 65 536 /64s, so a flood of refused room joins evicted a victim account's
    // lock-out in 18 s, five more guesses a flood (red-team 2026-12l N1). A key here comes with a
    // password check, a second-factor try, a mail the per-address limits allowed or a signed-in
    // account's email-change request.
    const localSecurityCounters = createMemoryCounterStore(clock, { maxKeys: config.rateLimitMaxKeys });
    const securityCounters =
      redis === undefined
        ? localSecurityCounters
        : createResilientCounterStore({ connections: redis, fallback: localSecurityCounters });
    // What every keyring of this core shares: the access tokens' (JWT_ALG) and the ID tokens' own.
    const keyringOptions = {
      secret: config.secretKey,
      previousSecret: config.secretKeyPrevious,
      issuer: config.issuer,
      dataDir: config.dataDir,
      database,
      clock,
      retentionSeconds: keyRetentionSeconds,
      onWarning: warn,
      scheduler,
    };
    const keyring = await createKeyring({ algorithm: config.jwtAlgorithm, ...keyringOptions });
    closers.push(() => keyring.close());
    const clientTokenRevocations = createClientTokenRevocationStore(database.db);
    const revocationRetention = revocationRetentionMs({
      accessTokenTtlMs: config.accessTokenTtl * 1000,
      cookieRecheckMs: COOKIE_RECHECK_MS,
      appRevocationCheckMs: declarations.revocationCheckIntervalSeconds * 1000,
    });
    const revokedSessionRetentionMs = Math.max(
      REVOKED_SESSION_RETENTION_MS,
      revocationRetention + config.revocationReloadOverlap * 1000,
    );
    // `gatehouse revoke-all` may replace SECRET_KEY (it leaked) while instances run: with the
    // cut-off it raises, each re-reads the secret's fingerprint, and one whose secret is no longer
    // the database's refuses every token from then on (a token forged with the old secret carries
    // a fresh `iat` and any session id, and would pass both the cut-off and the revocation list)
    // and answers /readyz 503, until restarted with the new one (red-team 2026-12r R4).
    const secretCheck = createSecretSupersededCheck({
      check: () => precheckSharedSecretKey(database.db, config.secretKey, config.secretKeyPrevious),
      onSuperseded: () => {
        revocations.refuseAll();
        warn(
          'SECRET_KEY superseded: gatehouse revoke-all made another secret the one this database uses; ' +
            'this instance now refuses every token and reports not ready. Restart it with the new SECRET_KEY',
        );
      },
      onError: (error) =>
        warn('SECRET_KEY check after a revocation cut-off failed; retrying', {
          error: error instanceof Error ? error.message : String(error),
        }),
      scheduler,
    });
    const revocations = await createRevocationList({
      // Revoked sessions, and revoked client_credentials tokens (by jti) beside them: one list, one
      // reload, the same guarantees (RFC 7009 for tokens that have no session).
      store: {
        async listRevokedSince(since, now) {
          const [sessionRows, tokenRows] = await Promise.all([
            sessionStore.listRevokedSince(since, now),
            clientTokenRevocations.listRevokedSince(since, now),
          ]);
          return [...sessionRows, ...tokenRows];
        },
        readRevocationCutoff: () => sessionStore.readRevocationCutoff(),
      },
      bus,
      clock,
      retentionMs: revocationRetention,
      reloadIntervalMs: config.revocationReloadInterval * 1000,
      scheduler,
      overlapMs: config.revocationReloadOverlap * 1000,
      onReloadError: (error) =>
        warn('revocation list reload failed; retrying', {
          error: error instanceof Error ? error.message : String(error),
        }),
      onCutoffRaised: () => secretCheck.run(),
    });
    closers.push(() => revocations.close());
    closers.push(() => secretCheck.close());
    const userCache = createUserCache(users, bus, { clock });
    closers.push(() => userCache.close());
    /** The audit log writing through `trx`, for a change whose entry commits with it. */
    const auditIn = (trx: Kysely<Schema>) =>
      createAuditLog(createAuditStore(trx), clock, createAuditRetentionStore(trx));
    const hasher = createPasswordHasher(config.passwordHashConcurrency, config.passwordHashReservedSlots);
    const sessions = createSessionManager({
      scopes: scopePolicy,
      config,
      sessions: sessionStore,
      users,
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            sessions: createSessionStore(trx),
            users: createUserStore(trx),
            audit: auditIn(trx),
            mfa: createMfaStore(trx),
            spent: createSpentChallengeStore(trx),
            grants: createOAuthGrantStore(trx),
            // Declared below; only called once a session starts, after start-up.
            notices: securityNotices.writer(trx),
          }),
        ),
      keyring,
      revocations,
      bus,
      clock,
    });
    const loginLimits = {
      perIp: config.loginMaxFailuresPerIp,
      global: config.loginMaxFailuresGlobal,
      perDevice: config.loginMaxFailuresPerDevice,
      windowMs: config.loginFailureWindow * 1000,
    };
    const throttle = createLoginThrottle(
      securityCounters,
      {
        ...loginLimits,
        perAccount: config.loginMaxFailuresPerAccount,
        successesPerAccount: config.loginMaxSuccessesPerAccount,
      },
      clock,
    );
    const passwordPolicy = createPasswordPolicy({
      minLength: config.passwordMinLength,
      contextWords: [config.issuer],
    });
    const deviceTokens = createDeviceTokens({
      secretKey: config.secretKey,
      previousSecretKey: config.secretKeyPrevious,
      ttlSeconds: config.deviceTokenTtl,
      clock,
    });
    // Without SMTP, mail goes to files only the operator can read; say so once at start-up.
    const transport =
      config.smtpUrl === undefined
        ? createOutboxTransport({
            dir: outboxDirectory(config.dataDir),
            from: config.mailFrom,
            clock,
            // Kept while the longest-lived link in them lives, and no longer.
            maxAgeMs: Math.max(config.emailVerificationTtl, config.passwordResetTtl) * 1000,
          })
        : createSmtpTransport({
            url: config.smtpUrl,
            from: config.mailFrom,
            timeoutMs: config.mailSendTimeoutMs,
          });
    const mailer = createMailer({
      transport,
      templates: loadMailTemplates(config.mailTemplatesDir),
      publicUrl: config.publicUrl,
      maxQueued: config.mailQueueMax,
      scheduler,
      warn,
    });
    closers.push(() => mailer.close());
    // Security notices are stored with the change they report and mailed after its commit.
    const securityNotices = createSecurityNotices({
      database,
      mailer,
      maxQueued: config.mailQueueMax,
      deliver: options.sendNotices ?? true,
      clock,
      scheduler,
      warn,
    });
    closers.push(() => securityNotices.close());
    const userAdminTransaction = createUserAdminTransaction(database, securityNotices);
    const mfaStore = createMfaStore(database.db);
    /** When the account's authenticator app was confirmed: what a password sign-in must also prove. */
    const totpConfirmedAt = async (userId: string) =>
      (await mfaStore.findTotp(userId))?.confirmedAt ?? undefined;
    const hasConfirmedTotp = async (userId: string) => (await totpConfirmedAt(userId)) !== undefined;
    const refusalFloor = createRefusalFloor({
      classes: () => createLegacyHashCostStore(database.db).list(),
      hasher,
      warn,
    });
    const accounts = createAccountService({
      users,
      userCache,
      hasher,
      transaction: userAdminTransaction,
      notices: securityNotices,
      throttle,
      // Entries live only while a password check runs or waits: bounded by these two numbers.
      gate: createKeyedGate({ maxWaitingPerKey: 32, maxKeys: 10_000 }),
      deviceTokens,
      bus,
      clock,
      passwordPolicy,
      requireVerifiedEmail: config.requireVerifiedEmail,
      secondFactor: { confirmedAt: totpConfirmedAt },
      refusalFloor,
    });
    const auditRetention = createAuditRetentionStore(database.db);
    const audit = createAuditLog(createAuditStore(database.db), clock, auditRetention);
    const passkeyStore = createPasskeyStore(database.db);
    /** Any second factor: a confirmed authenticator app or a passkey (step-up's notion). */
    const hasSecondFactor = async (userId: string) =>
      (await hasConfirmedTotp(userId)) || (await passkeyStore.countPasskeys(userId)) > 0;
    const stepUp = createStepUpPolicy({
      sessions: sessionStore,
      maxAgeSeconds: config.stepUpMaxAge,
      clock,
      hasSecondFactor,
    });
    const spentChallenges = createSpentChallengeStore(database.db);
    const passkeys = createPasskeyService({
      store: passkeyStore,
      codes: mfaStore,
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            passkeys: createPasskeyStore(trx),
            mfa: createMfaStore(trx),
            audit: auditIn(trx),
            users: createUserStore(trx),
            notices: securityNotices.writer(trx),
            sessions: createSessionStore(trx),
          }),
        ),
      notices: securityNotices,
      bus,
      users,
      challenges: createPasskeyChallenges(config.secretKey, config.secretKeyPrevious),
      spent: spentChallenges,
      deviceTokens,
      stepUp,
      publicUrl: config.publicUrl,
      requireVerifiedEmail: config.requireVerifiedEmail,
      challengeTtlMs: config.mfaTokenTtl * 1000,
      clock,
    });
    // A SECRET_KEY rotation: the authenticators' secrets move to the new secret, as the signing
    // keys did in createKeyring (README, "Keys and rotation").
    if (config.secretKeyPrevious !== undefined) {
      await resealTotpSecrets(mfaStore, config.secretKey, config.secretKeyPrevious);
    }
    const mfa = createMfaService({
      stepUp,
      store: mfaStore,
      passkeys: passkeyStore,
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            users: createUserStore(trx),
            mfa: createMfaStore(trx),
            passkeys: createPasskeyStore(trx),
            audit: auditIn(trx),
            sessions: createSessionStore(trx),
            notices: securityNotices.writer(trx),
          }),
        ),
      notices: securityNotices,
      users,
      counters: securityCounters,
      spent: spentChallenges,
      tokens: createMfaTokens(config.secretKey, config.secretKeyPrevious),
      bus,
      deviceTokens,
      secretKey: config.secretKey,
      previousSecretKey: config.secretKeyPrevious,
      issuer: config.issuer,
      limits: {
        tokenTtlMs: config.mfaTokenTtl * 1000,
        perToken: config.mfaMaxFailuresPerToken,
        perAccount: config.mfaMaxFailuresPerAccount,
        perDevice: config.loginMaxFailuresPerDevice,
        windowMs: config.loginFailureWindow * 1000,
        consecutive: config.mfaMaxConsecutiveFailures,
      },
      clock,
      mailer,
    });
    const mfaAdministration = createMfaAdministration({ users, mfa, stepUp });
    const selfService = createSelfService({
      scopes: scopePolicy,
      accounts,
      sessions,
      users,
      sessionStore,
      audit,
      mfa,
      passkeys,
      // The password breaker's settings on counters of their own (red-team 2026-12e J3): failed
      // passkey sign-ins, each a signature verification, get a server-wide budget too.
      passkeyThrottle: createPasskeyThrottle({
        counters: securityCounters,
        limits: loginLimits,
        deviceTokens,
        users,
        clock,
      }),
      stepUp,
      requireMfaForRoles: config.requireMfaForRoles,
      deviceTokens,
    });
    const reauthentication = createReauthentication({
      accounts,
      mfa,
      passkeys,
      users,
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            sessions: createSessionStore(trx),
            audit: auditIn(trx),
          }),
        ),
      clock,
    });
    const onPublishError = (error: unknown, event: GatehouseEvent) =>
      warn(`Committed account change not broadcast (${event.type})`, {
        error: error instanceof Error ? error.message : String(error),
      });
    // The account lifecycle's unit of work: the apps' hooks (`tx`) and the core's stores share it.
    const lifecycleTransaction = <T>(
      work: (tx: GatehouseTransaction, stores: LifecycleStores) => Promise<T>,
    ) =>
      runCoreTransaction({ database, clock }, (tx, trx) =>
        work(tx, createLifecycleStores(trx, securityNotices)),
      );
    const announce = createAccountChangeAnnouncer({ revocations, bus, onPublishError });
    const accountDeletion = createAccountDeletion({
      transaction: lifecycleTransaction,
      announce,
      notices: securityNotices,
      clock,
    });
    const userAdmin = createUserAdminService({
      users,
      transaction: userAdminTransaction,
      deletion: accountDeletion,
      revocations,
      bus,
      clock,
      onPublishError,
      throttle,
    });
    const accountTokens = createAccountTokenStore(database.db);
    const lifecycle = createAccountLifecycle({
      users,
      tokens: accountTokens,
      // An email change or an account deletion, on an account with any second factor (a
      // passkey-only one included, whose password still signs in alone): a recent session that
      // proved the factor.
      secondFactor: {
        isEnrolled: hasSecondFactor,
        requireRecentAuthentication: async (sessionId) => {
          await stepUp.requireFactorChangeAuthentication(sessionId);
        },
      },
      transaction: lifecycleTransaction,
      accounts,
      selfService,
      deviceTokens,
      sessions: sessionStore,
      hasher,
      passwordPolicy,
      throttle,
      counters: securityCounters,
      announce,
      deletion: accountDeletion,
      mailer,
      notices: securityNotices,
      clock,
      warn,
      settings: {
        requireVerifiedEmail: config.requireVerifiedEmail,
        emailVerificationTtl: config.emailVerificationTtl,
        passwordResetTtl: config.passwordResetTtl,
        accountMailsPerHour: config.accountMailsPerHour,
      },
    });
    // Closed in reverse, so before the notices give back what the mailer holds and the mailer drops
    // its queue: the forgot-password look-ups already answered 202 run and queue their mail, and
    // the mail users asked for a moment ago (a reset link, a verification) goes out, all within one
    // bound. A rolling deploy would otherwise lose it.
    closers.push(async () => {
      const bound = Math.min(config.shutdownGracePeriodMs, MAIL_DRAIN_MAX_MS);
      const started = Date.now();
      await withTimeout(lifecycle.backgroundIdle(), bound, undefined);
      await mailer.drain(Math.max(0, bound - (Date.now() - started)));
    });
    const userImport = createUserImport({
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            users: createUserImportStore(trx),
            hashCosts: createLegacyHashCostStore(trx),
            audit: auditIn(trx),
          }),
        ),
      clock,
      onCommitted: () => refusalFloor.invalidate(),
    });
    // ID tokens are verified by other parties, so they need published (asymmetric) keys: the
    // access-token keyring's when JWT_ALG is asymmetric, else ES256 keys of their own, plus RS256
    // ones for the clients that ask for it (OpenID Connect Core §15.1), in the same signing_keys
    // table, created on first use (most HS256 installations never need any).
    const idTokenKeys = createIdTokenKeys({
      accessKeyring: keyring,
      createKeyring: (algorithm) => createKeyring({ algorithm, ...keyringOptions }),
      hasStoredKeys: async (algorithm) =>
        (await createSigningKeyStore(database.db).listKeys(algorithm)).length > 0,
      onWarning: warn,
      clock,
    });
    closers.push(() => idTokenKeys.close());
    // An installation that has ID-token keys already (it has issued ID tokens) loads them now, not
    // on the first discovery or JWKS request. Loaded lazily, an instance that started shortly
    // before a database outage answered those two 503 throughout it, though once loaded they need
    // no database (operator red-team 2026-12h F4). One that never made any still creates none.
    // A failure here is not start-up's: keys that no longer open (SECRET_KEY changed without
    // SECRET_KEY_PREVIOUS) fail the routes that need them, as before, not every route.
    const idTokenKeysOpen = await idTokenKeys.preload().then(
      () => true,
      (error: unknown) => {
        warn('ID-token keys not loaded at start-up; trying again when first needed', {
          error: error instanceof Error ? error.message : String(error),
        });
        return !(error instanceof SigningKeyError && error.code === 'SIGNING_KEY_SEALED');
      },
    );
    // The secret is recorded (or the rotation to it) once it has opened what is sealed under it:
    // the access-token keys (asymmetric JWT_ALG) and the stored ID-token keys, which under HS256
    // (the default) are the only ones. A secret they refuse on a database with no fingerprint yet
    // (from before 036a) must not become the one every other instance is held to.
    if (idTokenKeysOpen) {
      await checkSharedSecretKey(database.db, config.secretKey, config.secretKeyPrevious, clock());
    }
    const oauthClients = createOAuthClients({
      scopes: scopePolicy,
      clients: createOAuthClientStore(database.db),
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            clients: createOAuthClientStore(trx),
            audit: auditIn(trx),
            endClientSessions: async (clientId) => {
              // In batches: a client with more sessions than a statement takes parameters (65 535
              // on PostgreSQL, 32 766 on SQLite) could otherwise never be removed. Each batch's
              // sessions are no longer live, so the next read returns the next ones.
              const grants = createOAuthGrantStore(trx);
              const sessionStore = createSessionStore(trx);
              const ended: RevokedSession[] = [];
              for (;;) {
                const ids = await grants.sessionsOfClient(clientId, undefined, CLIENT_SESSIONS_BATCH);
                if (ids.length === 0) return ended;
                ended.push(...(await sessionStore.revokeSessions(ids, clock())));
              }
            },
          }),
        ),
      clock,
      // Its client_credentials tokens stop here at once and on the other instances when the
      // message arrives (or within the live-client cache's 30 s); the sessions its transaction
      // ended are announced. A disable takes the same path (the bus message means "re-read it").
      afterRemove: (clientId, ended) => forgetClient(clientId, ended),
      afterDisable: (clientId, _disabled, ended) => forgetClient(clientId, ended),
      afterUpdate: (clientId) => forgetClient(clientId, []),
      prepareIdTokenKeys: (algorithm) =>
        idTokenKeys.keyring(algorithm).catch((error: unknown) =>
          warn('ID-token keys not made at the client change; its first sign-in makes them', {
            algorithm,
            error: error instanceof Error ? error.message : String(error),
          }),
        ),
      idTokenAlgorithms: idTokenKeys.algorithms,
    });
    const liveClients = createLiveClients(oauthClients, bus, { clock });
    closers.push(() => liveClients.close());
    resyncAfterBusGap = () => {
      // Expired, not dropped: still served while the database is unavailable (stale-if-error).
      userCache.expireAll();
      // The client registry once the revocations are in: a removed client's id read as unknown
      // makes its tokens pass as a password-grant label's (see refuseAppToken in http/auth.ts), so
      // its sessions must already read as revoked here.
      // A reload that starts now (one under way may predate the gap); on failure the registry keeps
      // its entries (a client it still holds is refused as an app, the safe side) until their age.
      void revocations.reloadFresh().then((read) => {
        if (read) liveClients.expireAll();
      });
    };
    async function forgetClient(clientId: string, ended: readonly RevokedSession[]): Promise<void> {
      // The sessions' end first, on the same channel (delivered in order): an instance that hears
      // the client is gone already holds their revocations, so the client's live tokens never pass
      // as a password-grant label's in between (red-team 2026-12j review's open item).
      try {
        await publishRevokedSessions(bus, ended);
      } finally {
        liveClients.evict(clientId);
        await bus.publish({ type: 'oauth_client_removed', clientId });
      }
    }
    const clientCredentials = createClientCredentials({
      keyring,
      clients: liveClients,
      counters,
      audit,
      revocations,
      revokeTransaction: (work) =>
        database.transaction((trx) =>
          work({
            revocations: createClientTokenRevocationStore(trx),
            audit: auditIn(trx),
          }),
        ),
      bus,
      clock,
      settings: {
        audience: config.audience,
        accessTokenTtl: config.accessTokenTtl,
        perClientPerMinute: config.clientCredentialsPerMinute,
        perIpPerMinute: config.clientCredentialsPerMinutePerIp,
      },
    });
    const oauthGrants = createOAuthGrantStore(database.db);
    const hintVerifier = { idTokenKeys, expiredHintGraceSeconds: config.sessionAbsoluteTtl, counters, clock };
    const authorizationServer = createAuthorizationServer({
      issuer: config.issuer,
      clients: oauthClients,
      grants: oauthGrants,
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            users: createUserStore(trx),
            grants: createOAuthGrantStore(trx),
            sessions: createSessionStore(trx),
            audit: auditIn(trx),
          }),
        ),
      bus,
      sessions,
      users: userCache,
      idTokens: idTokenKeys,
      verifyIdTokenHint: createIdTokenHintVerifier(hintVerifier),
      clock,
      scopes: scopePolicy,
      requireMfaForRoles: config.requireMfaForRoles,
      appSignIns: throttle,
    });
    const rpLogout = createRpInitiatedLogout({
      clients: oauthClients,
      grants: oauthGrants,
      sessions,
      ...hintVerifier,
    });
    const tokenGrants = createTokenGrants({
      scopes: scopePolicy,
      accounts,
      sessions,
      audit,
      mfa,
      requireMfaForRoles: config.requireMfaForRoles,
      requireVerifiedEmail: config.requireVerifiedEmail,
      passwordGrant: {
        enabled: config.passwordGrant,
        isRegisteredClient: async (clientId) => (await oauthClients.find(clientId)) !== undefined,
      },
      authorizationCodes: authorizationServer,
    });
    const introspectionLimits = createClientEndpointLimits(
      counters,
      {
        perClientPerMinute: config.introspectionsPerMinute,
        failuresPerIpPerMinute: config.introspectionFailuresPerIp,
      },
      clock,
    );
    const revocationLimits = createClientEndpointLimits(
      counters,
      {
        perClientPerMinute: config.revocationsPerMinute,
        failuresPerIpPerMinute: config.revocationFailuresPerIp,
        endpoint: 'revoke',
      },
      clock,
    );
    const tokenIntrospection = createTokenIntrospection({
      issuer: config.issuer,
      tokenStrategy: config.tokenStrategy,
      sessions,
      sessionStore,
      revocations,
      users: userCache,
      clientTokens: clientCredentials,
      clients: liveClients,
      clock,
    });
    // No fetch happens here: an issuer's keys are fetched when its first token arrives, so a
    // provider that is down never delays or fails start-up.
    const externalTokens = createExternalTokenVerifier({
      issuers: config.externalIssuers,
      timeoutMs: config.externalIssuerTimeoutMs,
      clock,
      warn,
    });
    const appTokens = createAppTokens({
      keyring,
      clock,
      reserved: { typ: ACCESS_TOKEN_TYP, audience: config.audience },
      // Never longer than the retired keys that verify them are kept.
      maxTtlSeconds: Math.max(config.accessTokenTtl, declarations.tokenLifetimeSeconds),
      cutoff: revocations,
    });
    // Bounded by the apps' code: each opens its few channels once, at start-up.
    const channels = new Set<{ close(): void }>();
    closers.push(() => {
      for (const channel of channels) channel.close();
    });
    // Expired sessions and tokens are dead weight; sweep hourly (and a minute after start-up)
    // without keeping the process alive. Each step deletes in batches and runs whether the others
    // failed or not (operator red-team 2026-12l S1: one `DELETE` over a backlog met PostgreSQL's
    // statement_timeout every hour, rolled back, and the failure was dropped unseen).
    // By a clamped clock: a wall clock stepped far ahead must not delete what is still live.
    const sweepClock = createSweepClock(clock, 2 * SWEEP_INTERVAL_MS);
    const sweeper = startPeriodicSweep({
      scheduler,
      now: sweepClock,
      warn,
      intervalMs: SWEEP_INTERVAL_MS,
      firstPassAfterMs: FIRST_SWEEP_AFTER_MS,
      steps: [
        {
          name: 'expired access tokens',
          run: (now, signal) => sessionStore.deleteExpiredAccessTokens(now, { signal }),
        },
        {
          name: 'expired refresh tokens',
          run: (now, signal) => sessionStore.deleteExpiredRefreshTokens(now, { signal }),
        },
        {
          name: 'expired sessions',
          run: (now, signal) => sessionStore.deleteExpiredSessions(now, { signal }),
        },
        {
          name: 'revoked sessions',
          run: (now, signal) =>
            sessionStore.deleteRevokedSessions(now - revokedSessionRetentionMs, { signal }),
        },
        { name: 'expired account links', run: (now, signal) => accountTokens.deleteExpired(now, { signal }) },
        // Authorization codes live a minute and are unusable once deleted: nothing to clamp.
        { name: 'expired authorization codes', run: (_now, signal) => authorizationServer.sweep({ signal }) },
        // A minute past expiry: an instance whose clock runs a little behind may still open the token.
        {
          name: 'spent challenges',
          run: (now, signal) => spentChallenges.deleteExpiredChallenges(now - 60_000, { signal }),
        },
        {
          name: 'client token revocations',
          run: (now, signal) => clientTokenRevocations.deleteExpiredRevocations(now - 60_000, { signal }),
        },
        // Encrypted refresh successors are needed only during the grace interval.
        {
          name: 'refresh successors',
          run: (now, signal) =>
            sessionStore.forgetRefreshSuccessors(
              { spentBefore: now - config.refreshReuseInterval * 1000 },
              { signal },
            ),
        },
        // Rows a request in flight wrote, with its IP, after an account's deletion had stripped them.
        {
          name: 'personal data of deleted accounts',
          run: (now) => auditRetention.forgetPersonalDataOfDeletedSince(now - 2 * SWEEP_INTERVAL_MS),
        },
        // AUDIT_RETENTION: the audit trail is bounded in time, so no flood can grow it for ever.
        {
          name: 'audit retention',
          run: (now, signal) => auditRetention.deleteBefore(now - config.auditRetention * 1000, { signal }),
        },
      ],
    });
    closers.push(() => sweeper.stop());
    // One closing for every caller: a second close() waits for the first to finish.
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= closeOpened();
      return closing;
    };
    const { secretKey: _secret, secretKeyPrevious: _previous, ...given } = config;
    // The core's settings only: each app reads its own through appSettings.
    const settings: GatehouseSettings & { [appSetting: string]: unknown } = { ...given };
    for (const app of apps) for (const key of Object.keys(app.schema.properties)) delete settings[key];
    const withoutHashOrNone = (user: UserRecord | undefined) =>
      user === undefined ? undefined : withoutHash(user);
    const facade: Gatehouse = Object.freeze({
      config: Object.freeze(settings),
      clock,
      scheduler,
      users: Object.freeze({
        get: (id: string) => userCache.get(id),
        async findByEmail(email: string) {
          const normalized = normalizeEmail(email);
          return normalized === undefined
            ? undefined
            : withoutHashOrNone(await users.findUserByEmailKey(normalized.key));
        },
        register: async (input: Registration) => withoutHash(await accounts.register(input)),
      }),
      sessions: Object.freeze({
        async validate(accessToken: string) {
          const check = await sessions.verifyAccessToken(accessToken);
          if (!check.ok) return check;
          const user = await userCache.get(check.userId);
          if (user === undefined || !user.isActive) return { ok: false, reason: 'disabled' } as const;
          const { ok: _ok, ...session } = check;
          return { ok: true, user, session } as const;
        },
        check: (sessionId: string) => sessions.checkCookieSession(sessionId),
        isRevoked: (sessionId: string) => revocations.isRevoked(sessionId),
        isCutOff: (issuedAtSeconds: number) => revocations.isCutOff(issuedAtSeconds),
        revocationCutoff: () => revocations.cutoff,
        revokeAll: (userId: string) => sessions.revokeUserSessions(userId),
      }),
      events: Object.freeze({
        subscribe: (handler: (event: GatehouseEvent) => void) => bus.subscribe(handler),
      }),
      counters: Object.freeze({
        increment: (key: string, windowMs: number) => counters.increment(APP_COUNTER_PREFIX + key, windowMs),
        peek: (key: string) => counters.peek(APP_COUNTER_PREFIX + key),
        reset: (key: string) => counters.reset(APP_COUNTER_PREFIX + key),
      }),
      appTokens,
      appSettings<P extends AppSettingProperties>(definition: AppSettings<P>): Static<TObject<P>> {
        const registered = appSettings.get(definition.app);
        if (registered === undefined || registered.app !== definition) {
          throw new TypeError(
            `appSettings: the settings of "${definition.app}" were not registered; pass them as createGatehouse(config, { settings: [...] })`,
          );
        }
        return registered.values as Static<TObject<P>>;
      },
      appSealer: (purpose: string) => createAppSealer(config.secretKey, config.secretKeyPrevious, purpose),
      appDatabase: <Tables extends Record<keyof Tables, object>>() => appTables<Tables, Schema>(database.db),
      transaction: <T>(work: (tx: GatehouseTransaction) => Promise<T>) =>
        runGatehouseTransaction({ database, clock }, work),
      async openChannel<S extends TSchema>(channelOptions: AppChannelOptions<S>) {
        const channel = await openAppChannel(redis, warn, channelOptions);
        channels.add(channel);
        return channel;
      },
      redisState: () => redis?.state() ?? 'disabled',
      onAccountDeleting: (hook: AccountDeletingHook) => accountDeletion.onAccountDeleting(hook),
      onAccountDeletionPreparing: (hook: AccountDeletionPreparingHook) =>
        accountDeletion.onAccountDeletionPreparing(hook),
      close,
    });
    const core: GatehouseCore = {
      scopes: scopePolicy,
      config,
      clock,
      database,
      users,
      sessionStore,
      userCache,
      hasher,
      refusalFloor,
      keyring,
      keyRetentionSeconds,
      bus,
      revocations,
      sessions,
      accounts,
      tokenGrants,
      mfa,
      passkeys,
      mfaAdministration,
      stepUp,
      reauthentication,
      selfService,
      userAdmin,
      accountDeletion,
      lifecycle,
      mailer,
      securityNotices,
      userImport,
      oauthClients,
      liveClients,
      externalTokens,
      authorizationServer,
      clientCredentials,
      tokenIntrospection,
      introspectionLimits,
      revocationLimits,
      rpLogout,
      idTokenKeys,
      throttle,
      counters,
      securityCounters,
      audit,
      auditRetention,
      redisState: facade.redisState,
      redisStats: () => redis?.stats(),
      checkRedis: async (timeoutMs) => (redis === undefined ? 'disabled' : redis.check(timeoutMs)),
      secretSuperseded: () => secretCheck.superseded,
      facade,
      close,
    };
    bindGatehouseCore(core);
    return core;
  } catch (error) {
    await closeOpened().catch(() => {});
    throw error;
  }
}

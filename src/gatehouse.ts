import type { Kysely } from 'kysely';
import type { Static, TSchema } from 'typebox';
import {
  type AccountDeletingHook,
  type AccountLifecycle,
  createAccountLifecycle,
} from './accounts/account-lifecycle.js';
import { type AccountService, createAccountService } from './accounts/account-service.js';
import {
  type CounterStore,
  createMemoryCounterStore,
  createResilientCounterStore,
} from './accounts/counter-store.js';
import { createDeviceTokens } from './accounts/device-token.js';
import { createKeyedGate } from './accounts/keyed-gate.js';
import { createLoginThrottle, type LoginThrottle } from './accounts/login-throttle.js';
import { createSelfService, type SelfService } from './accounts/self-service.js';
import { createUserAdminService, type UserAdminService } from './accounts/user-admin-service.js';
import { createUserCache, type UserCache } from './accounts/user-cache.js';
import { createUserImport, type UserImport } from './accounts/user-import.js';
import { type AuditLog, createAuditLog } from './audit/audit-log.js';
import type { GatehouseConfig } from './config/config.js';
import { assertValidConfig } from './config/validate-config.js';
import { type AppChannel, type AppChannelOptions, openAppChannel } from './events/app-channel.js';
import { createMemoryEventBus, type EventBus } from './events/event-bus.js';
import {
  type CoreWarn,
  createRedisConnections,
  type RedisConnections,
  type RedisState,
  type RedisStats,
  warnByProcess,
} from './events/redis-connections.js';
import { createRedisEventBus } from './events/redis-event-bus.js';
import { type GatehouseTransaction, runGatehouseTransaction } from './gatehouse-transaction.js';
import { type Scheduler, systemScheduler } from './lib/scheduler.js';
import { loadMailTemplates } from './mail/mail-templates.js';
import { createSmtpTransport } from './mail/mail-transport.js';
import { createMailer, type Mailer } from './mail/mailer.js';
import { createOutboxTransport, outboxDirectory } from './mail/outbox.js';
import { createMfaService, type MfaService } from './mfa/mfa-service.js';
import { createMfaTokens } from './mfa/mfa-token.js';
import { createMfaStore } from './mfa/storage/mfa-store.js';
import { createOAuthClients, type OAuthClients } from './oauth/oauth-clients.js';
import { createPasswordHasher, type PasswordHasher } from './passwords/password-hasher.js';
import { createPasswordPolicy } from './passwords/password-policy.js';
import { createReauthentication, type Reauthentication } from './sessions/reauthentication.js';
import {
  createRevocationList,
  type RevocationList,
  revocationRetentionMs,
} from './sessions/revocation-list.js';
import {
  ACCESS_TOKEN_TYP,
  COOKIE_RECHECK_MS,
  type CookieSessionCheck,
  createSessionManager,
  type SessionManager,
} from './sessions/session-manager.js';
import { createStepUpPolicy, type StepUpPolicy } from './sessions/step-up.js';
import { createTokenGrants, type TokenGrants } from './sessions/token-grants.js';
import { createAccountTokenStore } from './storage/account-token-store.js';
import { appTables } from './storage/app-tables.js';
import { type AuditRetentionStore, createAuditRetentionStore } from './storage/audit-retention-store.js';
import { createAuditStore } from './storage/audit-store.js';
import { createLifecycleStores } from './storage/lifecycle-stores.js';
import { type AppMigrations, migrateToLatest } from './storage/migrate.js';
import { createOAuthClientStore } from './storage/oauth-client-store.js';
import { type Database, openDatabase } from './storage/open-database.js';
import type { Schema } from './storage/schema.js';
import { createSessionStore, type SessionStore } from './storage/session-store.js';
import { createUserAdminTransaction } from './storage/user-admin-transaction.js';
import { createUserImportStore } from './storage/user-import-store.js';
import { createUserStore, type UserStore } from './storage/user-store.js';
import { type AppTokens, createAppTokens } from './tokens/app-tokens.js';
import { createKeyring, type Keyring, retiredKeyRetentionSeconds } from './tokens/keyring.js';

/** Options of {@link createGatehouse} that are not settings. */
export interface GatehouseOptions {
  /** The clock in epoch ms; tests pass a controllable one. @default Date.now */
  clock?: () => number;
  /**
   * Where periodic upkeep (the hourly sweep, revocation-list reloads) is scheduled; tests pass
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
   * Told the SQL text of every statement the core runs, `begin` and `commit` included, once it
   * has run (a query log; the tests count a login's write transactions with it). Keep it cheap:
   * it runs on the request path. @default none
   */
  onQuery?: (sql: string) => void;
}

/**
 * The framework-free core of one Gatehouse instance: storage, hashing, tokens, sessions,
 * accounts and the caches that keep the hot path free of database reads.
 */
export interface Gatehouse {
  readonly config: GatehouseConfig;
  readonly clock: () => number;
  readonly database: Database;
  readonly users: UserStore;
  readonly sessionStore: SessionStore;
  readonly userCache: UserCache;
  readonly hasher: PasswordHasher;
  readonly keyring: Keyring;
  readonly bus: EventBus;
  readonly revocations: RevocationList;
  readonly sessions: SessionManager;
  readonly accounts: AccountService;
  /** The token endpoint's grants (`password`, `refresh_token`): scopes, login rules, audit. */
  readonly tokenGrants: TokenGrants;
  /** Second factors: TOTP enrolment, recovery codes, the second step of a login. */
  readonly mfa: MfaService;
  /**
   * Step-up for sensitive changes: `await gatehouse.stepUp.requireRecentAuthentication(sessionId)`
   * throws STEP_UP_REQUIRED (401 `insufficient_user_authentication`, RFC 9470) unless the session
   * authenticated within STEP_UP_MAX_AGE. Call it before any sensitive change of your own.
   */
  readonly stepUp: StepUpPolicy;
  /** `POST /auth/reauthenticate`: proves the account's factors again and refreshes `auth_time`. */
  readonly reauthentication: Reauthentication;
  /** Register, browser sign-in and sign-out, profile changes and one's own sessions. */
  readonly selfService: SelfService;
  /** Administration of other people's accounts (roles, disabling, deletion). */
  readonly userAdmin: UserAdminService;
  /**
   * Email verification, password reset, email change and account deletion (issue 12): mailed,
   * single-use, expiring links.
   */
  readonly lifecycle: AccountLifecycle;
  /**
   * Outgoing mail: SMTP (`SMTP_URL`) or the file outbox (`DATA_DIR/outbox`), queued and retried in
   * the background.
   */
  readonly mailer: Mailer;
  /**
   * Registers `hook` to run inside the transaction that deletes an account, before its row goes
   * (Dicery closes the rooms the account hosts there). It gets the transaction (`tx.appDatabase`,
   * `tx.afterCommit` for broadcasts) and the account's id; throwing aborts the deletion. Returns a
   * function that removes the hook.
   */
  onAccountDeleting(hook: AccountDeletingHook): () => void;
  /** Accounts imported from another application with their legacy hashes (`import-users`). */
  readonly userImport: UserImport;
  /** Registered OAuth clients: registration by admins, look-up, client authentication (issue 15). */
  readonly oauthClients: OAuthClients;
  readonly throttle: LoginThrottle;
  /** Expiring counters (login throttling, join limits); in Redis when configured. */
  readonly counters: CounterStore;
  readonly audit: AuditLog;
  /** Failed-login tallies (one row per account and hour) and the AUDIT_RETENTION sweep. */
  readonly auditRetention: AuditRetentionStore;
  /**
   * A query handle typed with an app's own tables (`Tables`) only, for reads and single writes
   * outside a transaction (use {@link Gatehouse.transaction} for units of work). The core's tables
   * are not in its type: change them only through the core's operations, which keep the caches and
   * the other instances in step.
   */
  appDatabase<Tables extends Record<keyof Tables, object>>(): Kysely<Tables>;
  /**
   * Whether an account session is still valid, for long-lived responses (event streams) that must
   * end when their session does: `revoked` is answered from memory (this instance's list, kept
   * current by broadcasts and a periodic reload); a live answer re-reads the session row.
   */
  checkSession(sessionId: string): Promise<CookieSessionCheck>;
  /** Whether `sessionId` is known revoked, from memory only (cheap enough for every heartbeat). */
  isSessionRevoked(sessionId: string): boolean;
  /** Signed tokens of the app's own kinds (Dicery's room tokens), with the instance's keys. */
  readonly appTokens: AppTokens;
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
  /** Redis reconnections and cross-instance message lag since start; undefined without Redis. */
  redisStats(): RedisStats | undefined;
  /**
   * Like {@link redisState}, but when Redis looks up it is asked (PING) within `timeoutMs`, so a
   * frozen Redis shows as `down` even before a request ran into it. For readiness probes.
   */
  checkRedis(timeoutMs: number): Promise<RedisState>;
  /**
   * Runs `work` as one unit of work: the app's own writes (`tx.db`) and the core's
   * (`tx.audit`) commit together or not at all, and `tx.afterCommit` callbacks run only after
   * the commit. Keep password hashing, Redis and
   * network calls out of `work` (they belong in `afterCommit`): the transaction holds row locks,
   * and on SQLite the only connection, until it ends.
   *
   * @example
   * await gatehouse.transaction(async (tx) => {
   *   const db = tx.db.withTables<AppTables>();
   *   await db.insertInto('scores').values({ player_id: playerId, score: 0 }).execute();
   *   await tx.audit.record({ event: 'score_created', targetId: playerId });
   *   tx.afterCommit(() => notifyScoreboard(playerId));
   * });
   */
  transaction<T>(work: (tx: GatehouseTransaction) => Promise<T>): Promise<T>;
  /** Closes connections and timers. */
  close(): Promise<void>;
}

/** Wires up a {@link Gatehouse} from settings. */
export async function createGatehouse(
  config: GatehouseConfig,
  options: GatehouseOptions = {},
): Promise<Gatehouse> {
  assertValidConfig(config); // the environment's checks, for settings passed in code (issue 16)
  const clock = options.clock ?? Date.now;
  const scheduler = options.scheduler ?? systemScheduler;
  const warn = options.onWarning ?? warnByProcess;
  const database = openDatabase(config.databaseUrl, {
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    onConnectionError:
      options.onConnectionError ??
      ((error) => warn('database connection lost; the pool reconnects on demand', { error: error.message })),
    ...(options.onQuery === undefined ? {} : { onQuery: options.onQuery }),
  });
  let redis: RedisConnections | undefined;
  let keyring: Keyring | undefined;
  let mailer: Mailer | undefined;
  try {
    if (options.migrate ?? true) await migrateToLatest(database, options.migrations);
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
            },
            warn,
          );
    const bus: EventBus =
      redis === undefined
        ? createMemoryEventBus({
            onHandlerError: (error, event) =>
              warn(`Event handler threw on ${event.type}`, {
                error: error instanceof Error ? error.message : String(error),
              }),
          })
        : await createRedisEventBus(redis, { warn });
    const localCounters = createMemoryCounterStore(clock, { maxKeys: config.rateLimitMaxKeys });
    const counters =
      redis === undefined
        ? localCounters
        : createResilientCounterStore({ connections: redis, fallback: localCounters });
    keyring = await createKeyring({
      algorithm: config.jwtAlgorithm,
      secret: config.secretKey,
      previousSecret: config.secretKeyPrevious,
      issuer: config.issuer,
      dataDir: config.dataDir,
      database,
      clock,
      retentionSeconds: retiredKeyRetentionSeconds(config),
      onWarning: warn,
    });
    const revocations = await createRevocationList({
      store: sessionStore,
      bus,
      clock,
      retentionMs: revocationRetentionMs({
        accessTokenTtlMs: config.accessTokenTtl * 1000,
        cookieRecheckMs: COOKIE_RECHECK_MS,
        streamHeartbeatMs: config.roomHeartbeatInterval * 1000,
      }),
      reloadIntervalMs: config.revocationReloadInterval * 1000,
      scheduler,
      overlapMs: config.revocationReloadOverlap * 1000,
      onReloadError: (error) =>
        warn('revocation list reload failed; retrying', {
          error: error instanceof Error ? error.message : String(error),
        }),
    });
    const userCache = createUserCache(users, bus, { clock });
    const hasher = createPasswordHasher(config.passwordHashConcurrency, config.passwordHashReservedSlots);
    const sessions = createSessionManager({
      config,
      sessions: sessionStore,
      users,
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            sessions: createSessionStore(trx),
            users: createUserStore(trx),
            audit: createAuditLog(createAuditStore(trx), clock, createAuditRetentionStore(trx)),
          }),
        ),
      keyring,
      revocations,
      bus,
      clock,
    });
    const throttle = createLoginThrottle(
      counters,
      {
        perAccount: config.loginMaxFailuresPerAccount,
        perIp: config.loginMaxFailuresPerIp,
        global: config.loginMaxFailuresGlobal,
        perDevice: config.loginMaxFailuresPerDevice,
        successesPerAccount: config.loginMaxSuccessesPerAccount,
        windowMs: config.loginFailureWindow * 1000,
      },
      clock,
    );
    const passwordPolicy = createPasswordPolicy({
      minLength: config.passwordMinLength,
      contextWords: [config.issuer],
    });
    const deviceTokens = createDeviceTokens({
      secretKey: config.secretKey,
      ttlSeconds: config.deviceTokenTtl,
      clock,
    });
    const accounts = createAccountService({
      users,
      userCache,
      hasher,
      sessions,
      throttle,
      // Entries live only while a password check runs or waits: bounded by these two numbers.
      gate: createKeyedGate({ maxWaitingPerKey: 32, maxKeys: 10_000 }),
      deviceTokens,
      bus,
      clock,
      passwordPolicy,
      requireVerifiedEmail: config.requireVerifiedEmail,
    });
    const auditRetention = createAuditRetentionStore(database.db);
    const audit = createAuditLog(createAuditStore(database.db), clock, auditRetention);
    const stepUp = createStepUpPolicy({ sessions: sessionStore, maxAgeSeconds: config.stepUpMaxAge, clock });
    // Without SMTP, mail goes to files only the operator can read; say so once at start-up.
    const transport =
      config.smtpUrl === undefined
        ? createOutboxTransport({ dir: outboxDirectory(config.dataDir), from: config.mailFrom, clock })
        : createSmtpTransport({
            url: config.smtpUrl,
            from: config.mailFrom,
            timeoutMs: config.mailSendTimeoutMs,
          });
    mailer = createMailer({
      transport,
      templates: loadMailTemplates(config.mailTemplatesDir),
      publicUrl: config.publicUrl,
      maxQueued: config.mailQueueMax,
      scheduler,
      warn,
    });
    const mfa = createMfaService({
      stepUp,
      store: createMfaStore(database.db),
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            mfa: createMfaStore(trx),
            audit: createAuditLog(createAuditStore(trx), clock, createAuditRetentionStore(trx)),
          }),
        ),
      users,
      counters,
      tokens: createMfaTokens(config.secretKey),
      deviceTokens,
      secretKey: config.secretKey,
      issuer: config.issuer,
      limits: {
        tokenTtlMs: config.mfaTokenTtl * 1000,
        perToken: config.mfaMaxFailuresPerToken,
        perAccount: config.mfaMaxFailuresPerAccount,
        perDevice: config.loginMaxFailuresPerDevice,
        windowMs: config.loginFailureWindow * 1000,
      },
      clock,
    });
    const selfService = createSelfService({
      accounts,
      sessions,
      users,
      sessionStore,
      audit,
      mfa,
      stepUp,
      mailer,
    });
    const reauthentication = createReauthentication({
      accounts,
      mfa,
      users,
      sessions: sessionStore,
      audit,
      clock,
    });
    const userAdmin = createUserAdminService({
      users,
      transaction: createUserAdminTransaction(database),
      revocations,
      bus,
      clock,
      onPublishError: (error, event) =>
        warn(`Committed account change not broadcast (${event.type})`, {
          error: error instanceof Error ? error.message : String(error),
        }),
    });
    const accountTokens = createAccountTokenStore(database.db);
    const transaction = <T>(work: (tx: GatehouseTransaction) => Promise<T>) =>
      runGatehouseTransaction({ database, clock }, work);
    const lifecycle = createAccountLifecycle({
      users,
      tokens: accountTokens,
      secondFactor: {
        isEnrolled: (userId) => mfa.isEnrolled(userId),
        requireRecentAuthentication: (sessionId) => stepUp.requireRecentAuthentication(sessionId),
      },
      transaction,
      stores: (tx) => createLifecycleStores(tx.db, database.dialect),
      accounts,
      selfService,
      hasher,
      passwordPolicy,
      throttle,
      counters,
      revocations,
      bus,
      mailer,
      clock,
      warn,
      settings: {
        requireVerifiedEmail: config.requireVerifiedEmail,
        emailVerificationTtl: config.emailVerificationTtl,
        passwordResetTtl: config.passwordResetTtl,
        accountMailsPerHour: config.accountMailsPerHour,
      },
    });
    const userImport = createUserImport({
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            users: createUserImportStore(trx),
            audit: createAuditLog(createAuditStore(trx), clock, createAuditRetentionStore(trx)),
          }),
        ),
      clock,
    });
    const oauthClients = createOAuthClients({
      clients: createOAuthClientStore(database.db),
      transaction: (work) =>
        database.transaction((trx) =>
          work({
            clients: createOAuthClientStore(trx),
            audit: createAuditLog(createAuditStore(trx), clock, createAuditRetentionStore(trx)),
          }),
        ),
      clock,
    });
    const tokenGrants = createTokenGrants({
      accounts,
      sessions,
      audit,
      mfa,
      passwordGrant: {
        enabled: config.passwordGrant,
        isRegisteredClient: async (clientId) => (await oauthClients.find(clientId)) !== undefined,
      },
    });
    const appTokens = createAppTokens({
      keyring,
      clock,
      reserved: { typ: ACCESS_TOKEN_TYP, audience: config.audience },
    });
    // Bounded by the apps' code: each opens its few channels once, at start-up.
    const channels = new Set<{ close(): void }>();
    // Expired sessions and tokens are dead weight; sweep hourly without keeping the process alive.
    const sweeper = scheduler.setInterval(() => {
      sessionStore.deleteExpired(clock()).catch(() => {});
      accountTokens.deleteExpired(clock()).catch(() => {});
      // Encrypted refresh successors are needed only during the grace interval.
      sessionStore
        .forgetRefreshSuccessors({ spentBefore: clock() - config.refreshReuseInterval * 1000 })
        .catch(() => {});
      // AUDIT_RETENTION: the audit trail is bounded in time, so no flood can grow it for ever.
      auditRetention.deleteBefore(clock() - config.auditRetention * 1000).catch(() => {});
    }, 3600_000);
    return {
      config,
      clock,
      database,
      users,
      sessionStore,
      userCache,
      hasher,
      keyring,
      bus,
      revocations,
      sessions,
      accounts,
      tokenGrants,
      mfa,
      stepUp,
      reauthentication,
      selfService,
      userAdmin,
      lifecycle,
      mailer,
      onAccountDeleting: (hook) => lifecycle.onAccountDeleting(hook),
      userImport,
      oauthClients,
      throttle,
      counters,
      audit,
      auditRetention,
      appTokens,
      appDatabase: <Tables extends Record<keyof Tables, object>>() => appTables<Tables, Schema>(database.db),
      checkSession: (sessionId) => sessions.checkCookieSession(sessionId),
      isSessionRevoked: (sessionId) => revocations.isRevoked(sessionId),
      async openChannel(channelOptions) {
        const channel = await openAppChannel(redis, warn, channelOptions);
        channels.add(channel);
        return channel;
      },
      redisState: () => redis?.state() ?? 'disabled',
      redisStats: () => redis?.stats(),
      checkRedis: async (timeoutMs) => (redis === undefined ? 'disabled' : redis.check(timeoutMs)),
      transaction,
      async close() {
        sweeper.cancel();
        mailer?.close();
        revocations.close();
        userCache.close();
        keyring?.close();
        for (const channel of channels) channel.close();
        await bus.close();
        await redis?.close();
        await database.close();
      },
    };
  } catch (error) {
    mailer?.close();
    keyring?.close();
    await redis?.close();
    await database.close();
    throw error;
  }
}

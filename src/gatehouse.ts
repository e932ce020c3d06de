import { Redis } from 'ioredis';
import { type AccountService, createAccountService } from './accounts/account-service.js';
import {
  type CounterStore,
  createMemoryCounterStore,
  createRedisCounterStore,
} from './accounts/counter-store.js';
import { createLoginThrottle, type LoginThrottle } from './accounts/login-throttle.js';
import { createUserCache, type UserCache } from './accounts/user-cache.js';
import { type AuditLog, createAuditLog } from './audit/audit-log.js';
import type { GatehouseConfig } from './config/config.js';
import { createMemoryEventBus, type EventBus } from './events/event-bus.js';
import { createRedisEventBus } from './events/redis-event-bus.js';
import { type GatehouseTransaction, runGatehouseTransaction } from './gatehouse-transaction.js';
import { createPasswordHasher, type PasswordHasher } from './passwords/password-hasher.js';
import { createRedisRoomBus } from './rooms/redis-room-bus.js';
import { createMemoryRoomBus, type RoomBus } from './rooms/room-bus.js';
import { createRoomService, type RoomService } from './rooms/room-service.js';
import { createRoomTokens, type RoomTokens } from './rooms/room-token.js';
import { createRevocationList, type RevocationList } from './sessions/revocation-list.js';
import { createSessionManager, type SessionManager } from './sessions/session-manager.js';
import { createAuditStore } from './storage/audit-store.js';
import { type AppMigrations, migrateToLatest } from './storage/migrate.js';
import { type Database, openDatabase } from './storage/open-database.js';
import { createRoomStore, type RoomStore } from './storage/room-store.js';
import { createSessionStore, type SessionStore } from './storage/session-store.js';
import { createUserStore, type UserStore } from './storage/user-store.js';
import { createKeyring, type Keyring } from './tokens/keyring.js';

/** Options of {@link createGatehouse} that are not settings. */
export interface GatehouseOptions {
  /** The clock in epoch ms; tests pass a controllable one. @default Date.now */
  clock?: () => number;
  /** Run migrations before returning. @default true */
  migrate?: boolean;
  /**
   * The embedding app's own migrations, by app name: `{ dicery: { '001-tables': { up, down } } }`.
   * They run after the core's, each app with its own history table, so names never collide
   * with the core's or another app's. A bad app name fails here, naming it.
   * @default {}
   */
  migrations?: AppMigrations;
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
  readonly throttle: LoginThrottle;
  /** Expiring counters (login throttling, join limits); in Redis when configured. */
  readonly counters: CounterStore;
  readonly audit: AuditLog;
  /** Dicery rooms: create, join, roll, leave, kick, close. */
  readonly rooms: RoomService;
  /** Storage behind {@link Gatehouse.rooms}, for read-only checks such as stream reconciliation. */
  readonly roomStore: RoomStore;
  /** Live room events (memory, or Redis pub/sub when `redisUrl` is set). */
  readonly roomBus: RoomBus;
  /** Issues and verifies room-scoped player tokens. */
  readonly roomTokens: RoomTokens;
  /** A Redis client when `redisUrl` is set, for other shared state (e.g. rate limits). */
  readonly redis: Redis | undefined;
  /**
   * Runs `work` as one unit of work: the app's own writes (`tx.db`) and the core's
   * (`tx.rooms`, `tx.audit`) commit together or not at all, and room events and
   * `tx.afterCommit` callbacks run only after the commit. Keep password hashing, Redis and
   * network calls out of `work` (they belong in `afterCommit`): the transaction holds row locks,
   * and on SQLite the only connection, until it ends.
   *
   * @example
   * await gatehouse.transaction(async (tx) => {
   *   const player = await tx.rooms.join(code, name);
   *   await tx.db.withTables<AppTables>().insertInto('scores').values({ player_id: player.id, score: 0 }).execute();
   *   tx.afterCommit(() => notifyScoreboard(player.id));
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
  const clock = options.clock ?? Date.now;
  const database = openDatabase(config.databaseUrl);
  try {
    if (options.migrate ?? true) await migrateToLatest(database, options.migrations);
    const users = createUserStore(database.db);
    const sessionStore = createSessionStore(database.db);
    let redis: Redis | undefined;
    let bus: EventBus;
    if (config.redisUrl === undefined) {
      bus = createMemoryEventBus();
    } else {
      bus = await createRedisEventBus(config.redisUrl);
      redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
      redis.on('error', () => {});
      await redis.connect();
    }
    const counters = redis === undefined ? createMemoryCounterStore(clock) : createRedisCounterStore(redis);
    const keyring = await createKeyring({
      algorithm: config.jwtAlgorithm,
      secret: config.secretKey,
      issuer: config.issuer,
      dataDir: config.dataDir,
    });
    const revocations = await createRevocationList(sessionStore, bus, clock);
    const userCache = createUserCache(users, bus);
    const hasher = createPasswordHasher(config.passwordHashConcurrency);
    const sessions = createSessionManager({
      config,
      sessions: sessionStore,
      users,
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
        windowMs: config.loginFailureWindow * 1000,
      },
      clock,
    );
    const accounts = createAccountService({ users, userCache, hasher, sessions, throttle, bus, clock });
    const audit = createAuditLog(createAuditStore(database.db), clock);
    const roomStore = createRoomStore(database.db);
    const roomBus =
      config.redisUrl === undefined ? createMemoryRoomBus() : await createRedisRoomBus(config.redisUrl);
    const rooms = createRoomService({
      rooms: roomStore,
      // Each room change and its event: one transaction (issue 9, unit of work).
      transaction: (work) => database.transaction((trx) => work(createRoomStore(trx))),
      bus: roomBus,
      clock,
    });
    const roomTokens = createRoomTokens({ keyring, clock, ttlSeconds: config.roomTokenTtl });
    // Expired sessions and tokens are dead weight; sweep hourly without keeping the process alive.
    const sweeper = setInterval(() => {
      sessionStore.deleteExpired(clock()).catch(() => {});
    }, 3600_000);
    sweeper.unref();
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
      throttle,
      counters,
      audit,
      rooms,
      roomStore,
      roomBus,
      roomTokens,
      redis,
      transaction: (work) => runGatehouseTransaction({ database, roomBus, clock }, work),
      async close() {
        clearInterval(sweeper);
        revocations.close();
        userCache.close();
        await bus.close();
        await roomBus.close();
        redis?.disconnect();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}

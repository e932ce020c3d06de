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
import { createPasswordHasher, type PasswordHasher } from './passwords/password-hasher.js';
import { createPasswordPolicy } from './passwords/password-policy.js';
import { createRedisRoomBus } from './rooms/redis-room-bus.js';
import { createMemoryRoomBus, type RoomBus } from './rooms/room-bus.js';
import { createRoomService, type RoomService } from './rooms/room-service.js';
import { createRoomTokens, type RoomTokens } from './rooms/room-token.js';
import { createRevocationList, type RevocationList } from './sessions/revocation-list.js';
import { createSessionManager, type SessionManager } from './sessions/session-manager.js';
import { migrateToLatest } from './storage/migrate.js';
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
    if (options.migrate ?? true) await migrateToLatest(database);
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
    const passwordPolicy = createPasswordPolicy({
      minLength: config.passwordMinLength,
      contextWords: [config.issuer],
    });
    const accounts = createAccountService({
      users,
      userCache,
      hasher,
      sessions,
      throttle,
      bus,
      clock,
      passwordPolicy,
    });
    const audit = createAuditLog(database.db, clock);
    const roomStore = createRoomStore(database.db);
    const roomBus =
      config.redisUrl === undefined ? createMemoryRoomBus() : await createRedisRoomBus(config.redisUrl);
    const rooms = createRoomService({ rooms: roomStore, bus: roomBus, clock });
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

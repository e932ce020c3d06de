/**
 * Dicery, the room-code dice app, as a Fastify plugin built on Gatehouse's public API alone
 * (`gatehouse`, `gatehouse/fastify`): its tables and migrations, its error codes, its room tokens
 * (app tokens signed by the core), its events (an app channel), its routes.
 *
 * ```ts
 * const gatehouse = await createGatehouse(config, {
 *   migrations: { dicery: diceryMigrations },
 *   scopes: diceryScopes,
 *   settings: [dicerySettings],
 * });
 * await app.register(gatehousePlugin, { gatehouse });
 * await app.register(diceryPlugin, { gatehouse });
 * ```
 *
 * @module
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Gatehouse, GatehouseTransaction } from '../../index.js';
import { createPresence, type Presence } from './core/presence.js';
import type { RoomBus } from './core/room-bus.js';
import { createRoomChange } from './core/room-change.js';
import { createRoomHistory, type RoomHistory } from './core/room-history.js';
import {
  createRoomHostTools,
  emptyHostedRooms,
  purgeHostedRooms,
  type RoomHostTools,
} from './core/room-host-tools.js';
import { createRoomLog, type RoomLog } from './core/room-log.js';
import { createRoomService, type RoomService, type RoomTransaction } from './core/room-service.js';
import { createRoomTokens, type RoomTokens } from './core/room-token.js';
import { createSharedRoomBus } from './core/shared-room-bus.js';
import { createSpectatorLinks, type SpectatorLinks } from './core/spectator-links.js';
import { DICERY_ERROR_STATUSES } from './http/error-statuses.js';
import type { RoomEventsRouteOptions } from './http/room-events-route.js';
import { registerRoomHostRoutes } from './http/room-host-routes.js';
import { registerRoomRoutes } from './http/room-routes.js';
import { diceryOpenApiSchemes } from './http/security-schemes.js';
import { type DicerySettings, dicerySettings } from './settings.js';
import { diceryMigrations } from './storage/migrations/index.js';
import { createRoomStore, type RoomStore } from './storage/room-store.js';
import type { DiceryTables } from './storage/tables.js';

export type { DiceryError, DiceryErrorCode } from './core/errors.js';
export { DICERY_ERROR_STATUSES } from './http/error-statuses.js';
export { diceryScopes } from './scopes.js';
export type { DicerySettings } from './settings.js';
export { diceryMigrations, dicerySettings };

/** One Dicery instance's services, on `app.dicery` once the plugin is registered. */
export interface Dicery {
  /** Dicery's settings in force (`ROOM_*`, `MAX_*`), from `gatehouse.appSettings(dicerySettings)`. */
  readonly settings: DicerySettings;
  /** Rooms: create, join, roll, leave, kick, close. */
  readonly rooms: RoomService;
  /** Storage behind {@link Dicery.rooms}, for read-only checks such as stream reconciliation. */
  readonly roomStore: RoomStore;
  /** Live room events, shared by the deployment's instances through the core's app channel. */
  readonly roomBus: RoomBus;
  /** Issues and verifies room-scoped player tokens. */
  readonly roomTokens: RoomTokens;
  /** The host's tools: room list, bans, lock, rename, hand-over, idle expiry (issue 14). */
  readonly hostTools: RoomHostTools;
  /** Who is connected to each room now, across instances (issue 14). */
  readonly presence: Presence;
  /** The signed roll log: entries, pages, published keys. */
  readonly log: RoomLog;
  /** Roll history pages and exports as each caller may see them. */
  readonly history: RoomHistory;
  /** Read-only watch links: create, list, revoke, check (issue 14, item 8). */
  readonly spectators: SpectatorLinks;
}

/** Options of {@link diceryPlugin}. */
export interface DiceryPluginOptions {
  /**
   * The core, created with `migrations: { dicery: diceryMigrations }`, `scopes: diceryScopes` and
   * `settings: [dicerySettings]`.
   */
  gatehouse: Gatehouse;
  /** Options of the event stream route. */
  events?: RoomEventsRouteOptions;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Dicery's services (set by {@link diceryPlugin}). */
    dicery: Dicery;
  }
}

/** Builds Dicery's services over the core's public API. */
export async function createDicery(
  gatehouse: Gatehouse,
  onWarning: (message: string) => void,
): Promise<Dicery> {
  const { clock } = gatehouse;
  // Throws, naming the fix, when the core was created without `settings: [dicerySettings]`.
  const config = gatehouse.appSettings(dicerySettings);
  const roomStore = createRoomStore(gatehouse.appDatabase<DiceryTables>());
  const roomBus = await createSharedRoomBus((options) => gatehouse.openChannel(options), {
    onWarning,
    onHandlerError: (error, event) =>
      onWarning(
        `Room event handler threw on ${event.type}: ${error instanceof Error ? error.message : String(error)}`,
      ),
  });
  // Each room change and its event: one unit of work (issue 9); events are published after it.
  const transaction: RoomTransaction = (work) =>
    gatehouse.transaction((tx) =>
      work(createRoomStore(tx.appDatabase<DiceryTables>()), {
        lockAccount: (userId) => tx.lockAccount(userId),
      }),
    );
  // The roll log's Ed25519 key is sealed under SECRET_KEY for this purpose alone (issue 14).
  const log = createRoomLog({ store: roomStore.log, sealer: gatehouse.appSealer('dicery-room-log'), clock });
  const rooms = createRoomService({
    rooms: roomStore,
    log,
    transaction,
    bus: roomBus,
    clock,
    maxPlayers: config.maxPlayersPerRoom,
    maxPlayersPerNetwork: config.maxPlayersPerRoomPerNetwork,
    maxOpenRoomsPerHost: config.maxOpenRoomsPerHost,
    seatTtlSeconds: config.roomSeatTtl,
    maxEventsPerRoom: config.roomMaxEvents,
  });
  const roomTokens = createRoomTokens({
    tokens: gatehouse.appTokens,
    clock,
    ttlSeconds: config.roomTokenTtl,
  });
  const change = createRoomChange({
    transaction,
    bus: roomBus,
    maxEventsPerRoom: config.roomMaxEvents,
    onPublishError: (error, event) =>
      onWarning(
        `Room event ${event.type} #${event.id} was stored but not published: ${error instanceof Error ? error.message : String(error)}`,
      ),
  });
  const hostTools = createRoomHostTools({
    rooms: roomStore,
    change,
    clock,
    maxOpenRoomsPerHost: config.maxOpenRoomsPerHost,
  });
  const presence = await createPresence({
    openChannel: (channel) => gatehouse.openChannel(channel),
    scheduler: gatehouse.scheduler,
    heartbeatMs: config.roomHeartbeatInterval * 1000,
    onWarning,
  });
  return {
    settings: config,
    rooms,
    roomStore,
    roomBus,
    roomTokens,
    hostTools,
    presence,
    log,
    history: createRoomHistory(roomStore),
    spectators: createSpectatorLinks({
      rooms: roomStore,
      change,
      clock,
      maxLinksPerRoom: config.maxWatchLinksPerRoom,
      maxSpectatorsPerLink: config.maxSpectatorsPerWatchLink,
    }),
  };
}

/**
 * Ends the rooms an account hosts when it is deleted (issue 12). Once the deletion is judged
 * allowed and before its transaction: closes the open ones (their streams get `room_closed`) and
 * empties every one in short committed statements (`purgeHostedRooms`), so the deletion's own
 * transaction holds none of their rows, which can run to millions (nor the emptied rooms' own
 * rows); `log` gets a line saying what that took whenever it deleted anything. Then, inside the
 * transaction: closes and deletes what is left (`emptyHostedRooms`: a room opened or emptied
 * meanwhile), so the account row's cascade has nothing of theirs to walk. Returns the hooks'
 * removal.
 */
export function closeRoomsOnAccountDeletion(
  gatehouse: Gatehouse,
  dicery: Dicery,
  log: (message: string) => void = () => {},
): () => void {
  const closeOpenRooms = (tx: GatehouseTransaction, userId: string) => {
    const store = createRoomStore(tx.appDatabase<DiceryTables>());
    return dicery.rooms
      .closeHostedRooms(userId, { store, afterCommit: (callback) => tx.afterCommit(callback) })
      .then(() => store);
  };
  const removePreparing = gatehouse.onAccountDeletionPreparing(async (userId) => {
    const started = Date.now();
    await gatehouse.transaction((tx) => closeOpenRooms(tx, userId));
    const deleted = await purgeHostedRooms(dicery.roomStore, userId, gatehouse.clock);
    if (deleted > 0) {
      log(
        `Emptied the rooms of account ${userId} before its deletion: ${deleted} rows in ${Date.now() - started} ms`,
      );
    }
  });
  const removeDeleting = gatehouse.onAccountDeleting(async (tx, userId) => {
    await emptyHostedRooms(await closeOpenRooms(tx, userId), userId);
  });
  return () => {
    removePreparing();
    removeDeleting();
  };
}

/**
 * Closes rooms idle for `ROOM_IDLE_TTL` (no event since) on the core's scheduler, so a test clock
 * drives it. Each pass closes at most `IDLE_SWEEP_BATCH` rooms and passes never overlap, so a
 * backlog drains over several passes instead of one long burst (a pass falling due during another
 * runs once right after it); every instance sweeps, and the
 * conditional close lets only one of them close a given room. Each pass then empties rooms closed
 * more than `ROOM_CLOSED_RETENTION` ago (`purgeClosedRooms`, at most `PURGE_ROWS_PER_PASS` rows;
 * an instance finding another one deleting a room's rows leaves it to the next pass). A failed pass (database away)
 * is logged and the next one tries again. `stop` cancels the timer and resolves once a pass under
 * way has finished (a pass started before a shutdown must not run on into a closed database).
 */
export function startIdleRoomSweep(
  gatehouse: Gatehouse,
  dicery: Dicery,
  onWarning: (message: string) => void,
): { stop(): Promise<void> } {
  const ttlMs = dicery.settings.roomIdleTtl * 1000;
  const retentionMs = dicery.settings.roomClosedRetention * 1000;
  // Often enough that a room outlives its idle time by at most a quarter of it (or 5 minutes).
  const everyMs = Math.max(1000, Math.min(5 * 60_000, Math.floor(ttlMs / 4)));
  let running = false;
  let again = false;
  let stopped = false;
  /** The pass under way (it never rejects), for `stop`. */
  let pass: Promise<void> | undefined;
  // The sweep's own time: the wall clock, but moved at most two intervals per tick of the timer.
  // The timer is monotonic and the wall clock is not: stepped forward by an hour (NTP correcting
  // a clock that ran late, a VM resumed from a suspend), one pass found every room idle and
  // closed them all, live ones included. Clamped, the sweep catches up over the next ticks, and a
  // room that sees an event meanwhile stays open. Moved on every tick, even one skipped because a
  // pass still runs, so a slow pass never makes the sweep fall behind.
  // (The core's hourly sweep does the same with its own helper; apps see only the public API.)
  let sweepTime = gatehouse.clock();
  const sweep = () => {
    if (stopped) return;
    // A pass due while one runs is remembered (once) and runs right after it, with the time then.
    if (running) {
      again = true;
      return;
    }
    running = true;
    const cutoff = sweepTime;
    pass = dicery.hostTools
      .closeIdleRooms(cutoff - ttlMs)
      .catch((error: unknown) =>
        onWarning(`Idle room sweep failed: ${error instanceof Error ? error.message : String(error)}`),
      )
      // Then ROOM_CLOSED_RETENTION: closed rooms past it go, a bounded number of rows per pass.
      .then(() => (stopped ? undefined : dicery.hostTools.purgeClosedRooms(cutoff - retentionMs)))
      .catch((error: unknown) =>
        onWarning(`Closed room sweep failed: ${error instanceof Error ? error.message : String(error)}`),
      )
      .then(() => {})
      .finally(() => {
        running = false;
        pass = undefined;
        if (again) {
          again = false;
          sweep();
        }
      });
  };
  const tick = () => {
    const now = gatehouse.clock();
    sweepTime = Math.min(now, sweepTime + 2 * everyMs);
    sweep();
  };
  const timer = gatehouse.scheduler.setInterval(tick, everyMs);
  return {
    async stop() {
      stopped = true;
      timer.cancel();
      await pass;
    },
  };
}

async function plugin(app: FastifyInstance, options: DiceryPluginOptions): Promise<void> {
  if (!app.hasDecorator('gatehouseErrors')) {
    throw new Error('diceryPlugin: register gatehousePlugin first (Dicery builds on its guards and errors)');
  }
  app.gatehouseErrors.register(DICERY_ERROR_STATUSES);
  app.openApiSecuritySchemes.register(diceryOpenApiSchemes(app.cookiePolicy));
  const dicery = await createDicery(options.gatehouse, (message) => app.log.warn(message));
  app.decorate('dicery', dicery);
  const removeHook = closeRoomsOnAccountDeletion(options.gatehouse, dicery, (message) =>
    app.log.info(message),
  );
  const idleSweep = startIdleRoomSweep(options.gatehouse, dicery, (message) => app.log.warn(message));
  app.addHook('onClose', async () => {
    await idleSweep.stop();
    dicery.presence.close();
    removeHook();
    await dicery.roomBus.close();
  });
  registerRoomRoutes(
    app,
    { gatehouse: options.gatehouse, dicery },
    options.events === undefined ? {} : { events: options.events },
  );
  registerRoomHostRoutes(app, { gatehouse: options.gatehouse, dicery });
}

/** The Dicery Fastify plugin: rooms, dice, room tokens and the event stream. */
export const diceryPlugin = fp(plugin, {
  name: 'gatehouse-dicery',
  fastify: '5.x',
  dependencies: ['gatehouse'],
});

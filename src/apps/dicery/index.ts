/**
 * Dicery, the room-code dice app, as a Fastify plugin built on Gatehouse's public API alone
 * (`gatehouse`, `gatehouse/fastify`): its tables and migrations, its error codes, its room tokens
 * (app tokens signed by the core), its events (an app channel), its routes.
 *
 * ```ts
 * const gatehouse = await createGatehouse(config, { migrations: { dicery: diceryMigrations } });
 * await app.register(gatehousePlugin, { gatehouse });
 * await app.register(diceryPlugin, { gatehouse });
 * ```
 *
 * @module
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Gatehouse } from '../../index.js';
import type { RoomBus } from './core/room-bus.js';
import { createRoomHistory, type RoomHistory } from './core/room-history.js';
import { createRoomLog, type RoomLog } from './core/room-log.js';
import { createRoomService, type RoomService } from './core/room-service.js';
import { createRoomTokens, type RoomTokens } from './core/room-token.js';
import { createSharedRoomBus } from './core/shared-room-bus.js';
import { DICERY_ERROR_STATUSES } from './http/error-statuses.js';
import type { RoomEventsRouteOptions } from './http/room-events-route.js';
import { registerRoomRoutes } from './http/room-routes.js';
import { diceryOpenApiSchemes } from './http/security-schemes.js';
import { diceryMigrations } from './storage/migrations/index.js';
import { createRoomStore, type RoomStore } from './storage/room-store.js';
import type { DiceryTables } from './storage/tables.js';

export type { DiceryError, DiceryErrorCode } from './core/errors.js';
export { DICERY_ERROR_STATUSES } from './http/error-statuses.js';
export { diceryScopes } from './scopes.js';
export { diceryMigrations };

/** One Dicery instance's services, on `app.dicery` once the plugin is registered. */
export interface Dicery {
  /** Rooms: create, join, roll, leave, kick, close. */
  readonly rooms: RoomService;
  /** Storage behind {@link Dicery.rooms}, for read-only checks such as stream reconciliation. */
  readonly roomStore: RoomStore;
  /** Live room events, shared by the deployment's instances through the core's app channel. */
  readonly roomBus: RoomBus;
  /** Issues and verifies room-scoped player tokens. */
  readonly roomTokens: RoomTokens;
  /** The signed roll log: entries, pages, published keys. */
  readonly log: RoomLog;
  /** Roll history pages and exports as each caller may see them. */
  readonly history: RoomHistory;
}

/** Options of {@link diceryPlugin}. */
export interface DiceryPluginOptions {
  /** The core, created with `migrations: { dicery: diceryMigrations }`. */
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
  const { config, clock } = gatehouse;
  const roomStore = createRoomStore(gatehouse.appDatabase<DiceryTables>());
  const roomBus = await createSharedRoomBus((options) => gatehouse.openChannel(options), {
    onHandlerError: (error, event) =>
      onWarning(
        `Room event handler threw on ${event.type}: ${error instanceof Error ? error.message : String(error)}`,
      ),
  });
  // The roll log's Ed25519 key is sealed under SECRET_KEY for this purpose alone (issue 14).
  const log = createRoomLog({ store: roomStore.log, sealer: gatehouse.appSealer('dicery-room-log'), clock });
  const rooms = createRoomService({
    rooms: roomStore,
    log,
    // Each room change and its event: one unit of work (issue 9); events are published after it.
    transaction: (work) =>
      gatehouse.transaction((tx) => work(createRoomStore(tx.appDatabase<DiceryTables>()))),
    bus: roomBus,
    clock,
    maxPlayers: config.maxPlayersPerRoom,
    seatTtlSeconds: config.roomSeatTtl,
  });
  const roomTokens = createRoomTokens({
    tokens: gatehouse.appTokens,
    clock,
    ttlSeconds: config.roomTokenTtl,
  });
  return { rooms, roomStore, roomBus, roomTokens, log, history: createRoomHistory(roomStore) };
}

/**
 * Closes the rooms an account hosts when it is deleted, in the deletion's own transaction (issue
 * 12); returns the hook's removal.
 */
export function closeRoomsOnAccountDeletion(gatehouse: Gatehouse, dicery: Dicery): () => void {
  return gatehouse.onAccountDeleting(async (tx, userId) => {
    await dicery.rooms.closeHostedRooms(userId, {
      store: createRoomStore(tx.appDatabase<DiceryTables>()),
      afterCommit: (callback) => tx.afterCommit(callback),
    });
  });
}

async function plugin(app: FastifyInstance, options: DiceryPluginOptions): Promise<void> {
  if (!app.hasDecorator('gatehouseErrors')) {
    throw new Error('diceryPlugin: register gatehousePlugin first (Dicery builds on its guards and errors)');
  }
  app.gatehouseErrors.register(DICERY_ERROR_STATUSES);
  app.openApiSecuritySchemes.register(diceryOpenApiSchemes(app.cookiePolicy.roomPrefix));
  const dicery = await createDicery(options.gatehouse, (message) => app.log.warn(message));
  app.decorate('dicery', dicery);
  const removeHook = closeRoomsOnAccountDeletion(options.gatehouse, dicery);
  app.addHook('onClose', async () => {
    removeHook();
    await dicery.roomBus.close();
  });
  registerRoomRoutes(
    app,
    { gatehouse: options.gatehouse, dicery },
    options.events === undefined ? {} : { events: options.events },
  );
}

/** The Dicery Fastify plugin: rooms, dice, room tokens and the event stream. */
export const diceryPlugin = fp(plugin, {
  name: 'gatehouse-dicery',
  fastify: '5.x',
  dependencies: ['gatehouse'],
});

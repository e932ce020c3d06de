/**
 * The clothes catalogue (seed 003), as a Fastify plugin built on Gatehouse's public API alone:
 * its table and migration, its error code, its routes behind the core's role and scope guards.
 *
 * ```ts
 * const gatehouse = await createGatehouse(config, { migrations: { clothes: clothesMigrations } });
 * await app.register(gatehousePlugin, { gatehouse });
 * await app.register(clothesPlugin, { gatehouse });
 * ```
 *
 * @module
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Gatehouse } from '../../index.js';
import { createClothesService } from './core/clothes-service.js';
import { registerClothesRoutes } from './http/clothes-routes.js';
import { CLOTHES_ERROR_STATUSES } from './http/error-statuses.js';
import { createClothesStore } from './storage/clothes-store.js';
import { clothesMigrations } from './storage/migrations/index.js';
import type { ClothesTables } from './storage/tables.js';

export type { ClothesError, ClothesErrorCode } from './core/errors.js';
export { CLOTHES_ERROR_STATUSES } from './http/error-statuses.js';
export { clothesScopes } from './scopes.js';
export { clothesMigrations };

/** Options of {@link clothesPlugin}. */
export interface ClothesPluginOptions {
  /** The core, created with `migrations: { clothes: clothesMigrations }`. */
  gatehouse: Gatehouse;
}

async function plugin(app: FastifyInstance, options: ClothesPluginOptions): Promise<void> {
  if (!app.hasDecorator('gatehouseErrors')) {
    throw new Error('clothesPlugin: register gatehousePlugin first (the catalogue builds on its guards)');
  }
  app.gatehouseErrors.register(CLOTHES_ERROR_STATUSES);
  const { gatehouse } = options;
  registerClothesRoutes(
    app,
    createClothesService({
      store: createClothesStore(gatehouse.appDatabase<ClothesTables>()),
      clock: gatehouse.clock,
    }),
  );
}

/** The clothes catalogue Fastify plugin: `/clothes` routes. */
export const clothesPlugin = fp(plugin, {
  name: 'gatehouse-clothes',
  fastify: '5.x',
  dependencies: ['gatehouse'],
});

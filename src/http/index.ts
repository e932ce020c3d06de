/** `gatehouse/fastify`: the Fastify plugin, its guards and the types of `request.auth`. */

export type { AuthApi, AuthContext, Guard, RequireOptions } from './auth.js';
export type { GatehousePluginOptions } from './plugin.js';
export { gatehousePlugin } from './plugin.js';

/**
 * `gatehouse`: the framework-free core and the reference server. The Fastify plugin is the
 * `gatehouse/fastify` entry; test helpers are `gatehouse/testing`.
 */

export type { Role } from './accounts/roles.js';
export { isRole, ROLES, roleAtLeast } from './accounts/roles.js';
export type { Scope, ScopeGrant } from './accounts/scopes.js';
export {
  ALL_SCOPES,
  grantScopes,
  isScope,
  parseScopeParameter,
  ROLE_SCOPES,
  SCOPES,
} from './accounts/scopes.js';
export type { GatehouseConfig, JwtAlgorithm, TokenStrategy } from './config/config.js';
export { defaultConfig } from './config/config.js';
export type { EnvConfig } from './config/load-config.js';
export { loadConfig } from './config/load-config.js';
export type { ConfigNotice } from './config/resolve-config.js';
export { resolveConfig } from './config/resolve-config.js';
export type { ErrorCode, FieldError, GatehouseErrorOptions } from './errors.js';
export { ConfigError, ErrorCodes, GatehouseError, OAuthTokenError } from './errors.js';
export type { CoreWarn, RedisState } from './events/redis-connections.js';
export type { Gatehouse, GatehouseOptions } from './gatehouse.js';
export { createGatehouse } from './gatehouse.js';
export type { GatehouseTransaction } from './gatehouse-transaction.js';
export type { BuildServerOptions } from './server.js';
export { buildServer } from './server.js';
export type { RunningServer, StartServerOptions } from './start-server.js';
export { startServer } from './start-server.js';
export type { AppMigrations } from './storage/migrate.js';
export { isDatabaseUnavailable } from './storage/open-database.js';

/**
 * `gatehouse`: the framework-free core. It loads no Fastify: the plugin is the `gatehouse/fastify`
 * entry, the reference server (`buildServer`, `startServer`) is `gatehouse/server`, test helpers
 * are `gatehouse/testing`. Apps (`src/apps`) import only these entries.
 *
 * `Gatehouse` is a narrow facade (users, sessions, events, counters, app tokens, the app-scoped
 * database and transaction, channels): the core's database handle, stores, caches and keyring
 * are not reachable from here (issue 16).
 */

export type { Registration } from './accounts/account-service.js';
export type { WindowCount } from './accounts/counter-store.js';
export type { AccountUser, PublicUser } from './accounts/public-user.js';
export type { Role } from './accounts/roles.js';
export { isRole, ROLES, roleAtLeast } from './accounts/roles.js';
export type {
  Scope,
  ScopeDefinition,
  ScopeDefinitions,
  ScopeGrant,
  ScopePolicy,
} from './accounts/scopes.js';
export {
  ALL_SCOPES,
  createScopePolicy,
  grantScopes,
  isScope,
  parseScopeParameter,
  ROLE_SCOPES,
  SCOPES,
} from './accounts/scopes.js';
export type {
  AppSettingProperties,
  AppSettings,
  AppSettingsOf,
  AppSettingValues,
} from './config/app-settings.js';
export { defineAppSettings } from './config/app-settings.js';
export type { GatehouseConfig, JwtAlgorithm, TokenStrategy } from './config/config.js';
export { defaultConfig } from './config/config.js';
export { gatehouseConfigSchema } from './config/config-schema.js';
export type { EnvConfig, LoadConfigOptions } from './config/load-config.js';
export { loadConfig } from './config/load-config.js';
export type { ConfigNotice } from './config/resolve-config.js';
export { resolveConfig } from './config/resolve-config.js';
export type { EnvSyntax, SettingInfo, SettingSchema } from './config/setting.js';
export {
  choiceSetting,
  flagSetting,
  integerSetting,
  millisecondsSetting,
  SETTING,
  secondsSetting,
  setting,
  textSetting,
} from './config/setting.js';
export { assertValidConfig, findConfigProblems } from './config/validate-config.js';
export type {
  AuthChallenge,
  ErrorCode,
  FieldError,
  GatehouseErrorOptions,
  OAuthErrorCode,
  OAuthTokenErrorOptions,
} from './errors.js';
export { ConfigError, ERROR_CODES, GatehouseError, OAuthTokenError } from './errors.js';
export type { AppChannel, AppChannelOptions } from './events/app-channel.js';
export type { GatehouseEvent } from './events/event-bus.js';
export type { CoreWarn, RedisState } from './events/redis-connections.js';
export type {
  AppCounters,
  Gatehouse,
  GatehouseEvents,
  GatehouseOptions,
  GatehouseSessions,
  GatehouseSettings,
  GatehouseUsers,
  SessionRefusal,
  ValidSession,
} from './gatehouse.js';
export { createGatehouse } from './gatehouse.js';
export type { GatehouseTransaction } from './gatehouse-transaction.js';
export { addressBucket } from './lib/address-bucket.js';
export { BoundedMap } from './lib/bounded-map.js';
export type { ConcurrencyCap, ConcurrencyCaps, SlotResult } from './lib/concurrency-caps.js';
export { createConcurrencyCaps } from './lib/concurrency-caps.js';
export type { ScheduledTimer, Scheduler } from './lib/scheduler.js';
export type { SourceTally } from './lib/source-tally.js';
export { createSourceTally } from './lib/source-tally.js';
export type {
  AuthorizationErrorCode,
  ConnectedApp,
  UserInfo,
} from './oauth/authorization-server.js';
export {
  AUTHORIZATION_CODE_TTL_MS,
  ID_TOKEN_TTL_SECONDS,
} from './oauth/authorization-server.js';
export type { OAuthClient, OAuthGrantType } from './oauth/oauth-clients.js';
export { CLIENT_SCOPES, OAUTH_GRANT_TYPES, OIDC_SCOPES } from './oauth/oauth-clients.js';
export type { ExternalAlgorithm, ExternalIssuer } from './resource-server/external-issuer-schema.js';
export type { CookieSessionCheck, TokenFailure, TokenIdentity } from './sessions/session-manager.js';
export type { AppMigrations } from './storage/migrate.js';
export { RETIRED_CORE_MIGRATIONS } from './storage/migrate.js';
export { isPostgres } from './storage/migrations/dialect.js';
export { isDatabaseUnavailable, isForeignKeyViolation, isUniqueViolation } from './storage/open-database.js';
export type { DisplayTextRejection, DisplayTextResult } from './text/display-text.js';
export {
  countCodePoints,
  DISPLAY_TEXT_MAX_RAW_LENGTH,
  describeDisplayTextRejection,
  normalizeDisplayText,
} from './text/display-text.js';
export type { AppSealer } from './tokens/app-sealer.js';
export type { AppTokenCheck, AppTokenKind, AppTokens } from './tokens/app-tokens.js';
export { APP_TOKEN_MAX_TTL } from './tokens/app-tokens.js';

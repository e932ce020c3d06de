/**
 * `gatehouse/fastify`: the Fastify plugin, its guards, the types of `request.auth`, and the helpers
 * an app's routes build on (bearer parsing, CSRF binding, rate limits, problem schemas, the error
 * status registry). Dicery and the clothes catalogue (`src/apps`) use nothing else from here.
 */

export type {
  AuthApi,
  AuthContext,
  ClientAuthContext,
  ExternalAuthContext,
  Guard,
  IdentifyOptions,
  IdentifyUserOptions,
  OptInPrincipalKind,
  OptInRequireOptions,
  PrincipalKind,
  RequireOptions,
  UserAuthContext,
  UserRequireOptions,
} from './auth.js';
export { invalidToken, readBearerToken, SAFE_METHODS, userAuthOf } from './auth.js';
export type { CookiePolicy } from './cookies.js';
export { appCookieName } from './cookies.js';
export { currentCsrfBinding } from './csrf-binding.js';
export type { ProblemDetails } from './error-handler.js';
export { PROBLEM_JSON, REALM, renderChallenge, sendProblem } from './error-handler.js';
export type { ErrorStatuses, ErrorStatusRegistry } from './error-status.js';
export { CORE_ERROR_STATUSES } from './error-status.js';
export type { GatehousePluginOptions } from './plugin.js';
export { gatehousePlugin } from './plugin.js';
export type { AddressRateLimit, RateLimit } from './rate-limit.js';
export { enforceAddressRateLimit, enforceRateLimit, NETWORK_LIMIT_FACTOR } from './rate-limit.js';
export {
  declareLocation,
  errorResponses,
  IdParam,
  NoBody,
  PageQuery,
  ProblemSchema,
  PublicUserSchema,
  pageOf,
  problemRef,
  publicUserRef,
  QueryText,
} from './schemas.js';
export type {
  OpenApiSecurityScheme,
  SecuritySchemeObject,
  SecuritySchemeRegistry,
} from './security-schemes.js';
export { gatehouseSecuritySchemes } from './security-schemes.js';

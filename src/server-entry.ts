/**
 * `gatehouse/server`: the reference server, the core plus the Fastify plugin plus the two apps
 * (Dicery, the clothes catalogue), as `npx gatehouse serve` runs it.
 */

export { pinTickObjectShape } from './lib/tick-object-shape.js';
export type { BuildServerOptions, ReferenceServerConfig } from './server.js';
export {
  buildServer,
  REDACTED_LOG_PATHS,
  REFERENCE_APP_MIGRATIONS,
  REFERENCE_APP_SCOPES,
  REFERENCE_APP_SETTINGS,
} from './server.js';
export type { RunningServer, StartServerOptions } from './start-server.js';
export { MetricsListenError, startServer } from './start-server.js';

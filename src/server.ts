import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactory,
  type FastifyServerOptions,
} from 'fastify';
import type { ScopeDefinitions } from './accounts/scopes.js';
import { clothesMigrations, clothesPlugin, clothesScopes } from './apps/clothes/index.js';
import {
  type DicerySettings,
  diceryMigrations,
  diceryPlugin,
  diceryScopes,
  dicerySettings,
} from './apps/dicery/index.js';
import type { AppSettings, AppSettingValues } from './config/app-settings.js';
import type { GatehouseConfig } from './config/config.js';
import { createGatehouse, type Gatehouse, type GatehouseOptions } from './gatehouse.js';
import { gatehouseCore } from './gatehouse-core.js';
import { createCookiePolicy } from './http/cookies.js';
import { sendProblem, toGatehouseError } from './http/error-handler.js';
import { HTTP_SERVER_OPTIONS } from './http/host-header.js';
import {
  createLoggerOptions,
  handleClientError,
  type LogStream,
  refuseExpectation,
} from './http/log-options.js';
import { installMetrics } from './http/metrics.js';
import { createMetrics, type Metrics } from './http/metrics-listener.js';
import { registerOpenApi } from './http/openapi.js';
import { gatehousePlugin } from './http/plugin.js';
import { OneLineRequestLog } from './http/request-log.js';
import { installResponseHeaders } from './http/response-headers.js';
import { buildSerializerOnFirstUse, installValidation } from './http/validation.js';
import { registerWebUi } from './http/web-ui.js';
import type { AppMigrations } from './storage/migrate.js';

/**
 * The migrations of the reference server's apps, by app name: pass them to `createGatehouse` when
 * handing {@link BuildServerOptions.gatehouse} a core of your own.
 */
export const REFERENCE_APP_MIGRATIONS: AppMigrations = {
  clothes: clothesMigrations,
  dicery: diceryMigrations,
};

/**
 * The OAuth scopes of the reference server's apps (`clothes:*`, `rooms:host`): pass them to
 * `createGatehouse` with {@link REFERENCE_APP_MIGRATIONS} when handing
 * {@link BuildServerOptions.gatehouse} a core of your own.
 */
export const REFERENCE_APP_SCOPES: ScopeDefinitions = { ...clothesScopes, ...diceryScopes };

/**
 * The settings the reference server's apps register (Dicery's `ROOM_*`/`MAX_*`): `resolveConfig`
 * reads their variables with `{ settings: REFERENCE_APP_SETTINGS }`, `buildServer` passes them to
 * `createGatehouse`, and the README's settings table has a section for each. Pass them to
 * `createGatehouse` with {@link REFERENCE_APP_MIGRATIONS} when handing
 * {@link BuildServerOptions.gatehouse} a core of your own.
 */
export const REFERENCE_APP_SETTINGS: readonly AppSettings[] = [dicerySettings];

/** The reference server's settings: the core's and its apps' (each app setting optional, defaulted). */
export type ReferenceServerConfig = GatehouseConfig & Partial<DicerySettings> & AppSettingValues;

/** Options of {@link buildServer} beyond the settings. */
export interface BuildServerOptions extends GatehouseOptions {
  /**
   * Pino logger options, or false for none; replaces Gatehouse's redaction and serializers, so
   * prefer `logStream`. @default JSON logs at `config.logLevel`, see `createLoggerOptions`
   */
  logger?: FastifyServerOptions['logger'];
  /** Where the default logger writes. @default standard output */
  logStream?: LogStream;
  /**
   * Use this core instead of creating one (it is then not closed with the server). Create it with
   * `migrations: REFERENCE_APP_MIGRATIONS` so the apps' tables exist.
   */
  gatehouse?: Gatehouse;
  /** Serve the web UI at `/` when it has been built. @default true */
  webUi?: boolean;
  /** An existing pino-compatible logger to use instead of creating one from `logger`. */
  loggerInstance?: FastifyBaseLogger;
  /** Fastify's `serverFactory` (see {@link startServer}, which serves through its own server). */
  serverFactory?: FastifyServerFactory;
  /**
   * The server's metrics, made by `startServer` before its core (so that a starting or draining
   * server is scraped too): the server adds its figures to them and leaves their listener open.
   * @default made and listening at `METRICS_HOST`:`METRICS_PORT` when `METRICS_PORT` is set, closed with the server
   */
  metrics?: Metrics;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Base URL of the separate metrics listener (scrape `/metrics` there); undefined when off. */
    metricsUrl: string | undefined;
  }
}

export { REDACTED_LOG_PATHS } from './http/log-options.js';

/** Methods a cross-origin caller may use (preflight `Access-Control-Allow-Methods`). */
const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'];
/** Request headers a cross-origin caller may send (preflight `Access-Control-Allow-Headers`). */
const CORS_ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'X-CSRF-Token', 'Last-Event-ID'];

/**
 * Builds the reference server: security headers, CORS, OpenAPI and `/docs`, and the Gatehouse
 * plugin with its routes. The caller listens; `app.close()` closes the core it created.
 */
export async function buildServer(
  config: ReferenceServerConfig,
  options: BuildServerOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.loggerInstance === undefined
      ? { logger: options.logger ?? createLoggerOptions(config.logLevel, options.logStream) }
      : { loggerInstance: options.loggerInstance }),
    // Node's server options (duplicate headers joined, http/host-header.ts) when Fastify makes the
    // server; `startServer` makes its own with the same options and `checkExpectation` listener.
    ...(options.serverFactory === undefined
      ? { http: HTTP_SERVER_OPTIONS }
      : { serverFactory: options.serverFactory }),
    // One line per request (see http/request-log.ts); with Gatehouse's own logger options it may
    // skip redaction on the "request completed" line, whose fields are all allowlisted.
    logController: new OneLineRequestLog({
      ownLoggerOptions: options.loggerInstance === undefined && options.logger === undefined,
    }),
    // Fastify's own handler logs the parser error with the raw request bytes (see log-options.ts).
    clientErrorHandler: handleClientError,
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (_address: string, hop: number) => hop < (config.trustProxy as number)
        : config.trustProxy,
    bodyLimit: config.bodyLimit,
    // A closing server's 503 is ours (installResponseHeaders' `closing`): problem+json, counted.
    return503OnClosing: false,
    // Response serializers compiled on first use (validators too, see http/validation.ts).
    schemaController: { compilersFactory: { buildSerializer: buildSerializerOnFirstUse } },
    // Requests Fastify refuses before routing (a malformed URL) get problem+json like the rest.
    frameworkErrors: (error, _request, reply) => {
      sendProblem(reply, toGatehouseError(error));
    },
  });
  // The HTTP server Fastify made (see `http` above): an `Expect` other than 100-continue gets 417
  // problem+json rather than Node's bare 417. `startServer`'s own server registers it too.
  if (options.serverFactory === undefined) app.server.on('checkExpectation', refuseExpectation);
  let gatehouse: Gatehouse;
  try {
    gatehouse =
      options.gatehouse ??
      (await createGatehouse(config, {
        // The core's warnings (Redis down or back, malformed bus messages) go to the server's log.
        onWarning: (message, detail = {}) => app.log.warn(detail, message),
        ...options,
        migrations: { ...REFERENCE_APP_MIGRATIONS, ...options.migrations },
        scopes: { ...REFERENCE_APP_SCOPES, ...options.scopes },
        // A Set: an embedder passing the reference apps' own definitions again is no clash.
        settings: [...new Set([...REFERENCE_APP_SETTINGS, ...(options.settings ?? [])])],
        onConnectionError:
          options.onConnectionError ??
          ((error) =>
            app.log.warn({ err: error }, 'database connection lost; the pool reconnects on demand')),
      }));
  } catch (error) {
    await app.close();
    throw error;
  }
  if (options.gatehouse === undefined) app.addHook('onClose', async () => gatehouse.close());
  try {
    const cookies = createCookiePolicy(config.cookieSecure);
    // One onRequest hook for every request: the same headers @fastify/helmet sent, computed once at
    // start-up instead of per request, then CORS (http/response-headers.ts).
    let closing = false;
    app.addHook('preClose', (done) => {
      closing = true;
      done();
    });
    installResponseHeaders(app, {
      closing: () => closing,
      hsts: config.cookieSecure,
      cors: {
        // Exact string match only: no wildcards, suffixes or "null" (CORS_ORIGINS is an allowlist).
        origins: config.corsOrigins,
        credentialedOrigins: config.corsCredentialedOrigins,
        methods: CORS_METHODS,
        allowedHeaders: CORS_ALLOWED_HEADERS,
        maxAgeSeconds: 600,
      },
    });
    // Metrics only when asked for (issue 10): prom-client is not even loaded otherwise.
    let metrics = options.metrics;
    if (metrics === undefined && config.metricsPort !== undefined) {
      const own = await createMetrics({ log: () => app.log });
      app.addHook('onClose', () => own.close());
      await own.listen({
        host: config.metricsHost,
        port: config.metricsPort,
        allowedHosts: config.metricsAllowedHosts,
      });
      // Ready as far as anyone scraping can tell: this server is built before anyone asks it anything.
      own.setState('ready');
      app.addHook('preClose', (done) => {
        own.setState('draining');
        done();
      });
      metrics = own;
    }
    if (metrics !== undefined) installMetrics(app, gatehouseCore(gatehouse), metrics);
    const metricsUrl = metrics?.url;
    app.decorate('metricsUrl', metricsUrl);
    // Strict bodies, unknown fields rejected by name (see http/validation.ts) for every route here.
    installValidation(app);
    registerOpenApi(app, cookies, { publicUrl: config.publicUrl });
    await app.register(gatehousePlugin, { gatehouse });
    // The reference server's apps, on the plugin's public API like any embedding application's.
    await app.register(diceryPlugin, { gatehouse });
    await app.register(clothesPlugin, { gatehouse });
    if (options.webUi ?? true) await registerWebUi(app, { publicUrl: config.publicUrl });
    return app;
  } catch (error) {
    await app.close();
    throw error;
  }
}

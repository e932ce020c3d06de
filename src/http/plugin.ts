import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Check } from 'typebox/schema';
import { gatehouseConfigSchema } from '../config/config.js';
import { SETTING } from '../config/setting.js';
import { describeStructureErrors } from '../config/validate-config.js';
import { ConfigError } from '../errors.js';
import type { Gatehouse } from '../gatehouse.js';
import { type GatehouseCore, gatehouseCore } from '../gatehouse-core.js';
import { createLogSampler } from '../lib/log-sampler.js';
import { credentialedAppOrigins, credentialedAppWarning } from '../oauth/credentialed-app-origins.js';
import type { ExternalIssuer } from '../resource-server/external-issuer-schema.js';
import {
  createExternalTokenVerifier,
  type ExternalTokenVerifier,
} from '../resource-server/external-token-verifier.js';
import { secretSupersededError } from '../sessions/secret-superseded.js';
import { installAuth } from './auth.js';
import { type CookiePolicy, createCookiePolicy } from './cookies.js';
import { type CsrfGuard, createCsrfGuard } from './csrf.js';
import { installErrorHandler, installErrorHandling, UNAVAILABLE_LOG_EVERY_MS } from './error-handler.js';
import { createErrorStatusRegistry, type ErrorStatusRegistry } from './error-status.js';
import { registerAdminMfaRoutes } from './routes/admin-mfa-routes.js';
import { registerAuditRoutes } from './routes/audit-routes.js';
import { registerAuthRoutes } from './routes/auth-routes.js';
import { registerLifecycleRoutes } from './routes/lifecycle-routes.js';
import { registerMeRoutes } from './routes/me-routes.js';
import { registerMfaRoutes } from './routes/mfa-routes.js';
import { registerOAuthClientRoutes } from './routes/oauth-client-routes.js';
import { registerOAuthProviderRoutes } from './routes/oauth-provider-routes.js';
import { registerOAuthRoutes } from './routes/oauth-routes.js';
import { registerOpsRoutes } from './routes/ops-routes.js';
import { registerPasskeyRoutes } from './routes/passkey-routes.js';
import { registerTokenRoute } from './routes/token-route.js';
import { registerUserAdminRoutes } from './routes/user-admin-routes.js';
import { ProblemSchema, PublicUserSchema } from './schemas.js';
import {
  coreSecuritySchemes,
  createSecuritySchemeRegistry,
  hostTokenUrl,
  registerHostSecuritySchemes,
  type SecuritySchemeRegistry,
} from './security-schemes.js';
import { installValidation } from './validation.js';

/** The media type of the OAuth endpoints' bodies (RFC 6749 §3.2). */
const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Options of {@link gatehousePlugin}. */
export interface GatehousePluginOptions {
  /** The core instance (see `createGatehouse`). The plugin does not close it. */
  gatehouse: Gatehouse;
  /**
   * Register the account routes (`/token`, `/revoke`, `/.well-known/oauth-authorization-server`, `/auth/*`, `/users/me*`, `/healthz`, `/readyz`).
   * Set false to use only the guards. @default true
   */
  routes?: boolean;
  /**
   * Install Gatehouse's problem+json error and 404 handlers for the whole app (the 404 handler
   * answers 405 with `Allow` for a method a path registered after the plugin does not take). With
   * false, the app's own routes and unknown paths keep the app's handlers; Gatehouse's routes
   * always answer with Gatehouse's. @default true
   */
  errorHandler?: boolean;
  /**
   * External issuers whose access tokens this app's opted-in routes accept (resource-server
   * mode), instead of the `externalIssuers` setting of the core; checked against the same schema
   * at registration (a bad entry fails `ready()` with a `ConfigError`). @default the setting
   */
  externalIssuers?: readonly ExternalIssuer[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route answers with a long-lived `text/event-stream` (Dicery's event streams): the reference
     * server's metrics count its open streams (`gatehouse_event_streams_open`). @default false
     */
    eventStream?: boolean;
  }
  interface FastifyInstance {
    /** The Gatehouse instance behind this app: its public facade (see `createGatehouse`). */
    gatehouse: Gatehouse;
    /** Cookie names and attributes in force. */
    cookiePolicy: CookiePolicy;
    /** CSRF guard for cookie-authenticated routes. */
    csrf: CsrfGuard;
    /**
     * The HTTP status of every error code: the core's, plus those apps register
     * (`app.gatehouseErrors.register<MyAppCode>({ THING_NOT_FOUND: 404 })`) before they throw them.
     */
    gatehouseErrors: ErrorStatusRegistry;
    /**
     * The OpenAPI security schemes apps declare for their routes' `security`
     * (`app.openApiSecuritySchemes.register({ playerBearer: { type: 'http', scheme: 'bearer', … } })`).
     */
    openApiSecuritySchemes: SecuritySchemeRegistry;
  }
}

/** The options {@link GatehousePluginOptions} has. */
const PLUGIN_OPTIONS: ReadonlySet<string> = new Set([
  'gatehouse',
  'routes',
  'errorHandler',
  'externalIssuers',
]);
/** Options Fastify's `register` itself takes, which reach a fastify-plugin's options too. */
const REGISTER_OPTIONS: ReadonlySet<string> = new Set(['logLevel', 'logSerializers']);

/** The instance decorators the plugin adds (see the `FastifyInstance` augmentation above). */
const INSTANCE_DECORATORS = ['auth', 'csrf', 'gatehouse', 'cookiePolicy', 'openApiSecuritySchemes'] as const;
/** The shared schemas it adds ($ref'd by its routes and by apps: `problemRef`, `publicUserRef`). */
const SHARED_SCHEMAS = ['Problem', 'PublicUser'] as const;

/**
 * Names the app already uses that the plugin needs: before, Fastify's own "The decorator 'auth'
 * has already been added!" came from deep inside, naming neither the plugin nor the way out
 * (red-team 2026-12o, left open). `@fastify/auth` decorates `auth` too: the two cannot share a
 * context (nor their TypeScript augmentations one program).
 */
function nameClashes(app: FastifyInstance): string[] {
  const clashes: string[] = [];
  for (const name of INSTANCE_DECORATORS) {
    if (app.hasDecorator(name))
      clashes.push(
        `gatehousePlugin: the app already has a decorator \`${name}\`${name === 'auth' ? ' (@fastify/auth adds one)' : ''}, ` +
          "which the plugin adds: keep the other one in an encapsulated context of its own (beside the plugin's, not around it)",
      );
  }
  if (app.hasRequestDecorator('auth'))
    clashes.push(
      'gatehousePlugin: requests already have a decorator `auth`, which the plugin sets (request.auth)',
    );
  const schemas = app.getSchemas();
  for (const id of SHARED_SCHEMAS) {
    if (id in schemas)
      clashes.push(`gatehousePlugin: the app already has a shared schema \`${id}\`, which the plugin adds`);
  }
  return clashes;
}

/**
 * What is wrong with `options` and with where the plugin is registered, one line each (red-team
 * 2026-12o O5): before, a missing `gatehouse` was a plain Error, a typo such as `route: false`
 * left the account routes on, `prefix` was ignored (a fastify-plugin has none: the routes went to
 * `/`), the routes worked under a prefixed context while every URL Gatehouse writes (discovery,
 * `Location`, its redirects) named the root, and a second registration failed on a decorator.
 */
function pluginOptionProblems(app: FastifyInstance, options: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (options.gatehouse === undefined || options.gatehouse === null)
    problems.push('gatehousePlugin: the `gatehouse` option is required (createGatehouse(config))');
  for (const name of ['routes', 'errorHandler']) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean')
      problems.push(`gatehousePlugin: \`${name}\` must be true or false`);
  }
  if (options.prefix !== undefined) {
    problems.push(
      'gatehousePlugin: `prefix` is not supported (a fastify-plugin mounts where it is registered); ' +
        'every URL Gatehouse writes comes from PUBLIC_URL, an origin: serve its routes at the root',
    );
  }
  for (const name of Object.keys(options)) {
    if (!PLUGIN_OPTIONS.has(name) && !REGISTER_OPTIONS.has(name) && name !== 'prefix')
      problems.push(`gatehousePlugin: unknown option \`${name}\``);
  }
  if (options.routes !== false && app.prefix !== '') {
    problems.push(
      `gatehousePlugin: registered under the prefix ${app.prefix}, but discovery, Location headers ` +
        'and its redirects name paths at the root of PUBLIC_URL (an origin): register it at the root, ' +
        'or with `routes: false` (the guards alone) anywhere',
    );
  }
  if (app.hasDecorator('gatehouseErrors'))
    problems.push('gatehousePlugin: already registered in this context (or one it is inside)');
  else problems.push(...nameClashes(app));
  return problems;
}

async function plugin(app: FastifyInstance, options: GatehousePluginOptions): Promise<void> {
  const problems = pluginOptionProblems(app, options as unknown as Record<string, unknown>);
  if (problems.length > 0) throw new ConfigError(problems);
  // The adapter runs on the core's internals (token checks, caches, the keyring); the app sees the
  // facade only (`app.gatehouse`).
  let gatehouse: GatehouseCore;
  try {
    gatehouse = gatehouseCore(options.gatehouse);
  } catch (error) {
    throw new ConfigError([`gatehousePlugin: \`gatehouse\`: ${(error as Error).message}`]);
  }
  const { config } = gatehouse;
  if (!app.hasDecorator('parseCookie')) await app.register(cookie);
  else {
    // The app's own registration may parse late (`hook: 'preHandler'`) or never (`hook: false`):
    // our guards (preValidation on our routes) and the CSRF check read `request.cookies`, and every
    // cookie request was a 500 (red-team 2026-12o O6). Parsed here when it has not been yet.
    app.addHook('onRequest', (request, _reply, done) => {
      if (request.cookies === undefined || request.cookies === null) {
        const header = request.headers.cookie;
        request.cookies = header === undefined ? {} : app.parseCookie(header);
      }
      done();
    });
  }
  const errorStatuses = createErrorStatusRegistry();
  app.decorate('gatehouseErrors', errorStatuses);
  // A host's own @fastify/swagger document gets the schemes our guards name (and apps' as they
  // register them): without them, its document failed to build at all.
  const securitySchemes = createSecuritySchemeRegistry();
  app.decorate('openApiSecuritySchemes', securitySchemes);
  const errorLogSampler = createLogSampler(UNAVAILABLE_LOG_EVERY_MS, gatehouse.clock);
  const appWideErrorHandler = options.errorHandler ?? true;
  if (appWideErrorHandler) installErrorHandling(app, errorStatuses, errorLogSampler);

  const cookies = createCookiePolicy(config.cookieSecure);
  registerHostSecuritySchemes(
    app,
    coreSecuritySchemes(
      cookies,
      gatehouse.scopes.descriptions,
      hostTokenUrl(options.routes ?? true, config.issuer),
    ),
    securitySchemes,
  );
  // Only first-party front ends pass the Origin check; CORS_ORIGINS (apps with bearer tokens) never
  // does (red-team 2026-12e J6). PUBLIC_URL is this server's own origin by definition: behind a
  // proxy that ends TLS, an app without `trustProxy` sees `http://` and its Host-derived origin
  // alone refused every browser's sign-in as cross-site (red-team 2026-12o O7).
  const csrf = createCsrfGuard({
    secretKey: config.secretKey,
    secretKeyPrevious: config.secretKeyPrevious,
    cookies,
    allowedOrigins: [new URL(config.publicUrl).origin, ...config.corsCredentialedOrigins],
  });
  app.decorate('gatehouse', gatehouse.facade);
  app.decorate('cookiePolicy', cookies);
  app.decorate('csrf', csrf);
  installAuth(app, { gatehouse, cookies, csrf, externalTokens: externalTokensFor(app, gatehouse, options) });
  app.addSchema(ProblemSchema);
  app.addSchema(PublicUserSchema);

  if (options.routes ?? true) {
    // Our routes live in their own context so their strict validation (no coercion of JSON
    // bodies, unknown fields rejected) never changes how the host application validates its own.
    await app.register(async (routes) => {
      // The OAuth endpoints read forms, with our parser (repeats kept as arrays, so a repeated
      // parameter is refused: RFC 6749 §3.1), in this context only: registered app-wide, it made
      // the host's own JSON routes take form bodies, a type any page can post cross-site without a
      // preflight, and a host registering @fastify/formbody after us crashed at start-up
      // (red-team 2026-12o O1). A host's own form parser (one that keeps the last of a repeated
      // key, say) is replaced here, for our routes only.
      if (routes.hasContentTypeParser(FORM_TYPE)) routes.removeContentTypeParser(FORM_TYPE);
      await routes.register(formbody);
      // Our routes answer with our handler whatever the host chose: their response schemas
      // describe problem+json and RFC 6749 bodies, so Fastify's default handler (or a host's body)
      // failed to serialize there and every refusal, a wrong password included, was a 500
      // (red-team 2026-12o O2). `errorHandler: false` keeps the host's routes the host's.
      if (!appWideErrorHandler) installErrorHandler(routes, errorStatuses, errorLogSampler);
      // BODY_LIMIT on our routes: `buildServer` makes it the server's limit, but a host app's is
      // its own (Fastify's 1 MiB, more for uploads), and the anonymous routes read and parsed
      // bodies up to it (red-team 2026-12o O4). A host's stricter limit still holds.
      const bodyLimit = Math.min(config.bodyLimit, routes.initialConfig.bodyLimit ?? config.bodyLimit);
      routes.addHook('onRoute', (route) => {
        route.bodyLimit ??= bodyLimit;
      });
      installValidation(routes);
      registerOpsRoutes(routes, gatehouse);
      // Every other route of ours reads or writes something the instance's SECRET_KEY signs or
      // seals (access, CSRF, mfa_token, passkey challenges, consent forms, device tokens). Once
      // `gatehouse revoke-all` replaced that secret (it leaked), whoever holds it can forge any of
      // them here, and an `iat` cut-off reaches only the first: the instance serves /healthz and
      // /readyz (503) only, and everything else fails closed with 503 + Retry-After, which a client
      // retries on another instance (red-team 2026-12r R4's remainder).
      await routes.register(async (keyed) => {
        // Again here: a context under one that set a validator compiler takes it, but a context
        // that sees a schema added rebuilds its compiler from the server's options, not its
        // parent's, and fell back to Fastify's default (unknown body fields silently dropped
        // instead of refused: test/http/register.test.ts).
        installValidation(keyed);
        keyed.addHook('onRequest', (_request, _reply, done) => {
          done(gatehouse.secretSuperseded() ? secretSupersededError() : undefined);
        });
        registerTokenRoute(keyed, gatehouse);
        registerOAuthRoutes(keyed, gatehouse);
        registerOAuthProviderRoutes(keyed, { gatehouse, cookies, csrf });
        registerAuthRoutes(keyed, { gatehouse, cookies, csrf });
        registerMeRoutes(keyed, gatehouse);
        registerLifecycleRoutes(keyed, { gatehouse, cookies });
        registerMfaRoutes(keyed, gatehouse);
        registerPasskeyRoutes(keyed, gatehouse);
        registerAdminMfaRoutes(keyed, gatehouse);
        registerUserAdminRoutes(keyed, gatehouse);
        registerOAuthClientRoutes(keyed, gatehouse);
        registerAuditRoutes(keyed, gatehouse);
      });
    });
  }
  if (config.corsCredentialedOrigins.length > 0) {
    // Said at every start while it holds: a registration's warning is easy to miss, and the
    // setting may have changed since (red-team 2026-12e J6's other half).
    app.addHook('onReady', async () => {
      try {
        for (const client of await gatehouse.oauthClients.list()) {
          const origins = credentialedAppOrigins(client, config.corsCredentialedOrigins);
          if (origins.length > 0)
            app.log.warn({ client_id: client.clientId }, credentialedAppWarning(client, origins));
        }
      } catch (error) {
        // Only a warning: a database that cannot answer now must not keep the server from starting.
        app.log.warn({ err: error }, 'could not check OAuth clients against CORS_CREDENTIALED_ORIGINS');
      }
    });
  }
}

/** The core's external token verifier, or one for the plugin's own `externalIssuers`. */
function externalTokensFor(
  app: FastifyInstance,
  gatehouse: GatehouseCore,
  options: GatehousePluginOptions,
): ExternalTokenVerifier {
  const issuers: unknown = options.externalIssuers;
  if (issuers === undefined) return gatehouse.externalTokens;
  const schema = gatehouseConfigSchema.properties.externalIssuers;
  const problems: string[] = [];
  if (!Check(schema, issuers)) {
    problems.push(
      `externalIssuers: expected ${schema[SETTING].accepts.code}${describeStructureErrors(schema, issuers, schema[SETTING])}`,
    );
  } else if (issuers.some((entry) => entry.issuer === gatehouse.config.issuer)) {
    problems.push("externalIssuers: must not list issuer (Gatehouse's own tokens)");
  }
  if (problems.length > 0 || !Check(schema, issuers)) throw new ConfigError(problems);
  return createExternalTokenVerifier({
    issuers,
    timeoutMs: gatehouse.config.externalIssuerTimeoutMs,
    clock: gatehouse.clock,
    warn: (message, details) => app.log.warn(details, message),
  });
}

/**
 * The Gatehouse Fastify plugin: `request.auth`, `app.auth.require({ role, scopes })`, CSRF,
 * problem+json errors and (by default) the account routes. Register it on your own instance:
 *
 * ```ts
 * await app.register(gatehousePlugin, { gatehouse: await createGatehouse(config) });
 * app.get('/reports', { preHandler: app.auth.require({ role: 'admin' }) }, handler);
 * ```
 */
export const gatehousePlugin = fp(plugin, { name: 'gatehouse', fastify: '5.x' });

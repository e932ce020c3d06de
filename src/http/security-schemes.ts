import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../errors.js';
import type { CookiePolicy } from './cookies.js';

/**
 * An OpenAPI 3.1 Security Scheme Object (§4.8.27), as far as Gatehouse's apps use it: a cookie
 * or header API key, or an HTTP scheme such as `bearer`.
 */
export interface OpenApiSecurityScheme {
  readonly type: 'apiKey' | 'http';
  readonly description: string;
  /** `apiKey`: where the key goes. */
  readonly in?: 'header' | 'query' | 'cookie';
  /** `apiKey`: the header, query parameter or cookie name. */
  readonly name?: string;
  /** `http`: the RFC 7235 scheme, e.g. `bearer`. */
  readonly scheme?: string;
  /** `http` bearer: a hint at the token's format. */
  readonly bearerFormat?: string;
}

/** The schemes the core's own document declares; an app may not reuse their names. */
export const CORE_SECURITY_SCHEMES = [
  'OAuth2PasswordBearer',
  'sessionCookie',
  'externalBearer',
  'OAuth2ClientCredentials',
] as const;

/**
 * The OpenAPI security schemes apps add to one Fastify instance
 * (`app.openApiSecuritySchemes.register({ playerBearer: { … } })`), so their routes' `security`
 * names something the document declares. Read when the document is built (on first request).
 */
export interface SecuritySchemeRegistry {
  /**
   * Adds an app's schemes. A name the core uses, or one registered before with another
   * definition, throws a `ConfigError` at registration, naming it.
   */
  register(schemes: Readonly<Record<string, OpenApiSecurityScheme>>): void;
  /** Every app scheme, by name, in registration order. */
  entries(): Readonly<Record<string, OpenApiSecurityScheme>>;
}

/**
 * An empty registry; bounded by the schemes apps declare at start-up. What it accepts is also
 * copied into each host object given to its `attach` (a host's
 * `gatehouseSecuritySchemes` objects).
 */
export function createSecuritySchemeRegistry(): SecuritySchemeRegistry & {
  /** Mirrors into `mirror` too, from now on, after copying what is registered already. */
  attach(mirror: Record<string, unknown>): void;
} {
  const schemes = new Map<string, OpenApiSecurityScheme>();
  const targets: Record<string, unknown>[] = [];
  return {
    register(added) {
      const problems: string[] = [];
      for (const [name, scheme] of Object.entries(added)) {
        const known = schemes.get(name);
        if ((CORE_SECURITY_SCHEMES as readonly string[]).includes(name))
          problems.push(`security scheme ${name} belongs to the core; pick another name`);
        else if (!/^[A-Za-z0-9._-]+$/.test(name))
          // OpenAPI 3.1 §4.8.7: component names match ^[a-zA-Z0-9\.\-_]+$.
          problems.push(`security scheme ${JSON.stringify(name)} must match [A-Za-z0-9._-]+`);
        else if (known !== undefined && !sameScheme(known, scheme))
          problems.push(`security scheme ${name} is already registered with another definition`);
        // The host document's object holds the host's own schemes (and another plugin
        // registration's, in a sibling context): overwritten, its routes were documented with ours.
        else if (targets.some((mirror) => name in mirror && !sameScheme(mirror[name], scheme)))
          problems.push(
            `security scheme ${name} is declared with another definition in the host's gatehouseSecuritySchemes`,
          );
      }
      if (problems.length > 0) throw new ConfigError(problems);
      for (const [name, scheme] of Object.entries(added)) {
        schemes.set(name, scheme);
        for (const mirror of targets) mirror[name] = scheme;
      }
    },
    entries: () => Object.fromEntries(schemes),
    attach(mirror) {
      const registered = Object.fromEntries(schemes);
      const problems = clashes(mirror, registered).map(
        (name) => `gatehouseSecuritySchemes: ${name} is an app's security scheme; name yours otherwise`,
      );
      if (problems.length > 0) throw new ConfigError(problems);
      Object.assign(mirror, registered);
      targets.push(mirror);
    },
  };
}

function sameScheme(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The names `target` already holds with another definition than `source` gives them. */
function clashes(
  target: Readonly<Record<string, unknown>>,
  source: Readonly<Record<string, unknown>>,
): string[] {
  return Object.keys(source).filter((name) => name in target && !sameScheme(target[name], source[name]));
}

/**
 * The security schemes the core's guards and routes name in their `security` (the OAuth2 flows
 * listing `scopes`, the session cookie, external and client tokens): for Gatehouse's own document,
 * and for a host app's `@fastify/swagger` document (see `gatehouseSecuritySchemes`).
 */
export function coreSecuritySchemes(
  cookies: CookiePolicy,
  scopes: Readonly<Record<string, string>>,
  tokenUrl = '/token',
) {
  return {
    OAuth2PasswordBearer: {
      type: 'oauth2' as const,
      description: 'OAuth 2.0 password grant; access tokens are JWTs (`typ: at+jwt`) sent as Bearer tokens.',
      flows: { password: { tokenUrl, refreshUrl: tokenUrl, scopes: { ...scopes } } },
    },
    sessionCookie: {
      type: 'apiKey' as const,
      in: 'cookie' as const,
      name: cookies.sessionName,
      description:
        'Browser session from `POST /auth/login`. Unsafe methods also need `X-CSRF-Token` from `GET /auth/csrf`.',
    },
    externalBearer: {
      type: 'http' as const,
      scheme: 'bearer',
      bearerFormat: 'JWT of an external issuer (EXTERNAL_ISSUERS)',
      description:
        'An access token of one of the configured external issuers (Keycloak, Auth0, …), accepted only by ' +
        'routes that opt in; never by account, admin or audit routes.',
    },
    OAuth2ClientCredentials: {
      type: 'oauth2' as const,
      description:
        'OAuth 2.0 client credentials grant (service-to-service): a registered confidential client gets a ' +
        'token for itself, accepted only by routes that opt in to client callers.',
      flows: { clientCredentials: { tokenUrl, scopes: { ...scopes } } },
    },
  };
}

/** One flow of an OAuth2 Security Scheme Object (OpenAPI 3 §4.8.29). */
interface OAuthFlowObject {
  tokenUrl: string;
  refreshUrl?: string;
  scopes: Record<string, string>;
}

/**
 * An OpenAPI 3 Security Scheme Object (§4.8.27) of the kinds Gatehouse and its apps declare; the
 * shape `@fastify/swagger`'s `openapi.components.securitySchemes` takes.
 */
export type SecuritySchemeObject =
  | { type: 'http'; description?: string; scheme: string; bearerFormat?: string }
  | { type: 'apiKey'; description?: string; name: string; in: string }
  | {
      type: 'oauth2';
      description?: string;
      flows: { password?: OAuthFlowObject; clientCredentials?: OAuthFlowObject };
    };

// The objects gatehouseSecuritySchemes handed out, by the instance they were asked for; weakly
// held, so they go with their app. Bounded by the calls a host makes at start-up.
const hostSchemes = new WeakMap<object, Record<string, unknown>>();
/** What a plugin registration fills a host object with: the core's schemes, then its apps'. */
interface Registration {
  core: Readonly<Record<string, unknown>>;
  registry: { attach(mirror: Record<string, unknown>): void };
}
// The plugin's registrations, by the context it decorated: what a host's object asked for after the
// plugin (a `@fastify/swagger` registered after it) is filled from. Weakly held, as above.
const registrations = new WeakMap<object, Registration>();
// The host objects already filled and mirrored into.
const attached = new WeakSet<object>();

/** `app` and the contexts it is inside (Fastify makes a context an object whose prototype is its parent). */
function* contextsOf(app: object): Generator<object> {
  for (let context: object | null = app; context !== null; context = Object.getPrototypeOf(context))
    yield context;
}

/**
 * Fills a host object with `registration`'s schemes and mirrors its apps' later ones into it; a
 * name the host declared itself otherwise is a `ConfigError` (its routes would be documented with
 * the wrong scheme, or ours with the host's).
 */
function attachHost(schemes: Record<string, unknown>, registration: Registration): void {
  const problems = clashes(schemes, registration.core).map(
    (name) => `gatehouseSecuritySchemes: ${name} is Gatehouse's security scheme; name yours otherwise`,
  );
  if (problems.length > 0) throw new ConfigError(problems);
  Object.assign(schemes, registration.core);
  registration.registry.attach(schemes);
  attached.add(schemes);
}

/**
 * Records the plugin's registration on `app` and fills the host objects asked for it or a context
 * it is inside (see {@link gatehouseSecuritySchemes}); later ones are filled when asked for. One
 * filled by a registration in a sibling context is filled again: this one mirrors its apps' schemes
 * there too (a clash with the sibling's is a ConfigError at registration).
 */
export function registerHostSecuritySchemes(
  app: FastifyInstance,
  core: Readonly<Record<string, unknown>>,
  registry: Registration['registry'],
): void {
  const registration = { core, registry };
  for (const context of contextsOf(app)) {
    const schemes = hostSchemes.get(context);
    if (schemes !== undefined) attachHost(schemes, registration);
  }
  registrations.set(app, registration);
}

/**
 * The OpenAPI security schemes Gatehouse's routes and guards name, for a host app's own
 * `@fastify/swagger` document: pass it as `openapi.components.securitySchemes` when registering
 * `@fastify/swagger` on `app`, before or after `gatehousePlugin` (asked for after it, it is filled
 * at once). Without it, `app.swagger()` fails on the first guarded route ("Cannot read properties
 * of undefined (reading 'OAuth2PasswordBearer')"): the swagger plugin looks up every scheme a
 * route's `security` names, and only Gatehouse's own document declared them.
 *
 * The object is empty until `gatehousePlugin` is registered on `app` (or inside it), which fills
 * in the core's schemes (the OAuth2 flows with the server's scopes, the session cookie by its
 * name) and then every scheme apps register on `app.openApiSecuritySchemes`. `@fastify/swagger`
 * reads it when it builds the document, after start-up. Your own schemes go in `own` (a spread
 * such as `{ ...gatehouseSecuritySchemes(app), apiKey }` would copy the object while it is still
 * empty); a name of Gatehouse's among them makes the plugin's registration fail with a
 * `ConfigError`. The same object is returned for the same `app`, with `own` added.
 */
export function gatehouseSecuritySchemes(
  app: FastifyInstance,
  own: Readonly<Record<string, SecuritySchemeObject>> = {},
): Record<string, SecuritySchemeObject> {
  let schemes = hostSchemes.get(app);
  if (schemes === undefined) {
    schemes = {};
    hostSchemes.set(app, schemes);
  }
  if (attached.has(schemes)) {
    // Filled already: the host's own may not replace what Gatehouse or an app declared.
    const problems = clashes(schemes, own).map(
      (name) => `gatehouseSecuritySchemes: ${name} is Gatehouse's security scheme; name yours otherwise`,
    );
    if (problems.length > 0) throw new ConfigError(problems);
  }
  Object.assign(schemes, own);
  // Asked for after the plugin was registered here (or in a context this one is inside): filled
  // now, and mirrored into from now on. Before, it stayed empty and the document failed to build.
  if (!attached.has(schemes)) {
    for (const context of contextsOf(app)) {
      const registration = registrations.get(context);
      if (registration === undefined) continue;
      attachHost(schemes, registration);
      break;
    }
  }
  // Filled by the plugin with schemes of this shape (coreSecuritySchemes, and apps' registrations).
  return schemes as Record<string, SecuritySchemeObject>;
}

/**
 * Where a host document's "Authorize" gets tokens: `/token` on the host itself when the plugin
 * serves its routes there; with `routes: false` the host has none (Swagger UI resolves a relative
 * URL against the host, and got a 404), so the issuer's, whose tokens the guards accept.
 */
export function hostTokenUrl(routes: boolean, issuer: string): string {
  if (routes || !/^https?:\/\//.test(issuer)) return '/token';
  return `${issuer.replace(/\/+$/, '')}/token`;
}

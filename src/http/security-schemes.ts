import { ConfigError } from '../errors.js';

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

/** An empty registry; bounded by the schemes apps declare at start-up. */
export function createSecuritySchemeRegistry(): SecuritySchemeRegistry {
  const schemes = new Map<string, OpenApiSecurityScheme>();
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
        else if (known !== undefined && JSON.stringify(known) !== JSON.stringify(scheme))
          problems.push(`security scheme ${name} is already registered with another definition`);
      }
      if (problems.length > 0) throw new ConfigError(problems);
      for (const [name, scheme] of Object.entries(added)) schemes.set(name, scheme);
    },
    entries: () => Object.fromEntries(schemes),
  };
}

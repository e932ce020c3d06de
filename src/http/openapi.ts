import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { SCOPES } from '../accounts/scopes.js';
import type { CookiePolicy } from './cookies.js';

/**
 * Registers OpenAPI 3.1 at `/openapi.json` and Swagger UI at `/docs`. Must run before routes are
 * added (it collects them as they register). The OAuth2 password scheme points at `/token` and
 * lists every scope, so "Authorize" in Swagger UI works and offers them.
 */
export async function registerOpenApi(app: FastifyInstance, cookies: CookiePolicy): Promise<void> {
  await app.register(swagger, {
    // Name shared schemas by their $id (Problem, PublicUser…) instead of def-0, def-1…
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gatehouse',
        version: '0.1.0',
        description:
          'Authentication and authorization for TypeScript APIs. Click **Authorize**, enter your email as ' +
          'username and your password (leave client fields empty) to try the protected routes. Errors are ' +
          '`application/problem+json` (RFC 9457) with a stable `code`, except `/token` (RFC 6749 §5.2).',
      },
      components: {
        securitySchemes: {
          OAuth2PasswordBearer: {
            type: 'oauth2',
            description:
              'OAuth 2.0 password grant; access tokens are JWTs (`typ: at+jwt`) sent as Bearer tokens.',
            flows: { password: { tokenUrl: '/token', refreshUrl: '/token', scopes: { ...SCOPES } } },
          },
          sessionCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: cookies.sessionName,
            description:
              'Browser session from `POST /auth/login`. Unsafe methods also need `X-CSRF-Token` from `GET /auth/csrf`.',
          },
          roomCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: `${cookies.roomPrefix}{code}`,
            description:
              'Dicery player token for one room (`{code}` is the room code), set by ' +
              '`POST /rooms/{code}/join` with `Path=/rooms/{code}`. Swagger UI cannot send cookies itself and ' +
              'needs nothing here: after "Try it out" on join, your browser keeps the cookie (this page is ' +
              "same-origin) and sends it on that room's calls. Unsafe calls also need `X-CSRF-Token` from " +
              '`GET /auth/csrf`.',
          },
          roomBearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT (typ: dicery-room+jwt)',
            description:
              'Dicery player token sent as a Bearer token: join with `"transport": "bearer"` and paste its ' +
              '`access_token` here. Never accepted on account routes, nor account tokens on player routes.',
          },
        },
      },
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { persistAuthorization: false, tryItOutEnabled: true },
    // The UI's own script and styles are static files: our CSP (script-src 'self') allows them.
    staticCSP: false,
  });
}

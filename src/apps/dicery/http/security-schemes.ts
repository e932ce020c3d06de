import type { CookiePolicy, OpenApiSecurityScheme } from '../../../http/index.js';
import { roomCookieName, watchCookieName } from './room-cookies.js';

/**
 * Dicery's player credentials and the spectator's watch cookie as OpenAPI security schemes, which
 * its routes' `security` names; registered on `app.openApiSecuritySchemes` by the plugin. The
 * cookies' names follow `cookies` (`__Secure-` under Secure cookies).
 */
export function diceryOpenApiSchemes(cookies: CookiePolicy): Record<string, OpenApiSecurityScheme> {
  return {
    roomCookie: {
      type: 'apiKey',
      in: 'cookie',
      name: `${roomCookieName(cookies, '')}{code}`,
      description:
        'Dicery player token for one room (`{code}` is the room code), set by ' +
        '`POST /rooms/{code}/join` with `Path=/rooms/{code}`. Swagger UI cannot send cookies itself and ' +
        'needs nothing here: after "Try it out" on join, your browser keeps the cookie (this page is ' +
        "same-origin) and sends it on that room's calls. Unsafe calls also need `X-CSRF-Token` from " +
        '`GET /auth/csrf`. Two different values of a room, seat or watch cookie (one planted by another site ' +
        'under your domain) are never resolved in favour of one this server could have issued to someone else: ' +
        'values that cannot be ours for this room are set aside, and otherwise the call answers 400 ' +
        '`AMBIGUOUS_COOKIE` with `Set-Cookie` headers that drop the planted copies; retry once.',
    },
    roomBearer: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT (typ: dicery-room+jwt)',
      description:
        'Dicery player token sent as a Bearer token: join with `"transport": "bearer"` and paste its ' +
        '`access_token` here. Never accepted on account routes, nor account tokens on player routes.',
    },
    watchCookie: {
      type: 'apiKey',
      in: 'cookie',
      name: `${watchCookieName(cookies, '')}{code}`,
      description:
        "A spectator's own read-only credential for one room, set HttpOnly by `POST /rooms/{code}/watch` (in " +
        'exchange for a watch link) with `Path=/rooms/{code}`. Admits the read-only room routes (snapshot, ' +
        'event stream, history, export, log) until the host revokes the link or you stop watching; never a ' +
        'player, never the host.',
    },
    spectatorBearer: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'opaque (dicery_spectator_…)',
      description:
        'The same spectator credential for scripts: `POST /rooms/{code}/watch` with `"transport": "bearer"` and ' +
        'paste its `access_token` here. Read-only routes only; never a room token, never an account token.',
    },
  };
}

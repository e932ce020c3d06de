import type { FastifyInstance } from 'fastify';
import FindMyWay from 'find-my-way';

/**
 * Which methods the routes of an app answer at a path: what a 404 handler needs to tell a
 * method the server does not support at a path it serves (405, RFC 9110 §15.5.6, with `Allow`)
 * from a path it does not serve (404).
 *
 * Fastify's own router answers 404 for both and exposes no lookup by concrete path, so the
 * routes are mirrored (from `onRoute`) into a second find-my-way router, the library Fastify routes
 * with, under the same default options: it is consulted only on the way to a 404.
 */
export interface AllowedMethods {
  /**
   * The methods with a route at `path` (a request target's path, percent-encoded as sent), in
   * the order they were registered, `HEAD` after `GET`; empty when no route matches it.
   */
  at(path: string): string[];
  /** Every method some route takes, in the order first registered, `HEAD` after `GET`. */
  all(): string[];
}

/** `methods` with `HEAD` right after `GET` when it has `GET` and not `HEAD` (Fastify answers it). */
function withHead(methods: string[]): string[] {
  if (!methods.includes('GET') || methods.includes('HEAD')) return methods;
  const index = methods.indexOf('GET') + 1;
  return [...methods.slice(0, index), 'HEAD', ...methods.slice(index)];
}

/**
 * Starts mirroring `app`'s routes from now on (an `onRoute` hook: routes registered before the call,
 * and those of sibling contexts registered before it, are not seen). A route on a bare wildcard
 * (`*`, `/*`) matches every path and is left out, or every unknown path would be a 405.
 */
export function trackAllowedMethods(app: FastifyInstance): AllowedMethods {
  const router = FindMyWay({ defaultRoute: () => {} });
  const methods: FindMyWay.HTTPMethod[] = [];
  const handler = () => {};
  app.addHook('onRoute', (route) => {
    if (route.url === '*' || route.url === '/*') return;
    for (const named of Array.isArray(route.method) ? route.method : [route.method]) {
      const method = named.toUpperCase() as FindMyWay.HTTPMethod;
      try {
        router.on(method, route.url, handler);
      } catch {
        // The same method and path once more (another constraint, or a method find-my-way does
        // not know): the path is already known for what this lookup answers, or cannot be.
        continue;
      }
      if (!methods.includes(method)) methods.push(method);
    }
  });
  return {
    at(path) {
      return withHead(
        methods.filter((method) => {
          try {
            return router.find(method, path) !== null;
          } catch {
            // A path the router cannot read (not starting with `/`, bad escapes): served by no route.
            return false;
          }
        }),
      );
    },
    all: () => withHead([...methods]),
  };
}

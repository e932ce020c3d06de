import type { FastifyInstance } from 'fastify';

/**
 * A `fetch` that answers through `app.inject` (no socket), for client libraries that accept a
 * custom fetch (oauth4webapi's `customFetch`). Only the path and query of the URL are used.
 */
export function injectFetch(app: FastifyInstance) {
  return async (url: string, init: RequestInit = {}): Promise<Response> => {
    const target = new URL(url);
    const body = init.body;
    const requestHeaders: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      requestHeaders[name] = value;
    });
    const response = await app.inject({
      method: (init.method ?? 'GET') as 'GET',
      url: `${target.pathname}${target.search}`,
      headers: requestHeaders,
      ...(body === undefined || body === null ? {} : { payload: String(body) }),
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (item !== undefined) headers.append(name, String(item));
      }
    }
    const empty = response.rawPayload.length === 0 || response.statusCode === 204;
    return new Response(empty ? null : new Uint8Array(response.rawPayload), {
      status: response.statusCode,
      headers,
    });
  };
}

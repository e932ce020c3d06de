import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { cookiesOf, PASSWORD } from './accounts.js';

/** Methods the jar speaks. */
export type Method = 'GET' | 'POST' | 'DELETE';

/**
 * A cookie jar that honours `Path` (RFC 6265 §5.1.4) and `Max-Age=0`, which is what makes one
 * browser able to hold the cookies of several rooms at once.
 */
export class Browser {
  readonly cookies = new Map<string, { value: string; path: string }>();
  constructor(private readonly app: FastifyInstance) {}

  cookieHeader(url: string): string {
    const path = url.split('?')[0] ?? '/';
    const matches = (cookiePath: string) =>
      path === cookiePath ||
      (path.startsWith(cookiePath) && (cookiePath.endsWith('/') || path[cookiePath.length] === '/'));
    return [...this.cookies]
      .filter(([, cookie]) => matches(cookie.path))
      .map(([name, cookie]) => `${name}=${cookie.value}`)
      .join('; ');
  }

  absorb(response: LightMyRequestResponse): LightMyRequestResponse {
    // cookiesOf lower-cases attributes, but paths are case-sensitive: read Path from the raw line.
    const lines = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
    for (const [name, { value, attributes }] of cookiesOf(response)) {
      const line = lines.find((l) => l.startsWith(`${name}=`)) ?? '';
      const path = /;\s*path=([^;]*)/i.exec(line)?.[1] ?? '/';
      if (attributes.includes('max-age=0') || value === '') this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
    return response;
  }

  async request(
    method: Method,
    url: string,
    options: { headers?: Record<string, string>; payload?: object } = {},
  ) {
    const response = await this.app.inject({
      method,
      url,
      headers: { cookie: this.cookieHeader(url), ...options.headers },
      payload: options.payload,
    });
    return this.absorb(response);
  }

  async csrf(): Promise<string> {
    return (await this.request('GET', '/auth/csrf')).json().csrf_token;
  }

  async login(email: string): Promise<void> {
    const token = await this.csrf();
    const response = await this.request('POST', '/auth/login', {
      headers: { 'x-csrf-token': token },
      payload: { email, password: PASSWORD },
    });
    expect(response.statusCode).toBe(204);
  }

  join(code: string, player: string) {
    return this.request('POST', `/rooms/${code}/join`, { payload: { player } });
  }
}

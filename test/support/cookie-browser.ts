import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { cookiesOf, PASSWORD } from './accounts.js';

/** A minimal cookie jar for inject-based browser flows. */
export class Browser {
  readonly jar = new Map<string, string>();
  constructor(private readonly app: FastifyInstance) {}
  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  absorb(response: LightMyRequestResponse): LightMyRequestResponse {
    for (const [name, { value, attributes }] of cookiesOf(response)) {
      if (attributes.includes('max-age=0') || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return response;
  }
  async request(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    options: { headers?: Record<string, string>; payload?: object } = {},
  ) {
    return this.absorb(
      await this.app.inject({
        method,
        url,
        headers: { cookie: this.cookieHeader(), ...options.headers },
        payload: options.payload,
      }),
    );
  }
  async csrf(): Promise<string> {
    return (await this.request('GET', '/auth/csrf')).json().csrf_token;
  }
  async login(email: string, password = PASSWORD): Promise<LightMyRequestResponse> {
    const token = await this.csrf();
    return this.request('POST', '/auth/login', {
      headers: { 'x-csrf-token': token },
      payload: { email, password },
    });
  }
}

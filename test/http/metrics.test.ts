import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { createUser, form } from '../support/accounts.js';

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ metricsPort: 0 }, { webUi: false });
  });
  afterAll(async () => app.close());

  it('are off by default: no listener, and never on the public port', async () => {
    const plain = await buildTestServer({}, { webUi: false });
    try {
      expect(plain.metricsUrl).toBeUndefined();
      expect((await plain.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    } finally {
      await plain.close();
    }
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
  });

  it('are scraped in Prometheus text format, labelled by route template only', async () => {
    const user = await createUser(app);
    await app.inject({ method: 'GET', url: '/healthz' });
    await app.inject({ method: 'GET', url: '/healthz' });
    await app.inject({ method: 'GET', url: '/users/me' });
    await app.inject({ method: 'GET', url: '/clothes/12345' });
    await app.inject({ method: 'GET', url: '/no/such/path-secret-123' });
    const token = (body: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: form(body),
      });
    expect(
      (await token({ grant_type: 'password', username: user.email, password: 'wrong one!' })).statusCode,
    ).toBe(400); // RFC 6749 §5.2 invalid_grant
    expect(
      (await token({ grant_type: 'password', username: user.email, password: user.password })).statusCode,
    ).toBe(200);

    const url = app.metricsUrl;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();

    expect(sample(text, 'gatehouse_http_requests_total{method="GET",route="/healthz",status="200"}')).toBe(2);
    expect(sample(text, 'gatehouse_http_requests_total{method="GET",route="/users/me",status="401"}')).toBe(
      1,
    );
    // Templates, not paths: the id and the unmatched path never become label values.
    expect(text).toContain('route="/clothes/:id"');
    expect(
      sample(text, 'gatehouse_http_requests_total{method="GET",route="unmatched",status="404"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain('12345');
    expect(text).not.toContain('path-secret-123');
    expect(sample(text, 'gatehouse_http_request_duration_seconds_count{method="GET",route="/healthz"}')).toBe(
      2,
    );
    expect(sample(text, 'gatehouse_logins_total{route="/token",outcome="rejected"}')).toBe(1);
    expect(sample(text, 'gatehouse_logins_total{route="/token",outcome="success"}')).toBe(1);
    expect(sample(text, 'gatehouse_revoked_sessions')).toBe(0);
    expect(text).toContain('# TYPE gatehouse_process_resident_memory_bytes gauge');
    expect((await fetch(`${url}/other`)).status).toBe(404);
  });

  it('counts throttled requests', async () => {
    const user = await createUser(app);
    let status = 0;
    for (let attempt = 0; attempt < 20 && status !== 429; attempt += 1) {
      status = (
        await app.inject({
          method: 'POST',
          url: '/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: form({ grant_type: 'password', username: user.email, password: 'wrong again!' }),
        })
      ).statusCode;
    }
    expect(status).toBe(429);
    const text = await (await fetch(`${app.metricsUrl}/metrics`)).text();
    expect(sample(text, 'gatehouse_throttled_requests_total{route="/token"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'gatehouse_logins_total{route="/token",outcome="throttled"}')).toBeGreaterThanOrEqual(
      1,
    );
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Gatehouse } from '../gatehouse.js';

/** Where the metrics listener answers, once it listens. */
export interface MetricsListener {
  /** Base URL of the listener, e.g. `http://127.0.0.1:9464`; scrape `${url}/metrics`. */
  readonly url: string;
  /** Stops the listener. */
  close(): Promise<void>;
}

/** Label of requests that matched no route: the raw path would make the label set unbounded. */
const UNMATCHED = 'unmatched';

/** Routes where a password is checked; their answers count as logins by outcome. */
const LOGIN_ROUTES = new Set(['/auth/login', '/token']);

/** Latency buckets in seconds: the hot GETs sit well below 1 ms, logins near 10–50 ms (argon2id). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** `success`, `throttled` (429), `unavailable` (503), `rejected` (other 4xx) or `error`. */
function loginOutcome(status: number): string {
  if (status < 300) return 'success';
  if (status === 429) return 'throttled';
  if (status === 503) return 'unavailable';
  if (status < 500) return 'rejected';
  return 'error';
}

/** `/token` also serves refresh grants; only the password grant is a login. */
function isLogin(route: string, request: FastifyRequest): boolean {
  if (route !== '/token') return true;
  const body = request.body;
  return typeof body === 'object' && body !== null && 'grant_type' in body && body.grant_type === 'password';
}

/**
 * Counts requests on `app` (by route template, never by raw path, so label sets stay bounded) and
 * serves them in Prometheus text format at `GET /metrics` on a listener of its own at
 * `host:port`, never on the public port: the figures reveal traffic and account activity.
 * prom-client is imported here, so a server without `METRICS_PORT` never loads it.
 *
 * Exposed: requests by method, route and status; request latency by method and route; logins by
 * outcome; throttled (429) requests by route; revoked sessions held in memory; Redis state; and
 * prom-client's process metrics (RSS, heap, event-loop lag, GC).
 */
export async function installMetrics(
  app: FastifyInstance,
  gatehouse: Gatehouse,
  listen: { host: string; port: number },
): Promise<MetricsListener> {
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  const registers = [registry];
  const requests = new prom.Counter({
    name: 'gatehouse_http_requests_total',
    help: 'HTTP requests by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });
  const latency = new prom.Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'Time from request received to response sent, by method and route template.',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const logins = new prom.Counter({
    name: 'gatehouse_logins_total',
    help: 'Password logins (POST /auth/login, POST /token with the password grant) by route and outcome.',
    labelNames: ['route', 'outcome'] as const,
    registers,
  });
  const throttled = new prom.Counter({
    name: 'gatehouse_throttled_requests_total',
    help: 'Requests answered 429 (login throttling, rate limits), by route template.',
    labelNames: ['route'] as const,
    registers,
  });
  new prom.Gauge({
    name: 'gatehouse_revoked_sessions',
    help: 'Revoked sessions held in the in-memory revocation set.',
    registers,
    collect() {
      this.set(gatehouse.revocations.size);
    },
  });
  new prom.Gauge({
    name: 'gatehouse_redis_up',
    help: 'Redis as readiness sees it: 1 up, 0 down; absent when Redis is not configured.',
    registers,
    collect() {
      const state = gatehouse.redisState();
      if (state === 'disabled') this.reset();
      else this.set(state === 'up' ? 1 : 0);
    },
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED;
    const status = reply.statusCode;
    requests.inc({ method: request.method, route, status: String(status) });
    latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    if (status === 429) throttled.inc({ route });
    if (LOGIN_ROUTES.has(route) && request.method === 'POST' && isLogin(route, request)) {
      logins.inc({ route, outcome: loginOutcome(status) });
    }
    done();
  });

  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => {
        app.log.warn({ err: error }, 'metrics collection failed');
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

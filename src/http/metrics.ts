import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatehouseCore } from '../gatehouse-core.js';
import { MFA_OTP_GRANT_TYPE } from '../sessions/token-grants.js';
import type { Metrics } from './metrics-listener.js';

/**
 * Routes where a credential is checked (a password, a second factor, a passkey); their answers
 * count as logins by outcome. `/token` counts its password and second-factor grants only.
 */
const LOGIN_ROUTES = new Set(['/auth/login', '/auth/login/mfa', '/auth/passkey/login', '/token']);
const TOKEN_LOGIN_GRANTS = new Set(['password', MFA_OTP_GRANT_TYPE]);

/** Whether `raw` has started an event stream (a refused request answers problem+json instead). */
function isEventStream(raw: ServerResponse): boolean {
  const type = raw.getHeader('content-type');
  return raw.headersSent && typeof type === 'string' && type.startsWith('text/event-stream');
}

/** Error codes of a credential that was checked and refused, by outcome. */
const REFUSED_CODES: Readonly<Record<string, string>> = {
  INVALID_CREDENTIALS: 'rejected',
  PASSKEY_INVALID: 'rejected',
  INVALID_OTP: 'mfa_failed',
  MFA_TOKEN_INVALID: 'mfa_failed',
  SECOND_FACTOR_LOCKED: 'locked',
  ACCOUNT_DISABLED: 'disabled',
  EMAIL_NOT_VERIFIED: 'unverified',
};

/**
 * A login's outcome from its answer: `success`; `mfa_required` (the password was right, a second
 * step follows); `rejected` (wrong password or passkey); `mfa_failed` (a wrong or spent code, or a
 * dead `mfa_token`); `locked` (codes refused unchecked at the run's cap); `disabled` and
 * `unverified` (the account's state refused a right credential); `throttled` (429);
 * `unavailable` (503); `error` (5xx). Undefined for a request refused before any credential was
 * checked (CSRF, origin, a malformed body): no login was tried, so none is counted.
 */
function loginOutcome(
  status: number,
  body: { code?: unknown; error?: unknown; mfa_required?: unknown } | undefined,
  secondStep: boolean,
): string | undefined {
  if (body?.mfa_required === true || body?.error === 'mfa_required') return 'mfa_required';
  if (status < 300) return 'success';
  if (status === 429) return 'throttled';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'error';
  if (typeof body?.code === 'string' && Object.hasOwn(REFUSED_CODES, body.code))
    return REFUSED_CODES[body.code];
  // The token endpoint's RFC 6749 answer names no code for a refused credential: `invalid_grant`
  // is the password, or the second step's code (or its dead mfa_token).
  if (body?.error === 'invalid_grant') return secondStep ? 'mfa_failed' : 'rejected';
  return undefined;
}

/** The `grant_type` of a form posted to `/token`, if any. */
function grantType(request: FastifyRequest): unknown {
  const body = request.body;
  return typeof body === 'object' && body !== null && 'grant_type' in body ? body.grant_type : undefined;
}

/** Whether the login is a second step: its credential is a code, not a password. */
function isSecondStep(route: string, request: FastifyRequest): boolean {
  return route === '/auth/login/mfa' || (route === '/token' && grantType(request) === MFA_OTP_GRANT_TYPE);
}

/** `/token` also serves refresh and client grants; only its password and second-factor grants are logins. */
function isLogin(route: string, request: FastifyRequest): boolean {
  if (route !== '/token') return true;
  const grant = grantType(request);
  return typeof grant === 'string' && TOKEN_LOGIN_GRANTS.has(grant);
}

/** The members of a login's answer its outcome is read from; nothing else of it is kept. */
function answerOf(payload: unknown): { code?: unknown; error?: unknown; mfa_required?: unknown } | undefined {
  if (typeof payload !== 'string' || !payload.startsWith('{')) return undefined;
  try {
    const { code, error, mfa_required } = JSON.parse(payload) as Record<string, unknown>;
    return { code, error, mfa_required };
  } catch {
    return undefined;
  }
}

/**
 * Adds `app`'s figures to the server's metrics (see `createMetrics`): requests by
 * method, route template (never the raw path, so label sets stay bounded) and status; request
 * latency by method and route; logins by outcome; throttled (429) requests by route; revoked
 * sessions held in memory; password hashes running, queued (by lane) and their wait; cache lookups
 * by cache and result; database connections by state; open event streams; security notices queued
 * and by outcome; Redis state, reconnects and bus lag. Every label set is fixed in this file and
 * `metrics-listener.ts`. Call it once per registry: the series are registered by name. The series
 * read from the core leave the registry when the core begins to close (`Metrics.coreClosing`).
 */
export function installMetrics(app: FastifyInstance, gatehouse: GatehouseCore, metrics: Metrics): void {
  const { prom, registry } = metrics;
  const registers = [registry];
  metrics.countRequests(app);
  const logins = new prom.Counter({
    name: 'gatehouse_logins_total',
    help:
      'Logins by route and outcome: passwords (POST /auth/login, the password grant of POST /token), second ' +
      'factors (POST /auth/login/mfa, the mfa-otp grant) and passkeys (POST /auth/passkey/login). Requests ' +
      'refused before any credential was checked (CSRF, origin, a malformed body) are not counted.',
    labelNames: ['route', 'outcome'] as const,
    registers,
  });
  // Open event streams: bounded by the open connections (each entry leaves when its socket closes).
  const streams = new Set<ServerResponse>();
  new prom.Gauge({
    name: 'gatehouse_event_streams_open',
    help: 'Server-sent event streams open now (routes declared with config.eventStream).',
    registers,
    collect() {
      let open = 0;
      for (const raw of streams) if (isEventStream(raw)) open += 1;
      this.set(open);
    },
  });

  // Every series from here on reads the core: they leave the registry when it begins to close.
  const appSeries = new Set(registry.getMetricsAsArray().map((metric) => metric.name));
  new prom.Gauge({
    name: 'gatehouse_revoked_sessions',
    help: 'Revoked sessions held in the in-memory revocation set.',
    registers,
    collect() {
      this.set(gatehouse.revocations.size);
    },
  });
  // Absent without Redis (a 0 would read as Redis down); whether it is configured never changes.
  if (gatehouse.redisState() !== 'disabled') {
    new prom.Gauge({
      name: 'gatehouse_redis_up',
      help: 'Redis as readiness sees it: 1 up, 0 down; absent when Redis is not configured.',
      registers,
      collect() {
        this.set(gatehouse.redisState() === 'up' ? 1 : 0);
      },
    });
  }

  // The core keeps monotonic totals; each counter below is reset and set to them at every scrape.
  // Password hashing: slots in use and queued (gauges), time waited for a slot (sum and count).
  new prom.Gauge({
    name: 'gatehouse_password_hash_running',
    help: 'Password hashes (argon2id) running now.',
    registers,
    collect() {
      this.set(gatehouse.hasher.stats().running);
    },
  });
  new prom.Gauge({
    name: 'gatehouse_password_hash_queue_depth',
    help: 'Password hashes waiting for a slot, by lane (reserved: trusted devices).',
    labelNames: ['lane'] as const,
    registers,
    collect() {
      const { queued } = gatehouse.hasher.stats();
      this.set({ lane: 'shared' }, queued.shared);
      this.set({ lane: 'reserved' }, queued.reserved);
    },
  });
  new prom.Counter({
    name: 'gatehouse_password_hash_wait_seconds_total',
    help: 'Time password hashes spent waiting for a slot (divide by gatehouse_password_hashes_total).',
    registers,
    collect() {
      this.reset();
      this.inc(gatehouse.hasher.stats().waitSecondsTotal);
    },
  });
  new prom.Counter({
    name: 'gatehouse_password_hashes_total',
    help: 'Password hashes and verifications started.',
    registers,
    collect() {
      this.reset();
      this.inc(gatehouse.hasher.stats().started);
    },
  });
  new prom.Gauge({
    name: 'gatehouse_login_refusal_floor_seconds',
    help: "Least time a refused sign-in's password check takes (per verification), so that imported accounts do not show by their old hash's time; 0 while none was imported.",
    registers,
    collect() {
      this.set(gatehouse.refusalFloor.current() / 1000);
    },
  });
  // Caches: lookups by cache and result (hit rate = hits / (hits + misses)).
  new prom.Counter({
    name: 'gatehouse_cache_lookups_total',
    help: 'In-memory cache lookups by cache (user, jwt, opaque, cookie) and result (hit, miss).',
    labelNames: ['cache', 'result'] as const,
    registers,
    collect() {
      const caches = { user: gatehouse.userCache.stats(), ...gatehouse.sessions.cacheStats() };
      this.reset();
      for (const [cache, { hits, misses }] of Object.entries(caches)) {
        this.inc({ cache, result: 'hit' }, hits);
        this.inc({ cache, result: 'miss' }, misses);
      }
    },
  });
  new prom.Gauge({
    name: 'gatehouse_database_connections',
    help: 'Database connections by state (in_use, idle), and callers waiting for one (waiting).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const pool = gatehouse.database.poolStats();
      this.set({ state: 'in_use' }, pool.open - pool.idle);
      this.set({ state: 'idle' }, pool.idle);
      this.set({ state: 'waiting' }, pool.waiting);
    },
  });
  new prom.Gauge({
    name: 'gatehouse_database_unreachable',
    help: 'PostgreSQL: 1 while calls fail at once because the server stopped answering (the pool breaker), else 0.',
    registers,
    collect() {
      this.set(gatehouse.database.poolStats().unreachable === true ? 1 : 0);
    },
  });
  new prom.Gauge({
    name: 'gatehouse_database_connections_max',
    help: 'Most database connections the pool opens.',
    registers,
    collect() {
      this.set(gatehouse.database.poolStats().max);
    },
  });
  // Security notices: a relay that refuses or fails shows here long before a notice ages out.
  new prom.Gauge({
    name: 'gatehouse_security_notices_queued',
    help: 'Security notices this instance took and holds in its mail queue.',
    registers,
    collect() {
      this.set(gatehouse.securityNotices.stats().held);
    },
  });
  new prom.Counter({
    name: 'gatehouse_security_notices_total',
    help:
      'Security notices by outcome: delivered (the relay took it), failed_take (every attempt of a take ' +
      'failed or the relay refused; retried after a backoff), expired (deleted undelivered after 3 days).',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      const { delivered, failedTakes, expired } = gatehouse.securityNotices.stats();
      this.reset();
      this.inc({ outcome: 'delivered' }, delivered);
      this.inc({ outcome: 'failed_take' }, failedTakes);
      this.inc({ outcome: 'expired' }, expired);
    },
  });
  new prom.Counter({
    name: 'gatehouse_redis_reconnects_total',
    help: 'Redis reconnections (either connection); 0 without Redis.',
    registers,
    collect() {
      const stats = gatehouse.redisStats();
      this.reset();
      if (stats !== undefined) this.inc(stats.reconnects);
    },
  });
  new prom.Counter({
    name: 'gatehouse_bus_messages_total',
    help: 'Bus messages received from other instances over Redis.',
    registers,
    collect() {
      const stats = gatehouse.redisStats();
      this.reset();
      if (stats !== undefined) this.inc(stats.messages);
    },
  });
  new prom.Counter({
    name: 'gatehouse_bus_lag_seconds_total',
    help: 'Publish-to-receipt delay of those messages (divide by gatehouse_bus_messages_total).',
    registers,
    collect() {
      const stats = gatehouse.redisStats();
      this.reset();
      if (stats !== undefined) this.inc(stats.lagSecondsTotal);
    },
  });

  const coreSeries = registry
    .getMetricsAsArray()
    .map((metric) => metric.name)
    .filter((name) => !appSeries.has(name));
  metrics.onCoreClosing(() => {
    for (const name of coreSeries) registry.removeSingleMetric(name);
  });

  app.addHook('onRequest', (request, reply, done) => {
    // Routes say they stream (route `config.eventStream`): the core knows no app's paths.
    if (request.routeOptions.config?.eventStream === true) {
      const raw = reply.raw;
      streams.add(raw);
      raw.once('close', () => streams.delete(raw));
    }
    done();
  });

  // Logins are counted where their answer is at hand (its `mfa_required`, its error code), on
  // those routes only: they run at the password hash's pace, so parsing their small answers costs
  // nothing. A 204 (a browser signed in) and a 2xx token answer need no reading, bar /auth/login's 200.
  app.addHook('onSend', (request, reply, payload, done) => {
    const route = request.routeOptions.url;
    if (
      route !== undefined &&
      LOGIN_ROUTES.has(route) &&
      request.method === 'POST' &&
      isLogin(route, request)
    ) {
      const status = reply.statusCode;
      const read = status >= 300 || (route === '/auth/login' && status === 200);
      const outcome = loginOutcome(
        status,
        read ? answerOf(payload) : undefined,
        isSecondStep(route, request),
      );
      if (outcome !== undefined) logins.inc({ route, outcome });
    }
    done(null, payload);
  });
}

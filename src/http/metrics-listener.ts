import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type * as PromClient from 'prom-client';
import type { Counter, Histogram, Registry } from 'prom-client';

/**
 * Connections the metrics listener holds at once. At the cap a newcomer takes the slot of the
 * oldest socket with no request being answered, and is refused only when every slot is answering.
 */
const METRICS_MAX_CONNECTIONS = 16;

/** Label of requests that matched no route: the raw path would make the label set unbounded. */
const UNMATCHED = 'unmatched';

/** Latency buckets in seconds: the hot GETs sit well below 1 ms, logins near 10–50 ms (argon2id). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Where a server is in its life, as `gatehouse_server_state` shows it. */
export type ServerState = 'starting' | 'ready' | 'draining';
const SERVER_STATES: readonly ServerState[] = ['starting', 'ready', 'draining'];

/** Where the metrics listener listens. */
export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
  /** Host names a scraper may send besides IP addresses, `localhost` and `host` (see {@link scraperHost}). */
  readonly allowedHosts?: readonly string[];
}

/**
 * The server's metrics: a registry with prom-client's process metrics (RSS, heap, event-loop lag,
 * GC), the server's state, failed start-up attempts, the request series, and what is added to it
 * (the application's figures, `installMetrics`), served by {@link listen}. Made before anything it
 * reports on exists, so that a server still starting (waiting for its database) or draining is
 * scraped like a running one (ops review 2026-12s O6).
 */
export interface Metrics {
  /** The registry the listener serves. */
  readonly registry: Registry;
  /** prom-client itself, loaded by {@link createMetrics} (never loaded without `METRICS_PORT`). */
  readonly prom: typeof PromClient;
  /** Base URL of the listener once {@link listen} resolved, e.g. `http://127.0.0.1:9464`; scrape `${url}/metrics`. */
  readonly url: string | undefined;
  /** Opens the listener at `address` (never the public port: the figures reveal traffic and account activity). */
  listen(address: MetricsAddress): Promise<void>;
  /** Stops the listener, if it listens. */
  close(): Promise<void>;
  /** Sets `gatehouse_server_state`; `draining` is final (a start-up that completes after a close began stays draining). */
  setState(state: ServerState): void;
  /** Counts a failed start-up attempt (`gatehouse_startup_attempts_failed_total`). */
  countFailedStart(): void;
  /** Counts `instance`'s requests by method, route template and status, their latency, and its 429s. */
  countRequests(instance: FastifyInstance): void;
  /**
   * Registers what to run when the core begins to close: the application's series read the core
   * (`installMetrics`), and a closed core's figures (Redis "down", a pool with nothing idle) would
   * read as an outage on every deploy, so they leave the registry instead.
   */
  onCoreClosing(action: () => void): void;
  /** Runs the {@link onCoreClosing} actions, once: `startServer` calls it before closing its core. */
  coreClosing(): void;
}

/** What {@link createMetrics} needs besides prom-client. */
export interface MetricsOptions {
  /** Where the listener's warnings go (a scrape through a host name it does not know). */
  readonly log: () => FastifyBaseLogger;
  /** Log lines the process's log destination dropped so far (`gatehouse serve`'s); absent: not shown. */
  readonly droppedLogLines?: () => number;
}

/** `Host` as a scraper sends it: an IPv4 address or a bracketed IPv6 one, then an optional port. */
const IP_HOST = /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

/**
 * Whether a request to the metrics listener names a host it answers for: an IP address (how
 * Prometheus scrapes a target it discovered), `localhost`, or a name in `allowed`
 * (`METRICS_ALLOWED_HOSTS` and `METRICS_HOST`, lower case, without a trailing dot), with any port
 * and an optional trailing dot. Any other name means the request came through a name the operator never gave
 * the listener: a web page that rebinds its own name to 127.0.0.1 or a private address could
 * otherwise read the metrics from a visitor's browser (DNS rebinding, red-team 2026-12h C1).
 */
export function scraperHost(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (host === undefined) return false;
  if (IP_HOST.test(host)) return true;
  // The root's dot is the same name: `gatehouse.svc.cluster.local.` is `gatehouse.svc.cluster.local`.
  const name = host
    .replace(/:\d{1,5}$/, '')
    .toLowerCase()
    .replace(/\.$/, '');
  return name === 'localhost' || allowed.has(name);
}

/**
 * Loads prom-client and makes the server's {@link Metrics}; nothing listens until
 * {@link Metrics.listen}. Called only when `METRICS_PORT` is set, so a server without it never
 * loads prom-client.
 */
export async function createMetrics(options: MetricsOptions): Promise<Metrics> {
  let warnedAt = Number.NEGATIVE_INFINITY;
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  const registers = [registry];
  let state: ServerState = 'starting';
  new prom.Gauge({
    name: 'gatehouse_server_state',
    help: 'Where the server is in its life: 1 for the current state (starting: waiting for its database; ready; draining: shutting down), 0 for the others.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      for (const each of SERVER_STATES) this.set({ state: each }, each === state ? 1 : 0);
    },
  });
  const failedStarts = new prom.Counter({
    name: 'gatehouse_startup_attempts_failed_total',
    help: 'Start-up attempts that failed (the database or Redis not answering) and were retried.',
    registers,
  });
  const { droppedLogLines } = options;
  if (droppedLogLines !== undefined) {
    new prom.Counter({
      name: 'gatehouse_log_lines_dropped_total',
      help: 'Log lines dropped: standard output refused writes (a full disk) until 4 MiB of lines were waiting.',
      registers,
      collect() {
        this.reset();
        this.inc(droppedLogLines());
      },
    });
  }
  const requestCounters = createRequestCounters(prom, registry);
  const countResponse = (request: FastifyRequest, reply: FastifyReply): void => {
    const route = request.routeOptions.url ?? UNMATCHED;
    const status = reply.statusCode;
    requestCounters.requests.inc({ method: request.method, route, status: String(status) });
    requestCounters.latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    if (status === 429) requestCounters.throttled.inc({ route });
  };
  let coreClosingActions: (() => void)[] = [];
  let server: Server | undefined;
  let url: string | undefined;

  const listen = async (address: MetricsAddress): Promise<void> => {
    const allowedHosts = new Set(
      [...(address.allowedHosts ?? []), address.host].map((name) => name.toLowerCase().replace(/\.$/, '')),
    );
    // Sockets of the listener, each with whether a request of it is being answered.
    const sockets = new Map<Socket, { busy: boolean }>();
    // Headers are checked for their timeout every second (Node's default: every 30 s, so a socket
    // that never finished its headers held its slot six times the 5-s bound).
    const listener: Server = createServer({ connectionsCheckingInterval: 1_000 }, (request, response) => {
      const socketState = sockets.get(request.socket);
      if (socketState !== undefined) {
        socketState.busy = true;
        response.once('finish', () => {
          socketState.busy = false;
        });
      }
      if (!scraperHost(request.headers.host, allowedHosts)) {
        // At most one warning a minute, naming the setting: a scraper that uses a name the operator
        // did not list would otherwise only show as "target down".
        if (Date.now() - warnedAt > 60_000) {
          warnedAt = Date.now();
          options
            .log()
            .warn(
              { host: request.headers.host?.slice(0, 255) },
              'metrics listener refused a request for a host name it does not know (421); list the name a scraper uses in METRICS_ALLOWED_HOSTS',
            );
        }
        // RFC 9110 §15.5.20: not a name this listener answers for.
        response.writeHead(421, { 'content-type': 'text/plain' }).end('misdirected request\n');
        return;
      }
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => {
          options.log().warn({ err: error }, 'metrics collection failed');
          response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
    });
    // A scraper needs one connection at a time and answers in well under a second. Bounds for a
    // listener often bound to 0.0.0.0 inside a cluster: without them any pod could hold thousands of
    // idle sockets (Node's defaults: 60 s for headers, 300 s per request), spending the file
    // descriptors the public port and the database pool share (operator red-team 2026-12-04).
    // At the cap a newcomer is not refused (Node's `maxConnections` did that, and a peer that kept
    // re-opening 16 half-sent requests kept every scrape out: ops review 2026-12s O3): the oldest
    // socket with no request being answered gives its slot up, and the newcomer is refused only
    // when every slot is answering one.
    listener.on('connection', (socket: Socket) => {
      if (sockets.size >= METRICS_MAX_CONNECTIONS) {
        const idle = [...sockets].find(([, each]) => !each.busy)?.[0];
        if (idle === undefined) {
          socket.destroy();
          return;
        }
        idle.destroy();
        sockets.delete(idle);
      }
      sockets.set(socket, { busy: false });
      socket.once('close', () => sockets.delete(socket));
    });
    listener.headersTimeout = 5_000;
    listener.requestTimeout = 10_000;
    listener.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(address.port, address.host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    const { port } = listener.address() as AddressInfo;
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    server = listener;
    url = `http://${host}:${port}`;
  };

  return {
    registry,
    prom,
    get url() {
      return url;
    },
    listen,
    close: () =>
      new Promise<void>((resolve) => {
        if (server === undefined) {
          resolve();
          return;
        }
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    setState(next) {
      if (state !== 'draining') state = next;
    },
    countFailedStart() {
      failedStarts.inc();
    },
    countRequests(instance) {
      instance.addHook('onResponse', (request, reply, done) => {
        countResponse(request, reply);
        done();
      });
    },
    onCoreClosing(action) {
      coreClosingActions.push(action);
    },
    coreClosing() {
      const actions = coreClosingActions;
      coreClosingActions = [];
      for (const action of actions) action();
    },
  };
}

/** The request series every counted instance adds to (see `MetricsEndpoint.countRequests`). */
function createRequestCounters(
  prom: typeof PromClient,
  registry: Registry,
): {
  requests: Counter<'method' | 'route' | 'status'>;
  latency: Histogram<'method' | 'route'>;
  throttled: Counter<'route'>;
} {
  const registers = [registry];
  return {
    requests: new prom.Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests by method, route template and status.',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    latency: new prom.Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'Time from request received to response sent, by method and route template.',
      labelNames: ['method', 'route'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    throttled: new prom.Counter({
      name: 'gatehouse_throttled_requests_total',
      help: 'Requests answered 429 (login throttling, rate limits), by route template.',
      labelNames: ['route'] as const,
      registers,
    }),
  };
}

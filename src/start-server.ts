import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { dicerySettings } from './apps/dicery/settings.js';
import { pickAppSettings } from './config/app-settings.js';
import type { ConfigNotice } from './config/resolve-config.js';
import { assertValidConfig } from './config/validate-config.js';
import { ConfigError, GatehouseError } from './errors.js';
import { createGatehouse, type Gatehouse } from './gatehouse.js';
import { gatehouseCore } from './gatehouse-core.js';
import { sendProblem } from './http/error-handler.js';
import { HTTP_SERVER_OPTIONS } from './http/host-header.js';
import { createLoggerOptions, handleClientError, refuseExpectation } from './http/log-options.js';
import { createMetrics } from './http/metrics-listener.js';
import { addressBucket } from './lib/address-bucket.js';
import { compactHeap } from './lib/compact-heap.js';
import { createConcurrencyCaps } from './lib/concurrency-caps.js';
import { outboxDirectory } from './mail/outbox.js';
import {
  type BuildServerOptions,
  buildServer,
  REFERENCE_APP_MIGRATIONS,
  REFERENCE_APP_SCOPES,
  REFERENCE_APP_SETTINGS,
  type ReferenceServerConfig,
} from './server.js';
import { databaseRefusal } from './storage/database-refusal.js';
import { SigningKeyError, type SigningKeyErrorCode } from './tokens/signing-key-error.js';

/** Options of {@link startServer}. */
export interface StartServerOptions
  extends Omit<BuildServerOptions, 'gatehouse' | 'serverFactory' | 'metrics'> {
  /** First wait after a failed start-up attempt, in ms; it doubles per attempt. @default 250 */
  initialRetryDelayMs?: number;
  /** Longest wait between two start-up attempts, in ms. @default 10000 */
  maxRetryDelayMs?: number;
  /**
   * Runs one compacting garbage collection when start-up has finished, before the first request
   * reaches the application (`/readyz` still answers 503 "starting" during it): start-up's garbage
   * otherwise keeps ≈ 6–8 MiB of RSS until V8's memory reducer runs, ≈ 20 s later. It briefly
   * changes V8 flags for the whole process (see `compactHeap`), so it is off for embedders and on
   * in `gatehouse serve`. @default false
   */
  compactHeapWhenReady?: boolean;
  /** Start-up notices (from `resolveConfig`), logged before the server listens. @default [] */
  notices?: readonly ConfigNotice[];
  /**
   * Longest time a client may take to send one whole request (headers and body), in ms; the
   * socket is then closed (Node answers 408). Headers alone get at most half of it. @default 30000
   */
  requestTimeoutMs?: number;
  /**
   * Longest time a response may go without the client accepting any of its bytes, in ms (socket
   * inactivity while a request is being answered); the socket is then destroyed. Without it a
   * client that stops reading an answer bigger than the kernel's socket buffers (a big export) holds
   * its descriptor and the answer's state for ever (red-team G5). Event streams write a heartbeat
   * more often than this, so only a stream whose client stopped reading ends. Idle keep-alive sockets
   * keep their own, longer timeout (72 s). @default 60000
   */
  sendTimeoutMs?: number;
  /**
   * Log lines the log destination dropped so far (`gatehouse serve`'s, see `createLogDestination`),
   * shown as `gatehouse_log_lines_dropped_total` when `METRICS_PORT` is set. @default not shown
   */
  droppedLogLines?: () => number;
}

/**
 * The metrics listener (`METRICS_HOST`:`METRICS_PORT`) could not listen; `cause` is Node's error.
 * Apart from the public listener's errors so the message can name the metrics settings.
 */
export class MetricsListenError extends Error {
  constructor(cause: unknown) {
    super('the metrics listener could not listen', { cause });
    this.name = 'MetricsListenError';
  }
}

/** The slow-client timeouts {@link startServer} sets on Node's HTTP server, in ms. */
export interface RequestTimeouts {
  /** Longest time for one whole request, headers and body (Node answers 408). */
  readonly requestTimeout: number;
  /** Longest time for the request's headers alone. */
  readonly headersTimeout: number;
  /** How often Node looks for requests past either timeout. */
  readonly connectionsCheckingInterval: number;
}

/**
 * The slow-client timeouts for a request timeout of `requestTimeoutMs` (what `gatehouse serve`
 * runs with when left out): one function, so the defaults can be checked without waiting them out.
 */
export function requestTimeouts(requestTimeoutMs = 30_000): RequestTimeouts {
  return {
    // Node's defaults (300 s per request, 60 s for headers) let a client that trickles a body
    // byte by byte hold a socket for five minutes (red-team F6; OWASP "slow HTTP" DoS). Bodies
    // here are small (BODY_LIMIT), so 30 s is generous; event streams are responses and not
    // affected. A reverse proxy in front remains the real defence against many slow clients.
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.ceil(requestTimeoutMs / 2),
    // Node's own default (30 s) would double the timeouts above: a request is cut only at the
    // first check after its timeout.
    connectionsCheckingInterval: Math.min(5_000, Math.ceil(requestTimeoutMs / 4)),
  };
}

/** A listening Gatehouse server, possibly still starting (see {@link startServer}). */
export interface RunningServer {
  /** The server's logger (the same before and after start-up). */
  readonly log: FastifyBaseLogger;
  /** Base URL it listens on, e.g. `http://127.0.0.1:8000`. */
  readonly url: string;
  /**
   * Base URL of the metrics listener (scrape `/metrics` there), undefined without `METRICS_PORT`.
   * It listens from before the core starts until after the core has closed, so a server waiting
   * for its database, or draining, is still scraped (`gatehouse_server_state` says which).
   */
  readonly metricsUrl: string | undefined;
  /**
   * Resolves with the full application once the core has started (migrations ran, signing keys
   * and the revocation list loaded), or with `undefined` when closed before that. Rejects only on
   * a programming or configuration error (a database that refuses `DATABASE_URL`: no such
   * database, credentials, TLS), never because a dependency is down (that is retried).
   */
  readonly ready: Promise<FastifyInstance | undefined>;
  /**
   * Shuts down gracefully: stops accepting connections, closes idle keep-alive sockets and event
   * streams at once, lets in-flight requests finish for up to `shutdownGracePeriodMs` (then
   * closes what is left), and closes the core. Safe to call more than once.
   */
  close(): Promise<void>;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * Listens at once and starts the core in the background, for `gatehouse serve`. Until the core
 * is up, `/healthz` answers 200 (the process is alive, do not restart it), `/readyz` 503 and every
 * other route 503 problem+json with `Retry-After`: a fresh process never accepts a token before it
 * can check revocations. Failed attempts (typically the database being down) are logged once each
 * and retried with capped exponential backoff, so a database outage at start-up costs no restart
 * loop and the server is ready as soon as the database is.
 *
 * {@link buildServer} keeps the awaited behaviour (ready or throw) for tests and embedders.
 */
export async function startServer(
  config: ReferenceServerConfig,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const initialDelay = options.initialRetryDelayMs ?? 250;
  const maxDelay = options.maxRetryDelayMs ?? 10_000;
  const timeouts = requestTimeouts(options.requestTimeoutMs);
  const sendTimeout = options.sendTimeoutMs ?? 60_000;
  if (!Number.isInteger(sendTimeout) || sendTimeout < 1) {
    throw new Error(`startServer: sendTimeoutMs must be a positive integer of ms, got ${sendTimeout}`);
  }
  // Checked before listening (createGatehouse checks them again): the connection budget below
  // reads the apps' settings, and a misconfiguration must fail here, not after the port is taken.
  assertValidConfig(config, [...new Set([...REFERENCE_APP_SETTINGS, ...(options.settings ?? [])])]);
  assertConnectionBudget(config);
  let current: Handler | undefined;
  let retryAfterSeconds = 1;
  const shell = Fastify({
    // This Fastify owns the listening socket, so its logger and client-error handler are the ones
    // that see raw requests: the same secret-free options as buildServer's (see log-options.ts).
    logger: options.logger ?? createLoggerOptions(config.logLevel, options.logStream),
    clientErrorHandler: handleClientError,
    // Its routes answer as they do while starting (503 problem+json but for /healthz) while it
    // closes too, counted; Fastify's own closing 503 was bare JSON and skipped every hook.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // One HTTP server for the whole life of the process: the start-up routes below answer until
    // the full application is ready, then every request goes to it.
    serverFactory: (starting) => {
      const server = createServer(
        { ...HTTP_SERVER_OPTIONS, connectionsCheckingInterval: timeouts.connectionsCheckingInterval },
        (request, response) => (current ?? starting)(request, response),
      );
      // An `Expect` other than 100-continue: 417 problem+json rather than Node's bare 417.
      server.on('checkExpectation', refuseExpectation);
      // Fastify's own default (Node's is 5 s): longer than the 60 s idle timeout of common load
      // balancers, so they never reuse a connection the server has just closed.
      server.keepAliveTimeout = 72_000;
      server.requestTimeout = timeouts.requestTimeout;
      server.headersTimeout = timeouts.headersTimeout;
      // Node's default is 0 (none) since Node 13: a client that stops reading an answer bigger than
      // the kernel's socket buffers held its descriptor and the answer's state for ever (red-team
      // G5). Socket inactivity: any byte the peer accepts re-arms it, so a slow but reading client is
      // never cut off; Node's own handler destroys the socket (nobody listens for 'timeout'). Event
      // streams write heartbeats more often (Dicery raises it for a stream whose heartbeat is slower).
      server.timeout = sendTimeout;
      // Node's default is no limit: every accepted connection costs a descriptor and its buffers
      // until a timeout ends it, so a flood of connections could exhaust descriptors or memory
      // (OWASP Denial of Service Cheat Sheet, "limit the number of connections"). Beyond it Node
      // closes the new socket at once, before any HTTP, so the connections already open keep
      // their service; event streams and exports are capped well below it (assertConnectionBudget).
      server.maxConnections = config.maxConnections;
      // One network must not hold them all: idle keep-alive sockets cost a client nothing, and
      // Node's cap is global. Behind a proxy every connection is the proxy's, so it limits its own
      // clients (and TRUST_PROXY tells us it is there).
      // `shell` is read only when a connection is refused, long after this factory returned.
      if (config.trustProxy === false) {
        limitConnectionsPerNetwork(
          server,
          config.maxConnectionsPerNetwork,
          config.maxConnections,
          () => shell.log,
        );
      }
      return server;
    },
  });
  shell.get('/healthz', async () => ({ status: 'ok' }));
  shell.get('/readyz', async (_request, reply) =>
    reply.code(503).send({
      status: 'starting',
      database: 'down',
      redis: config.redisUrl === undefined ? 'disabled' : 'down',
    }),
  );
  shell.setNotFoundHandler((_request, reply) =>
    sendProblem(
      reply,
      new GatehouseError('SERVICE_UNAVAILABLE', 'Gatehouse is starting: waiting for its database.', {
        retryAfterSeconds,
      }),
    ),
  );
  // Made before the public port listens: its hook must be added before (Fastify takes none after),
  // and every request the shell answers is then counted, the first ones included.
  const metrics =
    config.metricsPort === undefined
      ? undefined
      : await createMetrics({
          log: () => shell.log,
          ...(options.droppedLogLines === undefined ? {} : { droppedLogLines: options.droppedLogLines }),
        });
  metrics?.countRequests(shell);
  for (const notice of options.notices ?? []) shell.log[notice.level](notice.message);
  await shell.listen({ host: config.host, port: config.port });
  // After the public port: its failure is the one to report when both fail.
  if (metrics !== undefined && config.metricsPort !== undefined) {
    try {
      await metrics.listen({
        host: config.metricsHost,
        port: config.metricsPort,
        allowedHosts: config.metricsAllowedHosts,
      });
    } catch (error) {
      await shell.close();
      throw new MetricsListenError(error);
    }
  }
  const address = shell.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const shownHost = config.host.includes(':') ? `[${config.host}]` : config.host;

  const abort = new AbortController();
  let core: Gatehouse | undefined;
  const onConnectionError = (error: Error) =>
    shell.log.warn({ err: error }, 'database connection lost; the pool reconnects on demand');

  const startCore = async (): Promise<Gatehouse | undefined> => {
    for (let attempt = 1; !abort.signal.aborted; attempt += 1) {
      try {
        return await createGatehouse(config, {
          onWarning: (message, detail = {}) => shell.log.warn(detail, message),
          ...options,
          // The reference server's apps need their tables (buildServer gets this core ready-made).
          migrations: { ...REFERENCE_APP_MIGRATIONS, ...options.migrations },
          scopes: { ...REFERENCE_APP_SCOPES, ...options.scopes },
          settings: [...new Set([...REFERENCE_APP_SETTINGS, ...(options.settings ?? [])])],
          onConnectionError,
        });
      } catch (error) {
        if (abort.signal.aborted) return undefined;
        // A setting checked only here (MAIL_TEMPLATES_DIR names no folder, an app's setting out of
        // its bounds) will be as wrong on every retry: stop with its line, as a bad setting read
        // before listening does. It was retried for ever, the server never ready and never gone.
        if (error instanceof ConfigError) throw error;
        // Signing keys no SECRET_KEY here opens, or none left that may sign: as wrong on every
        // retry, so the start-up stops with the key error's own line (red-team 2026-12-05 R3: it
        // was retried for ever, the server never ready and never gone).
        if (error instanceof SigningKeyError && FATAL_KEY_ERRORS.has(error.code))
          throw new ConfigError([error.message]);
        // A database that answered and turned DATABASE_URL down (no such database, credentials,
        // TLS that cannot work) will do so on every retry: stop, as the other commands do (exit 78
        // from `gatehouse serve`). It was retried for ever, the server never ready. A database that
        // is down or still starting is waited for, below.
        if (databaseRefusal(error) !== undefined) throw error;
        // Capped exponential backoff: quick recovery from a blip, no hammering of a database
        // that is down for long (AWS Architecture Blog, "Exponential Backoff And Jitter").
        metrics?.countFailedStart();
        const delay = Math.min(maxDelay, initialDelay * 2 ** (attempt - 1));
        retryAfterSeconds = Math.max(1, Math.ceil(delay / 1000));
        shell.log.warn(
          { attempt, retryInMs: delay, reason: describe(error) },
          'start-up attempt failed; retrying',
        );
        await pause(delay, abort.signal);
      }
    }
    return undefined;
  };

  const ready = (async (): Promise<FastifyInstance | undefined> => {
    core = await startCore();
    if (core === undefined || abort.signal.aborted) return undefined;
    const app = await buildServer(config, {
      ...options,
      gatehouse: core,
      loggerInstance: shell.log,
      // The application never listens itself: its handler is plugged into the shell's server.
      serverFactory: () => createServer(),
      ...(metrics === undefined ? {} : { metrics }),
    });
    await app.ready();
    // Before `current` is set: the pause falls inside start-up, never on a ready server's requests.
    if (options.compactHeapWhenReady === true) {
      const compacted = compactHeap();
      if (compacted.ok) {
        shell.log.debug(
          {
            heapBeforeMiB: mebibytes(compacted.heapBeforeBytes),
            heapAfterMiB: mebibytes(compacted.heapAfterBytes),
            cpuMs: Math.round(compacted.cpuMs),
          },
          'compacted the start-up heap',
        );
      } else {
        shell.log.info(
          { reason: compacted.reason },
          'could not compact the start-up heap; V8 releases it later',
        );
      }
    }
    current = app.routing;
    metrics?.setState('ready');
    // Said once, by the server only (not by one-shot CLI commands): mail does not leave the machine.
    if (config.smtpUrl === undefined) {
      shell.log.warn(
        `no SMTP_URL: mail is written to ${outboxDirectory(config.dataDir)} (mode 0600), not sent`,
      );
    } else {
      // Asked once in the background, never holding start-up: a relay that is down, refuses the
      // credentials or offers no STARTTLS is said now, not at the first password reset.
      gatehouseCore(core)
        .mailer.checkTransport()
        .then(
          () =>
            shell.log.info(
              'SMTP relay checked: it answered (with STARTTLS when required, and the credentials when the URL has any)',
            ),
          (error: unknown) => {
            if (abort.signal.aborted) return; // closed while it was asking
            shell.log.error(
              { error: error instanceof Error ? error.message : String(error) },
              'SMTP relay check failed: mail will be retried, and dropped if it keeps failing',
            );
          },
        );
    }
    // PUBLIC_URL first: it is the address to open (a WebAuthn relying-party id cannot be an IP).
    shell.log.info(
      `Gatehouse is ready: ${config.publicUrl}/ (API docs at /docs; listening on http://${shownHost}:${port})`,
    );
    return app;
  })();
  // Observed by close(); the caller observes it too, so it is never an unhandled rejection.
  ready.catch(() => {});

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      abort.abort();
      metrics?.setState('draining');
      const server = shell.server;
      // Idle keep-alive sockets would hold server.close() open until their clients hang up; a
      // socket whose request just finished becomes idle, so sweep until everything is closed.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const force = setTimeout(() => server.closeAllConnections(), config.shutdownGracePeriodMs);
      try {
        const app = await ready.catch(() => undefined);
        // Ends event streams (preClose) and answers new requests on open sockets with 503 and
        // `Connection: close`; requests already running carry on.
        await app?.close();
        // Stops accepting and waits for the running requests to finish.
        await shell.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(force);
        try {
          // Last, so in-flight requests still had their database and Redis connections.
          metrics?.coreClosing();
          await core?.close();
        } finally {
          // After the core: the drain and the core's close are what an operator watches a shutdown by.
          await metrics?.close();
        }
      }
    })();
    return closing;
  };

  return { log: shell.log, url: `http://${shownHost}:${port}`, metricsUrl: metrics?.url, ready, close };
}

/** Key errors that no retry can mend: the operator's setting or action is needed. */
const FATAL_KEY_ERRORS: ReadonlySet<SigningKeyErrorCode> = new Set(['SIGNING_KEY_SEALED', 'NO_SIGNING_KEY']);

/** At most one warning per this many ms about refused connections (the rest are counted in it). */
const REFUSAL_WARNING_INTERVAL_MS = 60_000;

/**
 * Closes a connection as soon as it is accepted when its client network (`addressBucket(ip, 48)`:
 * an IPv4 address or an IPv6 /48, as the stream caps count one site) already holds `max`. The
 * caps hold a key only while a connection of that network is open, so they are bounded by
 * `MAX_CONNECTIONS`. Counted on `connection`, which Node emits only for a socket within
 * `maxConnections`, and released on the socket's `close`.
 *
 * The refused client gets no HTTP answer: Node's HTTP parser is already attached to the socket, so
 * an answer would have to outlive the request the client is sending, which the parser would then
 * hand to the application; and a refused socket held open for an answer would count against
 * `MAX_CONNECTIONS`, which is what this cap protects. People behind one address (a campus or
 * carrier NAT) cannot act on an answer anyway; the operator can, so the operator gets a warning
 * naming the setting and the fix, at most one a minute (a refusal flood cannot flood the log:
 * two numbers of state), with how many were refused since the last one.
 *
 * The per-network cap alone left `MAX_CONNECTIONS / MAX_CONNECTIONS_PER_NETWORK` networks (17 IPv4
 * addresses at the defaults) able to hold every connection with idle keep-alive sockets, about
 * 115 tiny requests a second in all, and every other client's connection closed unanswered
 * (red-team 2026-12l N3). So once the open connections come within {@link connectionHeadroom} of
 * `MAX_CONNECTIONS`, a connection from any network but the one holding the most closes one of that
 * network's sockets that has no request in flight (an idle keep-alive socket, or one still sending
 * its first request): closing an idle connection is every HTTP/1.1 server's right (RFC 9112 §9.6),
 * and its client opens a new one when it needs it. Nothing changes while the server has room, nor
 * for the network that holds the most.
 */
function limitConnectionsPerNetwork(
  server: Server,
  max: number,
  maxConnections: number,
  log: () => FastifyBaseLogger,
): void {
  const open = createConcurrencyCaps();
  let lastWarning = Number.NEGATIVE_INFINITY;
  let refusedSinceWarning = 0;
  // Sockets open per network (bounded by MAX_CONNECTIONS), and those with a request in flight.
  const sockets = new Map<string, Set<Socket>>();
  const busy = new WeakSet<Socket>();
  let total = 0;
  const pressureAt = maxConnections - connectionHeadroom(maxConnections);
  // One shared listener, no closure per request: `this` is the response.
  function requestDone(this: ServerResponse) {
    busy.delete(this.req.socket);
  }
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    busy.add(request.socket);
    response.on('close', requestDone);
  });
  /** Closes one socket without a request in flight of the network holding the most but `network`. */
  const makeRoom = (network: string) => {
    let largest: Set<Socket> | undefined;
    let largestNetwork = network;
    for (const [candidate, held] of sockets) {
      if (largest === undefined || held.size > largest.size) {
        largest = held;
        largestNetwork = candidate;
      }
    }
    if (largest === undefined || largestNetwork === network) return;
    for (const socket of largest) {
      if (!busy.has(socket)) {
        socket.destroy();
        return;
      }
    }
  };
  server.on('connection', (socket: Socket) => {
    const network = addressBucket(socket.remoteAddress ?? '', 48);
    const slot = open.tryAcquire([{ key: network, max }]);
    if (!slot.ok) {
      socket.destroy();
      refusedSinceWarning += 1;
      // Monotonic: a wall clock stepped back must not silence the warning for the step.
      const now = performance.now();
      if (now - lastWarning >= REFUSAL_WARNING_INTERVAL_MS) {
        log().warn(
          { code: 'TOO_MANY_CONNECTIONS_FROM_NETWORK', network, max, refused: refusedSinceWarning },
          `MAX_CONNECTIONS_PER_NETWORK (${max}) reached: new connections from ${network} are closed unanswered ` +
            `(${refusedSinceWarning} since the last warning). If many people share that address (a campus or ` +
            'carrier-grade NAT), raise MAX_CONNECTIONS_PER_NETWORK, or put a reverse proxy in front that limits ' +
            'its own clients and set TRUST_PROXY.',
        );
        lastWarning = now;
        refusedSinceWarning = 0;
      }
      return;
    }
    // Only for a connection its own network's cap allowed: refused ones must not close others'.
    if (total >= pressureAt) makeRoom(network);
    total += 1;
    let held = sockets.get(network);
    if (held === undefined) {
      held = new Set();
      sockets.set(network, held);
    }
    held.add(socket);
    socket.once('close', () => {
      slot.release();
      total -= 1;
      held.delete(socket);
      if (held.size === 0 && sockets.get(network) === held) sockets.delete(network);
    });
  });
}

/**
 * Connections kept for networks other than the one holding the most (see
 * `limitConnectionsPerNetwork`): a sixty-fourth of `MAX_CONNECTIONS`, at least 16.
 */
function connectionHeadroom(maxConnections: number): number {
  return Math.max(16, Math.ceil(maxConnections / 64));
}

/** Fewest connections that must stay free of held-open responses: a tenth, and at least 64. */
function connectionReserve(maxConnections: number): number {
  return Math.max(64, Math.ceil(maxConnections / 10));
}

/**
 * Refuses a configuration whose held-open responses (event streams, exports) could take every
 * connection: each holds one for as long as its client likes, so without this reserve a full
 * stream cap would leave nothing for sign-ins, token refreshes and health checks. Idle streams
 * from one network are also capped far lower (`MAX_STREAMS_PER_IP`, 4× per IPv6 /48).
 */
function assertConnectionBudget(config: ReferenceServerConfig): void {
  const dicery = pickAppSettings(config, dicerySettings);
  const held = dicery.maxStreamsTotal + dicery.maxExportsTotal;
  const reserve = connectionReserve(config.maxConnections);
  if (held > config.maxConnections - reserve) {
    let enough = held + 64;
    while (held > enough - connectionReserve(enough)) enough += 1;
    throw new ConfigError([
      `MAX_CONNECTIONS (maxConnections) is ${config.maxConnections}, but MAX_STREAMS_TOTAL (${dicery.maxStreamsTotal}) ` +
        `plus MAX_EXPORTS_TOTAL (${dicery.maxExportsTotal}) may hold ${held} of them open, leaving fewer than ` +
        `${reserve} for ordinary requests: raise MAX_CONNECTIONS to at least ${enough} ` +
        'or lower the stream and export caps',
    ]);
  }
}

/** One line for a start-up failure: the message and the causes behind it. */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current instanceof Error && parts.length < 5) {
    parts.push(current.message || current.name);
    current = current.cause;
  }
  return parts.length > 0 ? parts.join(': ') : String(error);
}

/** Bytes in MiB, one decimal, for log lines. */
function mebibytes(bytes: number): number {
  return Math.round(bytes / 104_857.6) / 10;
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

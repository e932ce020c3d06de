import { createRequire } from 'node:module';
import type { AbstractConnector, Redis, RedisOptions } from 'ioredis';
import { type Scheduler, systemScheduler } from '../lib/scheduler.js';
import { withTimeout } from '../lib/with-timeout.js';
import { sharedLookupConnector } from './redis-connector.js';
import { parseRedisUrl } from './redis-url.js';

/** Whether Redis can be used right now, as readiness reports it. */
export type RedisState = 'up' | 'down' | 'disabled';

/** A warning from the core, for the embedding server's logger (pino's `warn(obj, msg)` fits). */
export type CoreWarn = (message: string, detail?: Record<string, unknown>) => void;

/** How Gatehouse talks to Redis; every outside call is bounded by one of these. */
export interface RedisSettings {
  /** `redis://…`, `rediss://…`, or a Unix socket: `unix:///path/to/redis.sock` (see {@link parseRedisUrl}). */
  url: string;
  /** A command (INCR, PUBLISH, PING…) that has no answer after this many ms fails. @default 2000 */
  commandTimeoutMs: number;
  /** A connection attempt that is not established after this many ms is abandoned and retried. @default 3000 */
  connectTimeoutMs: number;
  /** Reconnect attempts back off exponentially up to this many ms apart, then retry forever. @default 2000 */
  maxReconnectDelayMs: number;
  /**
   * Where the once-a-second probe of a Redis marked down runs (`createGatehouse`'s `scheduler`, so
   * tests drive it with `createTestClock()`). @default Node's timers, unref'd
   */
  scheduler?: Scheduler;
}

/** Defaults of the timing fields of {@link RedisSettings}. */
export const defaultRedisTimings = {
  commandTimeoutMs: 2000,
  connectTimeoutMs: 3000,
  maxReconnectDelayMs: 2000,
} as const;

/**
 * The two Redis connections of one instance and what it knows about their health.
 *
 * Redis is an accelerator, never a dependency a request waits for: callers ask {@link usable}
 * before each use and fall back to local state while it says no, and report a failed command with
 * {@link markFailed}. That keeps a frozen Redis (connection open, no answers) from costing every
 * request a command timeout: the first failures trip the flag, and a background PING clears it.
 */
export interface RedisConnections {
  /** Commands and PUBLISH. Fails fast while disconnected (no offline queue). */
  readonly command: Redis;
  /** SUBSCRIBE-mode connection shared by every channel of this instance. */
  readonly subscriber: Redis;
  /** True when commands are expected to succeed: connected, and no recent failure. */
  usable(): boolean;
  /** Reports a failed or timed-out command; Redis counts as down until a probe answers. */
  markFailed(error: unknown): void;
  /** `up` or `down`, for readiness and metrics. */
  state(): 'up' | 'down';
  /**
   * Asks Redis itself (PING) within `timeoutMs`, for readiness: {@link state} alone cannot see a
   * freeze that no request has run into yet. A missing or late answer trips {@link markFailed}.
   */
  check(timeoutMs: number): Promise<'up' | 'down'>;
  /**
   * Registers a channel whose subscription counts toward {@link state}: Redis is `up` only once
   * every channel is subscribed again after a reconnect. Returns the channel's side of it.
   */
  trackChannel(name: string): ChannelTracking;
  /**
   * Resolves when the subscriber's first connection attempt has failed, or after the connect
   * timeout. Start-up waits for its channels' SUBSCRIBE or this, whichever is first: a healthy
   * Redis loses no early message, and a missing one delays start-up by one refused connect at most.
   */
  firstAttemptFailed(): Promise<void>;
  /** Disconnects both connections and stops probing. */
  close(): Promise<void>;
  /** Records one message from another instance, `lagMs` after it was published (metrics). */
  recordDelivery(lagMs: number): void;
  /** Counters since start, for metrics: reconnections and cross-instance message lag. */
  stats(): RedisStats;
}

/** Monotonic counters of {@link RedisConnections}; each is a plain number (bounded state). */
export interface RedisStats {
  /** `ready` events after the first, on either connection. */
  reconnects: number;
  /** Messages received from other instances. */
  messages: number;
  /** Sum of those messages' publish-to-receipt delays, in seconds (clock skew clamped to 0). */
  lagSecondsTotal: number;
}

/** Reports through Node's warning channel, for when the embedder gave no logger. */
export const warnByProcess: CoreWarn = (message, detail) => {
  process.emitWarning(message, { code: 'GATEHOUSE_REDIS', detail: JSON.stringify(detail ?? {}) });
};

/** A channel's report to its connections (see {@link RedisConnections.trackChannel}). */
export interface ChannelTracking {
  /** SUBSCRIBE succeeded on the current subscriber connection. */
  subscribed(): void;
  /** The channel closed; it no longer counts. */
  untrack(): void;
}

const require = createRequire(import.meta.url);

/**
 * Loads ioredis on first use: an instance without `REDIS_URL` never pays for its modules
 * (issue 10, footprint). A synchronous require (ioredis is CommonJS) keeps this factory synchronous.
 */
function loadRedis(): { Redis: typeof Redis; AbstractConnector: typeof AbstractConnector } {
  return require('ioredis') as { Redis: typeof Redis; AbstractConnector: typeof AbstractConnector };
}

/** How often a tripped connection is probed (with a write: see the probe). */
export const PROBE_INTERVAL_MS = 1000;

/**
 * How often the subscriber connection is asked for a PING (allowed in subscribe mode). It only
 * ever receives, so a connection a NAT or load balancer dropped without a reset (AWS NLB after
 * ≈ 350 s idle, Azure after ≈ 4 min) looked open and `ready` until TCP keepalive gave up, ≈ 2 h
 * later with the OS defaults: meanwhile every other instance's `user_changed`, revocation and room
 * event was lost here, and `/readyz` said Redis was up (operator red-team 2026-12l S2). Two PINGs
 * in a row unanswered within `REDIS_COMMAND_TIMEOUT` reconnect it, which re-subscribes and resyncs:
 * one miss may be this process's own event loop, stalled past the timeout before it read the PONG
 * already waiting (a review showed a healthy subscriber reconnected so).
 */
export const SUBSCRIBER_PING_INTERVAL_MS = 5_000;

/** TCP keepalive's first probe on both connections (ioredis `keepAlive`; the OS default is 2 h). */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/** The key the probe writes: one per Redis, whatever the number of instances. */
const PROBE_KEY = 'gatehouse:probe';

/** How long the probe's key lives: a few probes, so it never outlives an outage by much. */
const PROBE_KEY_TTL_MS = 10_000;

/** The probe's write: SET with an expiry, run as a script (see the probe). */
const PROBE_SCRIPT = "return redis.call('set', KEYS[1], '1', 'PX', ARGV[1])";

/**
 * Most commands awaiting an answer on the command connection before Redis counts as unusable.
 * A healthy Redis answers in well under a millisecond, so the queue is short; a frozen one (socket
 * open, no answers) keeps every command written to it queued after its timeout, so without a cap
 * a burst within the first `REDIS_COMMAND_TIMEOUT` could queue as many as callers send.
 */
export const MAX_PENDING_COMMANDS = 256;

/**
 * Opens the command and subscriber connections in the background. Start-up never fails nor waits
 * because Redis is down: ioredis keeps reconnecting with capped backoff, and every `error` event
 * has a listener (without one, Node would throw it and exit the process).
 */
export function createRedisConnections(settings: RedisSettings, warn: CoreWarn): RedisConnections {
  const options: RedisOptions = {
    connectTimeout: settings.connectTimeoutMs,
    commandTimeout: settings.commandTimeoutMs,
    // No offline queue and no replays: a command issued while Redis is away fails at once and the
    // caller falls back, instead of piling up in memory and firing late (ioredis' defaults).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    keepAlive: KEEPALIVE_INITIAL_DELAY_MS,
    // Channels re-subscribe themselves on every `ready` (see redis-channel.ts), which also covers a
    // first SUBSCRIBE that failed; ioredis' own resubscription only replays successful ones.
    autoResubscribe: false,
    // Never give up (null would stop reconnecting for good): exponential backoff, capped.
    retryStrategy: (attempt: number) =>
      Math.min(100 * 2 ** Math.min(attempt, 10), settings.maxReconnectDelayMs),
  };
  const { Redis: RedisClient, AbstractConnector: BaseConnector } = loadRedis();
  const target = parseRedisUrl(settings.url);
  // The settings check refuses a bad URL at start-up; this is for callers that skip it.
  if (!target.ok) throw new TypeError(`Redis URL ${target.problem}`);
  // A host name is resolved through the process's shared look-up: a stalled resolver then holds
  // one look-up for both connections and all their reconnects (see shared-lookup.ts).
  const Connector = sharedLookupConnector(BaseConnector);
  const open = () => {
    if (target.target.kind === 'tcp') return new RedisClient(target.target.url, { ...options, Connector });
    const { kind: _kind, ...socket } = target.target;
    return new RedisClient({ ...options, ...socket });
  };
  const command = open();
  const subscriber = open();
  let failed = false;
  let closed = false;
  let probing = false;
  let lastError = '';

  const report = (role: string) => (error: Error) => {
    // One line per distinct error, not one per reconnect attempt: an outage must not flood logs.
    if (error.message === lastError) return;
    lastError = error.message;
    warn(`Redis ${role} connection error; using local state until it is back`, { error: error.message });
  };
  command.on('error', report('command'));
  subscriber.on('error', report('subscriber'));
  // name → subscribed on the current subscriber connection
  const channels = new Map<string, boolean>();
  subscriber.on('close', () => {
    for (const name of channels.keys()) channels.set(name, false);
  });
  const stats: RedisStats = { reconnects: 0, messages: 0, lagSecondsTotal: 0 };
  for (const connection of [command, subscriber]) {
    let connected = false;
    connection.on('ready', () => {
      if (connected) stats.reconnects += 1;
      connected = true;
    });
  }
  command.on('ready', () => {
    if (failed || lastError !== '') warn('Redis is back');
    failed = false;
    lastError = '';
  });
  // Every key Gatehouse writes expires, but how many exist at once depends on how many clients
  // (addresses, accounts, devices) are counted within a window: Redis's own `maxmemory` is the
  // hard cap on that state, and with a `volatile-*` or `allkeys-*` policy Redis evicts counters
  // (which only loosens a limit) instead of refusing writes. Say so once when it is not set.
  // Managed Redis services often forbid CONFIG: then there is nothing to check.
  command.once('ready', () => {
    command.config('GET', 'maxmemory').then(
      (reply) => {
        const values = Array.isArray(reply) ? reply : [];
        if (values[1] === '0') {
          warn(
            'Redis has no maxmemory: rate-limit counters are bounded only by their expiry. Set ' +
              'maxmemory with maxmemory-policy volatile-ttl (or allkeys-lru) to cap them',
          );
        }
      },
      () => {},
    );
  });

  const probe = (settings.scheduler ?? systemScheduler).setInterval(() => {
    if (!failed || probing || command.status !== 'ready') return;
    probing = true;
    command
      // A write, not PING: a Redis at `maxmemory` under `noeviction` (Redis's default policy)
      // answers PING but refuses every write (OOM), and so does a replica after a failover
      // (READONLY). With PING the counters went back to Redis every second and the next write took
      // them off again: two warnings a second per instance, and limits counted half in Redis, half
      // here. One small key, shared by the instances, that expires by itself.
      // And through a script, as the counters write (counter-store.ts): a Redis whose ACL forbids
      // scripting answered a plain SET, so each probe put the counters back on a Redis that
      // refused every count (review 2026-12-04).
      .eval(PROBE_SCRIPT, 1, PROBE_KEY, PROBE_KEY_TTL_MS)
      .then(
        () => {
          failed = false;
          warn('Redis answers again');
        },
        (error: unknown) => {
          // Redis answered, with a refusal: it is alive, so keep the connection and ask again on
          // the next probe (the refusal was logged when the command that met it failed).
          if (error instanceof Error && error.name === 'ReplyError') return;
          // No answer on a connection that looks open: a frozen server (SIGSTOP, a stuck proxy).
          // Commands written to it stay in ioredis' queue after they time out, so a long freeze
          // would grow it by one PING a second. Reconnect instead: the queue is flushed (its
          // commands fail at once), and a server that stays frozen never gets the new connection
          // past its ready check, so nothing more is written until it answers.
          if (!closed) command.disconnect(true);
        },
      )
      .finally(() => {
        probing = false;
      });
  }, PROBE_INTERVAL_MS);

  let subscriberPinging = false;
  let subscriberMisses = 0;
  const subscriberPing = (settings.scheduler ?? systemScheduler).setInterval(() => {
    if (closed || subscriberPinging || subscriber.status !== 'ready') return;
    subscriberPinging = true;
    subscriber
      .ping()
      .then(
        () => {
          subscriberMisses = 0;
        },
        (error: unknown) => {
          // Redis answered (with a refusal): the connection is alive.
          if (closed || (error instanceof Error && error.name === 'ReplyError')) {
            subscriberMisses = 0;
            return;
          }
          subscriberMisses += 1;
          if (subscriberMisses < 2) return;
          subscriberMisses = 0;
          warn('Redis subscriber connection did not answer PING twice; reconnecting it', {
            error: error instanceof Error ? error.message : String(error),
          });
          subscriber.disconnect(true);
        },
      )
      .finally(() => {
        subscriberPinging = false;
      });
  }, SUBSCRIBER_PING_INTERVAL_MS);

  const first = new Promise<void>((resolve) => {
    // Real time, not the Scheduler: it bounds the first real connection attempt (see withTimeout).
    const timer = setTimeout(resolve, settings.connectTimeoutMs);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    subscriber.once('close', done);
  });

  return {
    command,
    subscriber,
    usable: () =>
      !closed && !failed && command.status === 'ready' && command.commandQueue.length < MAX_PENDING_COMMANDS,
    markFailed(error) {
      if (closed || failed) return;
      failed = true;
      warn('Redis command failed; using local state until Redis answers', {
        error: error instanceof Error ? error.message : String(error),
      });
    },
    async check(timeoutMs) {
      if (this.state() === 'down') return 'down';
      try {
        if ((await withTimeout(command.ping(), timeoutMs, 'timeout')) === 'PONG') return 'up';
        this.markFailed(new Error(`Redis did not answer PING within ${timeoutMs} ms`));
      } catch (error) {
        this.markFailed(error);
      }
      return 'down';
    },
    recordDelivery(lagMs) {
      stats.messages += 1;
      stats.lagSecondsTotal += Math.max(0, lagMs) / 1000;
    },
    stats: () => ({ ...stats }),
    state() {
      // Down when either leg is: without the subscriber, other instances' revocations arrive only
      // through the database reload.
      const up = !closed && !failed && command.status === 'ready' && subscriber.status === 'ready';
      for (const subscribed of channels.values()) if (!subscribed) return 'down';
      return up ? 'up' : 'down';
    },
    trackChannel(name) {
      channels.set(name, false);
      return {
        subscribed: () => {
          if (channels.has(name)) channels.set(name, true);
        },
        untrack: () => {
          channels.delete(name);
        },
      };
    },
    firstAttemptFailed: () => first,
    async close() {
      closed = true;
      probe.cancel();
      subscriberPing.cancel();
      command.disconnect();
      subscriber.disconnect();
    },
  };
}

/**
 * Resolves the `redis` argument of a bus factory: the instance's shared connections, or private
 * ones opened from a URL with default timings (the bus then owns and closes them).
 */
export function resolveConnections(
  redis: RedisConnections | string,
  warn: CoreWarn,
): { connections: RedisConnections; owned: boolean } {
  if (typeof redis !== 'string') return { connections: redis, owned: false };
  return { connections: createRedisConnections({ url: redis, ...defaultRedisTimings }, warn), owned: true };
}

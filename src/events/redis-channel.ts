import { randomUUID } from 'node:crypto';
import type { Static, TSchema } from 'typebox';
import { Check } from 'typebox/schema';
import type { CoreWarn, RedisConnections } from './redis-connections.js';

/**
 * Largest message (in UTF-16 code units) read from a channel. Gatehouse's own messages are a few hundred bytes (a mass
 * revocation a few KiB); anything far bigger is not ours and is dropped before `JSON.parse`.
 */
export const MAX_CHANNEL_MESSAGE_LENGTH = 1024 * 1024;

/** How often dropped messages are reported at most (one line with a count, not one per message). */
const DROP_REPORT_INTERVAL_MS = 10_000;

/** Options of {@link openRedisChannel}. */
export interface RedisChannelOptions<S extends TSchema> {
  /** The instance's connections (the subscriber connection is shared by all its channels). */
  connections: RedisConnections;
  /** Redis channel name, e.g. `gatehouse:events`. */
  name: string;
  /** Every incoming message is checked against this before anything sees it. */
  schema: S;
  /**
   * Receives each valid message published by another instance. It runs inside the Redis client's
   * event handler, so it must not throw; the buses pass their local, handler-isolating delivery.
   */
  deliver(message: Static<S>): void;
  /** Where bad messages and failed publishes are reported. */
  warn: CoreWarn;
  /**
   * Called each time the channel is subscribed again after its connection came back: messages
   * published meanwhile were lost to this instance (pub/sub is at-most-once), so consumers that
   * keep a log (Dicery's event log) refetch from it at once instead of waiting for their next check.
   */
  onResubscribed?: () => void;
}

/** Typed publish/subscribe on one Redis channel. */
export interface RedisChannel<T> {
  /**
   * Sends `message` to the other instances. Never rejects: when Redis is down or the command times
   * out the failure is reported and `false` returned, and the caller's local delivery stands.
   */
  publish(message: T): Promise<boolean>;
  /** Resolves once this channel is subscribed (or at once if that never happens before close). */
  readonly subscribed: Promise<void>;
  /** Stops listening (the shared connections are closed by their owner). */
  close(): void;
}

/**
 * Opens a channel over `connections`: messages travel as `{ from, event }`, `from` being this
 * instance's random id so it skips its own echo (local subscribers were served on publish).
 *
 * Anything may appear on a Redis channel (another tool, an older or newer Gatehouse, an attacker
 * with Redis access), so every message is parsed and schema-checked and a bad one is dropped with a
 * rate-limited warning. A message from Redis must never be able to exit the process.
 *
 * The channel (re-)subscribes on every `ready` of the subscriber connection, so it comes back on
 * its own after Redis restarts. Pub/sub is at-most-once: what was published meanwhile is lost, and
 * the consumers' own recovery covers it (database reload of revocations, an app's event log).
 */
export function openRedisChannel<S extends TSchema>(
  options: RedisChannelOptions<S>,
): RedisChannel<Static<S>> {
  const { connections, name, schema, deliver, warn } = options;
  const instanceId = randomUUID();
  const { subscriber } = connections;
  let closed = false;
  let dropped = 0;
  let lastReport = Number.NEGATIVE_INFINITY;
  let lastPublishFailed = false;

  const drop = (reason: string) => {
    dropped += 1;
    // Monotonic: after a wall clock stepped back, `Date.now() - lastReport` stayed below the
    // interval for the step's length, and no dropped message was reported in all that time.
    const now = performance.now();
    if (now - lastReport < DROP_REPORT_INTERVAL_MS) return;
    lastReport = now;
    warn(`Dropped malformed message(s) on Redis channel ${name}`, { reason, dropped });
    dropped = 0;
  };

  const onMessage = (channel: string, message: string) => {
    if (channel !== name || closed) return;
    if (message.length > MAX_CHANNEL_MESSAGE_LENGTH) return drop('too large');
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return drop('not JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return drop('not an envelope');
    const { from, event, at } = parsed as { from?: unknown; event?: unknown; at?: unknown };
    if (typeof from !== 'string') return drop('not an envelope');
    if (from === instanceId) return;
    if (!Check(schema, event)) return drop('fails the schema');
    // `at` (publish time) is absent from older instances' messages: then no lag is recorded.
    if (typeof at === 'number' && Number.isFinite(at)) connections.recordDelivery(Date.now() - at);
    try {
      deliver(event);
    } catch (error) {
      // deliver isolates handlers itself; this is the last line that keeps the client's emitter alive.
      warn(`Delivering a message from Redis channel ${name} failed`, {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  };

  const tracking = connections.trackChannel(name);
  let resolveSubscribed: () => void = () => {};
  const subscribed = new Promise<void>((resolve) => {
    resolveSubscribed = resolve;
  });
  let everSubscribed = false;
  const subscribe = () => {
    if (closed) return;
    subscriber.subscribe(name).then(
      () => {
        tracking.subscribed();
        resolveSubscribed();
        if (everSubscribed && !closed) {
          try {
            options.onResubscribed?.();
          } catch (error) {
            warn(`Resync after re-subscribing to Redis channel ${name} failed`, {
              error: error instanceof Error ? error.message : String(error),
            });
          }
        }
        everSubscribed = true;
      },
      (error: unknown) => {
        // The connection dropped mid-SUBSCRIBE; the next `ready` retries.
        warn(`Subscribing to Redis channel ${name} failed`, {
          error: error instanceof Error ? error.message : String(error),
        });
      },
    );
  };
  subscriber.on('message', onMessage);
  subscriber.on('ready', subscribe);
  if (subscriber.status === 'ready') subscribe();

  return {
    async publish(message) {
      if (closed || !connections.usable()) return false;
      try {
        await connections.command.publish(
          name,
          JSON.stringify({ from: instanceId, at: Date.now(), event: message }),
        );
        lastPublishFailed = false;
        return true;
      } catch (error) {
        connections.markFailed(error);
        if (!lastPublishFailed) {
          warn(`Publishing on Redis channel ${name} failed; delivered on this instance only`, {
            error: error instanceof Error ? error.message : String(error),
          });
        }
        lastPublishFailed = true;
        return false;
      }
    },
    subscribed,
    close() {
      closed = true;
      tracking.untrack();
      resolveSubscribed();
      subscriber.off('message', onMessage);
      subscriber.off('ready', subscribe);
    },
  };
}

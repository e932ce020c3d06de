import { type Static, Type } from 'typebox';
import { Check } from 'typebox/schema';
import { createMemoryEventBus, type EventBus, type GatehouseEvent } from './event-bus.js';
import { openRedisChannel } from './redis-channel.js';
import {
  type CoreWarn,
  type RedisConnections,
  resolveConnections,
  warnByProcess,
} from './redis-connections.js';

const CHANNEL = 'gatehouse:events';

/** Upper bounds on what a well-formed event can hold (ids are UUIDs; revocations come in batches). */
const MAX_ID_LENGTH = 200;

/** The schema every {@link GatehouseEvent} read from Redis must pass. */
export const gatehouseEventSchema = Type.Union([
  Type.Object({
    type: Type.Literal('sessions_revoked'),
    sessions: Type.Array(
      Type.Object({
        id: Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }),
        expiresAt: Type.Number(),
      }),
    ),
  }),
  Type.Object({
    type: Type.Literal('revocation_cutoff_raised'),
    notBefore: Type.Integer({ minimum: 0 }),
  }),
  Type.Object({
    type: Type.Literal('user_changed'),
    userId: Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }),
  }),
  Type.Object({
    type: Type.Literal('oauth_client_removed'),
    clientId: Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }),
  }),
]);

// Compile-time proof that a schema-checked message is a GatehouseEvent: if the union grows a
// member the schema lacks (or the reverse), this stops compiling.
const asEvent = (message: Static<typeof gatehouseEventSchema>): GatehouseEvent => message;

/** The event types this version knows: read off the schema, so the two cannot drift apart. */
const KNOWN_TYPES: ReadonlySet<string> = new Set<GatehouseEvent['type']>(
  gatehouseEventSchema.anyOf.map((member) => member.properties.type.const),
);

/**
 * What the channel lets through: any event with a type name. A newer instance's new event type
 * (rolling deploy) is then skipped here and logged once, not reported as malformed; a known type's
 * event is checked in full by {@link gatehouseEventSchema} (extra fields ignored).
 */
const eventFrameSchema = Type.Object({ type: Type.String({ minLength: 1, maxLength: 64 }) });

/** Distinct event types whose skipping is logged; later ones are only counted. */
const MAX_NOTED_TYPES = 32;

/** Options of {@link createRedisEventBus}. */
export interface RedisEventBusOptions {
  /** Where bad messages, failed publishes and handler errors are reported. @default process warnings */
  warn?: CoreWarn;
  /**
   * Called after the bus re-subscribed to Redis (not after the first subscription): events
   * published by other instances while it was away are lost (pub/sub is at-most-once), so what
   * they would have evicted must be re-read. Also called when another instance says that events it
   * published did not reach Redis (see {@link PUBLISHES_LOST}): the same loss, seen from its side.
   */
  onResubscribed?: () => void;
}

/**
 * The frame an instance sends once Redis takes its publishes again after one failed: the events it
 * delivered only locally meanwhile (a `user_changed`, an `oauth_client_removed`) never reached the
 * others, whose subscriptions never dropped, so nothing else would tell them (operator red-team
 * 2026-12h F3). Receivers re-read their caches as after a re-subscribe. Not a {@link GatehouseEvent}:
 * it never reaches subscribers; an older instance skips it as an unknown type.
 */
export const PUBLISHES_LOST = 'publishes_lost';

/** Milliseconds between tries of the {@link PUBLISHES_LOST} frame while Redis still refuses it. */
export const PUBLISHES_LOST_RETRY_MS = 1000;

/**
 * An {@link EventBus} over Redis pub/sub. Local subscribers get an event synchronously on
 * publish (the revoking instance must not wait for a round trip); other instances get it from
 * Redis, schema-checked (see {@link openRedisChannel}). When Redis is down the event is still
 * delivered here and `publish` resolves: other instances pick revocations up from the database.
 *
 * @param redis - the instance's shared connections, or a URL to open private ones (closed with
 *   the bus), with default timeouts.
 */
export async function createRedisEventBus(
  redis: RedisConnections | string,
  options: RedisEventBusOptions = {},
): Promise<EventBus> {
  const warn = options.warn ?? warnByProcess;
  const { connections, owned } = resolveConnections(redis, warn);
  const local = createMemoryEventBus({
    onHandlerError: (error, event) =>
      warn(`Event handler threw on ${event.type}`, {
        error: error instanceof Error ? error.message : String(error),
      }),
  });
  // Bounded by MAX_NOTED_TYPES: a flood of invented type names grows neither this nor the log.
  const noted = new Set<string>();
  const note = (key: string, message: string, detail: Record<string, unknown>) => {
    if (noted.has(key) || noted.size >= MAX_NOTED_TYPES) return;
    noted.add(key);
    warn(message, detail);
  };
  const channel = openRedisChannel({
    connections,
    name: CHANNEL,
    schema: eventFrameSchema,
    deliver: (message) => {
      if (message.type === PUBLISHES_LOST) return void options.onResubscribed?.();
      if (Check(gatehouseEventSchema, message)) return void local.publish(asEvent(message));
      if (KNOWN_TYPES.has(message.type)) {
        note(
          `malformed:${message.type}`,
          'Dropped an event from Redis that fails its schema (logged once per type)',
          {
            type: message.type,
          },
        );
      } else {
        note(
          `unknown:${message.type}`,
          'Skipped events of a type this version does not know, from a newer instance? (logged once per type)',
          { type: message.type },
        );
      }
    },
    warn,
    ...(options.onResubscribed === undefined ? {} : { onResubscribed: options.onResubscribed }),
  });
  // One pending announcement at most, retried on a timer (one try in flight at a time) until Redis
  // takes it: a flag and a timer, however many publishes failed meanwhile.
  let lossTimer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const announceLoss = () => {
    if (lossTimer !== undefined || closed) return;
    lossTimer = setTimeout(() => {
      void channel.publish({ type: PUBLISHES_LOST }).then((sent) => {
        lossTimer = undefined;
        if (!sent) announceLoss();
      });
    }, PUBLISHES_LOST_RETRY_MS);
    lossTimer.unref?.();
  };
  // Wait for SUBSCRIBE so no early message is missed, but never past a failed first attempt.
  await Promise.race([channel.subscribed, connections.firstAttemptFailed()]);
  return {
    async publish(event) {
      await local.publish(event);
      if (!(await channel.publish(event))) announceLoss();
    },
    subscribe: (handler) => local.subscribe(handler),
    async close() {
      closed = true;
      if (lossTimer !== undefined) clearTimeout(lossTimer);
      channel.close();
      await local.close();
      if (owned) await connections.close();
    },
  };
}

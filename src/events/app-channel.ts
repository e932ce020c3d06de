import type { Static, TSchema } from 'typebox';
import { openRedisChannel } from './redis-channel.js';
import type { CoreWarn, RedisConnections } from './redis-connections.js';

/** Options of {@link Gatehouse.openChannel}: one app channel. */
export interface AppChannelOptions<S extends TSchema> {
  /**
   * The channel's name: 1-40 lower-case letters, digits or dashes. On Redis it is
   * `gatehouse:<name>`, shared by every instance of the deployment.
   */
  name: string;
  /** Every message from another instance is checked against this before `deliver` sees it. */
  schema: S;
  /**
   * Receives each valid message another instance published. Runs inside the Redis client's event
   * handler: it must not throw (deliver to your local subscribers, isolating their errors).
   */
  deliver(message: Static<S>): void;
  /**
   * Called after the channel came back from a Redis outage: messages published meanwhile were
   * lost to this instance (pub/sub is at-most-once), so consumers that keep a log refetch from it.
   */
  onResync?: () => void;
}

/** Messages to the other instances of the deployment (see {@link Gatehouse.openChannel}). */
export interface AppChannel<T> {
  /**
   * Sends `message` to the other instances (never to this one: deliver locally yourself). Never
   * rejects: without Redis it does nothing and returns false; when Redis is down the failure is
   * reported and false returned.
   */
  publish(message: T): Promise<boolean>;
  /** Stops listening. The connections belong to the core and close with it. */
  close(): void;
}

const CHANNEL_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/**
 * Opens an app channel over the core's Redis connections, or a local no-op one without Redis
 * (a single instance has no one else to tell). Waits for the SUBSCRIBE, but never past a failed
 * first connection attempt, so an app's start-up is never held by Redis.
 */
export async function openAppChannel<S extends TSchema>(
  redis: RedisConnections | undefined,
  warn: CoreWarn,
  options: AppChannelOptions<S>,
): Promise<AppChannel<Static<S>>> {
  if (!CHANNEL_NAME.test(options.name)) {
    throw new TypeError(
      `openChannel: name ${JSON.stringify(options.name)} must be 1-40 lower-case letters, digits or dashes`,
    );
  }
  if (redis === undefined) return { publish: async () => false, close: () => {} };
  const channel = openRedisChannel({
    connections: redis,
    name: `gatehouse:${options.name}`,
    schema: options.schema,
    deliver: options.deliver,
    warn,
    ...(options.onResync === undefined ? {} : { onResubscribed: options.onResync }),
  });
  await Promise.race([channel.subscribed, redis.firstAttemptFailed()]);
  return { publish: (message) => channel.publish(message), close: () => channel.close() };
}

import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { AbstractConnector, RedisOptions, StandaloneConnectionOptions } from 'ioredis';
import { sharedLookup } from '../lib/shared-lookup.js';

type NetStream = ReturnType<typeof connectTcp> | ReturnType<typeof connectTls>;

/**
 * ioredis' connector for a TCP (or TLS) Redis, resolving its host name through
 * {@link sharedLookup}: a resolver that stalls costs one outstanding look-up, not one per
 * reconnect attempt of each connection (fault review 2026-12, third part). ioredis offers no
 * `lookup` option for a plain TCP connection, so this is its standalone connector with that one
 * option added; the rest (the closed check on the next tick, `firstError`) is the same. `Base` is
 * ioredis' `AbstractConnector`, passed in because ioredis is loaded on first use.
 */
export function sharedLookupConnector(
  Base: typeof AbstractConnector,
): NonNullable<RedisOptions['Connector']> {
  return class SharedLookupConnector extends Base {
    readonly #options: StandaloneConnectionOptions;

    // ioredis constructs it with its own parsed options (`new options.Connector(options)`), typed
    // `unknown` in its ConnectorConstructor.
    constructor(options: unknown) {
      const settings = options as StandaloneConnectionOptions;
      super(settings.disconnectTimeout ?? 2000);
      this.#options = settings;
    }

    override connect(): Promise<NetStream> {
      const { host, port, family, tls } = this.#options;
      const address = {
        lookup: sharedLookup,
        // ioredis fills in its defaults (localhost:6379) before constructing the connector.
        port: port ?? 6379,
        ...(host === undefined ? {} : { host }),
        ...(family === undefined ? {} : { family }),
      };
      this.connecting = true;
      return new Promise((resolve, reject) => {
        // As ioredis does: a disconnect() called in the same tick cancels the attempt.
        process.nextTick(() => {
          if (!this.connecting) {
            reject(new Error('Connection is closed.'));
            return;
          }
          let stream: NetStream;
          try {
            stream = tls === undefined ? connectTcp(address) : connectTls({ ...address, ...tls });
          } catch (error) {
            reject(error);
            return;
          }
          this.stream = stream;
          stream.once('error', (error) => {
            this.firstError = error;
          });
          resolve(stream);
        });
      });
    }
  };
}

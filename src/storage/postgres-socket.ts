import { Socket, type SocketConnectOpts } from 'node:net';
import { sharedLookup } from '../lib/shared-lookup.js';

/**
 * The socket node-postgres opens for each pooled connection (its `stream` option), resolving the
 * database's host name through {@link sharedLookup}: while the resolver stalls, every connect
 * attempt of the pool waits on one look-up instead of queueing one more on libuv's thread pool
 * (fault review 2026-12, third part). node-postgres calls `connect(port, host)` over TCP and
 * `connect(path)` for a Unix socket, which needs no look-up.
 */
export class SharedLookupSocket extends Socket {
  override connect(options: SocketConnectOpts, connectionListener?: () => void): this;
  override connect(port: number, host: string, connectionListener?: () => void): this;
  override connect(port: number, connectionListener?: () => void): this;
  override connect(path: string, connectionListener?: () => void): this;
  override connect(
    target: SocketConnectOpts | number | string,
    hostOrListener?: string | (() => void),
    listener?: () => void,
  ): this {
    const onConnect = typeof hostOrListener === 'function' ? hostOrListener : listener;
    if (typeof target === 'string') return super.connect({ path: target }, onConnect);
    const options: SocketConnectOpts =
      typeof target === 'number'
        ? { port: target, ...(typeof hostOrListener === 'string' ? { host: hostOrListener } : {}) }
        : target;
    if ('path' in options) return super.connect(options, onConnect);
    return super.connect({ lookup: sharedLookup, ...options }, onConnect);
  }
}

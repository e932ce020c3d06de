import { connect, createServer, type Socket } from 'node:net';

/** A TCP proxy on 127.0.0.1 in front of one server, that can play a frozen or vanished server. */
export interface FreezableProxy {
  /** The proxy's port: connect here instead of to the server. */
  port: number;
  /** Connections accepted so far (each new connect attempt through the proxy counts). */
  accepted(): number;
  /** Connections open through the proxy now. */
  open(): number;
  /**
   * Stops passing bytes either way, and leaves new connections accepted but unanswered: what a
   * client sees of a server under SIGSTOP or behind a partition (the kernel still completes the
   * TCP handshake).
   */
  freeze(): void;
  /** Passes bytes again, those held meanwhile first. */
  thaw(): void;
  /** Resets every open connection (a server that dropped them), leaving the proxy listening. */
  dropConnections(): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy to `targetPort` on 127.0.0.1. Fault tests use it to freeze their own view of a
 * shared server (the machine's PostgreSQL) without touching the server itself.
 */
export function startFreezableProxy(targetPort: number): Promise<FreezableProxy> {
  let frozen = false;
  let accepted = 0;
  const pairs = new Set<[Socket, Socket]>();
  /** Bytes received while frozen, with where they were going, in arrival order. */
  let held: [Socket, Buffer][] = [];
  const forward = (from: Socket, to: Socket) =>
    from.on('data', (chunk: Buffer) => {
      if (frozen) held.push([to, chunk]);
      else to.write(chunk);
    });
  const server = createServer((client) => {
    accepted += 1;
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({
        port,
        accepted: () => accepted,
        open: () => pairs.size,
        freeze() {
          frozen = true;
        },
        thaw() {
          frozen = false;
          const release = held;
          held = [];
          for (const [to, chunk] of release) if (!to.destroyed) to.write(chunk);
        },
        dropConnections() {
          for (const [client, upstream] of [...pairs]) {
            client.resetAndDestroy();
            upstream.destroy();
          }
        },
        close: () =>
          new Promise<void>((done) => {
            for (const [client, upstream] of [...pairs]) {
              client.destroy();
              upstream.destroy();
            }
            server.close(() => done());
          }),
      });
    });
  });
}

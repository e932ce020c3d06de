import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';

/** One Server-Sent Events message, as parsed by {@link openSse}. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  /** `data:` parsed as JSON. */
  data: Record<string, unknown>;
}

/** A connected (or refused) SSE stream over a real socket. */
export interface SseStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body of a refused (non-200) response, parsed as JSON. */
  problem: Record<string, unknown> | undefined;
  /** Every message received so far, in order. */
  messages: SseMessage[];
  /** Every comment line received so far (without the leading colon and space). */
  comments: string[];
  /** The `retry:` values received. */
  retries: number[];
  /** Resolves with the first message (already received or future) matching `predicate`. */
  next(predicate?: (message: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  /** Resolves with the first comment matching `predicate`. */
  nextComment(predicate?: (comment: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves when the server ends the stream (or the connection drops). */
  ended: Promise<void>;
  /** Closes the connection from the client side. */
  close(): void;
}

interface Waiter {
  check(): boolean;
}

/**
 * Opens `url` as an event stream with node:http (no EventSource, so tests see exactly what the
 * server sends: ids, comments, `retry:` and when the connection ends). `localAddress` (another
 * loopback address, such as 127.0.0.2) makes the stream come from another client address.
 */
export function openSse(
  url: string,
  headers: Record<string, string> = {},
  options: { localAddress?: string } = {},
): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: { accept: 'text/event-stream', ...headers },
      agent: false,
      localAddress: options.localAddress,
    });
    req.on('error', reject);
    req.on('response', (response: IncomingMessage) => {
      const messages: SseMessage[] = [];
      const comments: string[] = [];
      const retries: number[] = [];
      const waiters = new Set<Waiter>();
      let resolveEnded: () => void = () => {};
      const ended = new Promise<void>((done) => {
        resolveEnded = done;
      });
      let isEnded = false;
      const wake = () => {
        for (const waiter of waiters) if (waiter.check()) waiters.delete(waiter);
      };
      const finish = () => {
        if (isEnded) return;
        isEnded = true;
        resolveEnded();
        wake();
      };
      response.on('end', finish);
      response.on('close', finish);
      response.on('error', finish);

      const waitFor = <T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
        new Promise((done, fail) => {
          const timer = setTimeout(() => {
            waiters.delete(waiter);
            fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
          }, timeoutMs);
          const waiter: Waiter = {
            check() {
              const found = find();
              if (found !== undefined) {
                clearTimeout(timer);
                done(found);
                return true;
              }
              if (isEnded) {
                clearTimeout(timer);
                fail(new Error(`stream ended while waiting for ${what}`));
                return true;
              }
              return false;
            },
          };
          if (!waiter.check()) waiters.add(waiter);
        });

      const stream: SseStream = {
        status: response.statusCode ?? 0,
        headers: response.headers,
        problem: undefined,
        messages,
        comments,
        retries,
        next: (predicate = () => true, timeoutMs = 5000) =>
          waitFor(() => messages.find(predicate), 'an event', timeoutMs),
        nextComment: (predicate = () => true, timeoutMs = 5000) =>
          waitFor(() => comments.find(predicate), 'a comment', timeoutMs),
        ended,
        close: () => {
          req.destroy();
          response.destroy();
        },
      };

      response.setEncoding('utf8');
      if (stream.status !== 200) {
        let body = '';
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => {
          stream.problem = body === '' ? undefined : (JSON.parse(body) as Record<string, unknown>);
          resolve(stream);
        });
        return;
      }

      let buffer = '';
      let current: { id?: string; event?: string; data: string[] } = { data: [] };
      response.on('data', (chunk: string) => {
        buffer += chunk;
        for (let newline = buffer.indexOf('\n'); newline !== -1; newline = buffer.indexOf('\n')) {
          const line = buffer.slice(0, newline).replace(/\r$/, '');
          buffer = buffer.slice(newline + 1);
          if (line === '') {
            if (current.data.length > 0) {
              messages.push({
                id: current.id,
                event: current.event ?? 'message',
                data: JSON.parse(current.data.join('\n')) as Record<string, unknown>,
              });
            }
            current = { data: [] };
            continue;
          }
          if (line.startsWith(':')) {
            comments.push(line.slice(1).trim());
            continue;
          }
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') current.id = value;
          else if (field === 'event') current.event = value;
          else if (field === 'data') current.data.push(value);
          else if (field === 'retry') retries.push(Number(value));
        }
        wake();
      });
      resolve(stream);
    });
    req.end();
  });
}

import dns, { type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Agent, buildConnector } from 'undici';
import { isInternalHost } from './external-issuer-schema.js';

/** Why a fetch of an external issuer's document failed (a message for logs; never sent to clients). */
export class ExternalFetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExternalFetchError';
  }
}

/**
 * Which addresses a fetch may connect to. `public`: none that {@link isInternalHost} calls internal,
 * whether the URL names it literally or a DNS name resolves to it; `any`: no restriction (an issuer
 * the operator put on an internal network).
 */
export type AddressScope = 'public' | 'any';

/** Limits of {@link fetchJson}. */
export interface FetchJsonOptions {
  /** Aborts the fetch (connect, headers and body alike): a hanging provider costs at most this. */
  signal: AbortSignal;
  /** Largest body read; a bigger one is abandoned unread, so a provider cannot fill our memory. */
  maxBytes: number;
  /** The addresses the connection may reach. */
  addresses: AddressScope;
}

/** The connection was refused because its address is internal (see {@link guardedLookup}). */
export class InternalAddressError extends Error {
  /** Node's convention for network errors; undici passes it on as the fetch error's `cause`. */
  readonly code = 'ERR_INTERNAL_ADDRESS';

  constructor(host: string, address: string) {
    super(`${host} resolves to ${address}, an internal address`);
    this.name = 'InternalAddressError';
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for `net.connect` that refuses a name when *any* of its addresses is internal (OWASP
 * SSRF Prevention Cheat Sheet: validate the resolved address, not the name). It runs inside the
 * connect, and the socket connects to the address it returns, so nothing can resolve the name
 * differently between the check and the connection (DNS rebinding). All addresses are checked, not
 * only the first: Node tries the others in turn (`autoSelectFamily`), and a name answering a public
 * and an internal address would otherwise reach the internal one when the public one fails.
 * `dns.lookup` is read at each call (not bound at import), so tests can stand in for the resolver.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback: LookupCallback) => {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error !== null) return callback(error, []);
    const internal = addresses.find((entry) => isInternalHost(entry.address));
    if (internal !== undefined) return callback(new InternalAddressError(hostname, internal.address), []);
    if ((options as LookupAllOptions).all === true) return callback(null, addresses);
    const [first] = addresses;
    if (first === undefined)
      return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
};

/**
 * undici's connector, refusing internal addresses: names through {@link guardedLookup}, and IP
 * literals (which `net.connect` does not look up) here, before any socket is opened. Redirects are
 * refused (see {@link fetchJson}), so every connection of a fetch passes through here.
 */
function publicOnlyConnector(connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) => {
    if (isIP(options.hostname.replace(/^\[|\]$/g, '')) !== 0 && isInternalHost(options.hostname)) {
      callback(new InternalAddressError(options.hostname, options.hostname), null);
      return;
    }
    connect(options, callback);
  };
}

interface Fetcher {
  fetch: typeof import('undici').fetch;
  dispatchers: Record<AddressScope, Agent>;
}

let fetcher: Promise<Fetcher> | undefined;

/**
 * undici's `fetch` with one connection pool per {@link AddressScope}. undici is imported on the
 * first fetch, not at start-up: it costs ≈ 20 MiB of memory, and most installations configure no
 * external issuer. Its own `fetch` is used with its own `Agent` (not Node's global `fetch`, whose
 * bundled undici may be another major version than the `Agent` handed to it).
 */
function loadFetcher(): Promise<Fetcher> {
  fetcher ??= import('undici').then(({ Agent, buildConnector, fetch }) => ({
    fetch,
    dispatchers: {
      public: new Agent({ connect: publicOnlyConnector(buildConnector({ lookup: guardedLookup })) }),
      any: new Agent(),
    },
  }));
  return fetcher;
}

/**
 * GETs `url` and parses its JSON body. Redirects are refused (an issuer's metadata names its
 * URLs itself; following a redirect would fetch keys from wherever a compromised or misconfigured
 * host points). With `addresses: 'public'`, a connection to an internal address is refused before
 * it is opened (see {@link guardedLookup}). Throws {@link ExternalFetchError} on a non-200 answer,
 * an oversized or non-JSON body, a network error, a refused address, or when `signal` aborts.
 */
export async function fetchJson(url: string, options: FetchJsonOptions): Promise<unknown> {
  let response: Awaited<ReturnType<Fetcher['fetch']>>;
  try {
    const { fetch, dispatchers } = await loadFetcher();
    response = await fetch(url, {
      dispatcher: dispatchers[options.addresses],
      signal: options.signal,
      redirect: 'error',
      headers: { accept: 'application/json' },
    });
  } catch (error) {
    throw new ExternalFetchError(`GET ${url} failed: ${reasonOf(error)}`, { cause: error });
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => {});
    throw new ExternalFetchError(`GET ${url} answered ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > options.maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw new ExternalFetchError(`GET ${url}: body of ${declared} bytes exceeds ${options.maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  try {
    for (let read = await reader?.read(); read !== undefined && !read.done; read = await reader?.read()) {
      size += read.value.byteLength;
      if (size > options.maxBytes) throw new ExternalFetchError(`body exceeds ${options.maxBytes} bytes`);
      chunks.push(read.value);
    }
  } catch (error) {
    await reader?.cancel().catch(() => {});
    throw new ExternalFetchError(`GET ${url}: reading the body failed: ${reasonOf(error)}`, { cause: error });
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (error) {
    throw new ExternalFetchError(`GET ${url}: the body is not JSON`, { cause: error });
  }
}

function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // undici wraps the socket error ("fetch failed"); the cause says what happened.
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.name === 'TimeoutError' ? 'timed out' : error.message}${cause}`;
}

/** Why a fetch of an external issuer's document failed (a message for logs; never sent to clients). */
export class ExternalFetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExternalFetchError';
  }
}

/** Limits of {@link fetchJson}. */
export interface FetchJsonOptions {
  /** Aborts the fetch (connect, headers and body alike): a hanging provider costs at most this. */
  signal: AbortSignal;
  /** Largest body read; a bigger one is abandoned unread, so a provider cannot fill our memory. */
  maxBytes: number;
}

/**
 * GETs `url` and parses its JSON body. Redirects are refused (an issuer's metadata names its
 * URLs itself; following a redirect would fetch keys from wherever a compromised or misconfigured
 * host points). Throws {@link ExternalFetchError} on a non-200 answer, an oversized or non-JSON
 * body, a network error, or when `signal` aborts.
 */
export async function fetchJson(url: string, options: FetchJsonOptions): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
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

import { createRequire } from 'node:module';
import { GatehouseError } from '../../../index.js';

const requireFromHere = createRequire(import.meta.url);

/** How long a caller is told to wait after a module failed to load (`Retry-After`), seconds. */
const RETRY_AFTER_SECONDS = 5;

/**
 * A CommonJS dependency loaded on its first use instead of at start-up (issue 10, footprint): a
 * process whose requests never need it never pays its memory. The load is synchronous (`require`),
 * so a synchronous caller stays synchronous; the module is kept once loaded.
 *
 * A failed load (a broken install, a file that cannot be read) is not kept: the call throws
 * `SERVICE_UNAVAILABLE` (503 with `Retry-After`, the cause attached for the log) instead of an
 * unexpected error, and the next call tries again.
 *
 * @param specifier - the package to require, resolved from Gatehouse's own `node_modules`
 * @param load - the loader, for tests @default Node's `require`
 */
export function requireOnFirstUse<T>(
  specifier: string,
  load: (specifier: string) => unknown = requireFromHere,
): () => T {
  let loaded: { module: T } | undefined;
  return () => {
    if (loaded !== undefined) return loaded.module;
    try {
      loaded = { module: load(specifier) as T };
    } catch (error) {
      throw new GatehouseError(
        'SERVICE_UNAVAILABLE',
        'The server could not load a module it needs; try again shortly.',
        {
          retryAfterSeconds: RETRY_AFTER_SECONDS,
          cause: error,
        },
      );
    }
    return loaded.module;
  };
}

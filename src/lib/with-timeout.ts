/**
 * Settles with `work`'s result, or resolves to `fallback` once `ms` have passed first. `work` is not
 * cancelled (a query or a Redis command cannot be): its late result or error is swallowed, so a
 * frozen dependency costs the caller `ms` at most and never an unhandled rejection.
 *
 * A real timer on purpose, not the injected `Scheduler`: it bounds real I/O (a frozen socket), and
 * under a test clock that nobody advances the bound would never fire and the caller would hang.
 */
export function withTimeout<T, F>(work: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  return new Promise<T | F>((resolve, reject) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

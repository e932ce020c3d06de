/**
 * How a component follows the store: {@link watch} runs a render function now and again whenever
 * a signal it read changes, until the component's page is left.
 */
import { effect, untracked } from '@preact/signals-core';

/**
 * Runs `render` at once and after every change of the signals it reads, until `until` aborts
 * (the page or lobby was left), so no effect outlives the elements it updates.
 */
export function watch(until: AbortSignal, render: () => void): void {
  if (until.aborted) return;
  const dispose = effect(render);
  until.addEventListener('abort', dispose, { once: true });
}

/**
 * Follows one value of the store: runs `render(value, scope)` now and each time `read()` changes.
 * `scope` aborts before the next run and when `until` aborts, so the components a run mounted
 * (and their own {@link watch}es) end with it. Only `read` is tracked: what `render` reads while
 * building (a component's `peek`s, a child's signals) does not re-run this.
 */
export function watchValue<T>(
  until: AbortSignal,
  read: () => T,
  render: (value: T, scope: AbortSignal) => void,
): void {
  if (until.aborted) return;
  let scope: AbortController | undefined;
  until.addEventListener('abort', () => scope?.abort(), { once: true });
  watch(until, () => {
    const value = read();
    scope?.abort();
    const next = new AbortController();
    scope = next;
    untracked(() => render(value, next.signal));
  });
}

/**
 * How a component follows the store: {@link watch} runs a render function now and again whenever
 * a signal it read changes, until the component's page is left.
 */
import { effect } from '@preact/signals-core';

/**
 * Runs `render` at once and after every change of the signals it reads, until `until` aborts
 * (the page or lobby was left), so no effect outlives the elements it updates.
 */
export function watch(until: AbortSignal, render: () => void): void {
  if (until.aborted) return;
  const dispose = effect(render);
  until.addEventListener('abort', dispose, { once: true });
}

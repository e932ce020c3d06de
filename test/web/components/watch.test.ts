import { signal } from '@preact/signals-core';
import { describe, expect, it } from 'vitest';
import { watch, watchValue } from '../../../web/src/components/watch.js';

describe('watch', () => {
  it('re-runs on a change of what it read, and never after its signal aborted', () => {
    const count = signal(0);
    const seen: number[] = [];
    const until = new AbortController();
    watch(until.signal, () => {
      seen.push(count.value);
    });
    count.value = 1;
    until.abort();
    count.value = 2;
    expect(seen).toEqual([0, 1]);
  });
});

describe('watchValue', () => {
  it('tracks only its value, and ends each run’s scope before the next and at the end', () => {
    const user = signal<string | null>(null);
    const other = signal(0);
    const runs: { value: string | null; scope: AbortSignal }[] = [];
    const until = new AbortController();
    watchValue(
      until.signal,
      () => user.value,
      (value, scope) => {
        // Read while rendering (a child component building itself): not tracked by this watch.
        void other.value;
        runs.push({ value, scope });
      },
    );
    other.value = 1;
    expect(runs).toHaveLength(1);
    user.value = 'hannah';
    expect(runs.map((run) => run.value)).toEqual([null, 'hannah']);
    expect(runs[0]?.scope.aborted).toBe(true);
    expect(runs[1]?.scope.aborted).toBe(false);
    until.abort();
    expect(runs[1]?.scope.aborted).toBe(true);
    user.value = 'ida';
    expect(runs).toHaveLength(2);
  });

  it('does nothing when its signal has already aborted', () => {
    const until = new AbortController();
    until.abort();
    let ran = false;
    watchValue(
      until.signal,
      () => 1,
      () => {
        ran = true;
      },
    );
    expect(ran).toBe(false);
  });
});

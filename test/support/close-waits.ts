import { expect } from 'vitest';

/**
 * Starts `app.close()` while some work of the app is held back, checks the close has not finished
 * 100 ms later (after `meanwhile`, e.g. a stream ending), then lets the work `finish` and awaits
 * the close: the close waits for that work instead of closing the database under it.
 */
export async function expectCloseToWaitFor(
  app: { close(): PromiseLike<unknown> },
  finish: () => void,
  meanwhile?: PromiseLike<unknown>,
): Promise<void> {
  let closed = false;
  const close = Promise.resolve(app.close()).then(() => {
    closed = true;
  });
  await meanwhile;
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(closed).toBe(false);
  finish();
  await close;
}

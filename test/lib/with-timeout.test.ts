import { describe, expect, it } from 'vitest';
import { withTimeout } from '../../src/lib/with-timeout.js';

describe('withTimeout', () => {
  it('passes a result that arrives in time through', async () => {
    expect(await withTimeout(Promise.resolve('done'), 1000, 'late')).toBe('done');
  });

  it('passes a failure that arrives in time through', async () => {
    await expect(withTimeout(Promise.reject(new Error('boom')), 1000, 'late')).rejects.toThrow('boom');
  });

  it('settles with the fallback when the work never settles', { timeout: 2000 }, async () => {
    expect(await withTimeout(new Promise<string>(() => {}), 10, 'late')).toBe('late');
  });

  it('swallows a failure that arrives after the fallback (no unhandled rejection)', async () => {
    let fail: (error: Error) => void = () => {};
    const work = new Promise<string>((_resolve, reject) => {
      fail = reject;
    });
    expect(await withTimeout(work, 10, 'late')).toBe('late');
    fail(new Error('too late'));
    // Vitest fails the run on an unhandled rejection; one more turn lets it surface if it exists.
    await new Promise((resolve) => setImmediate(resolve));
  });
});

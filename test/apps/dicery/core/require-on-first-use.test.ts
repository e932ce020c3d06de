import { describe, expect, it } from 'vitest';
import { requireOnFirstUse } from '../../../../src/apps/dicery/core/require-on-first-use.js';
import { GatehouseError } from '../../../../src/index.js';

describe('requireOnFirstUse', () => {
  it('loads nothing until the first call, then loads once and keeps the module', () => {
    const loads: string[] = [];
    const module = { answer: 42 };
    const get = requireOnFirstUse<typeof module>('some-package', (specifier) => {
      loads.push(specifier);
      return module;
    });
    expect(loads).toEqual([]);
    expect(get()).toBe(module);
    expect(get()).toBe(module);
    expect(loads).toEqual(['some-package']);
  });

  it('a failed load is SERVICE_UNAVAILABLE with Retry-After and its cause, and the next call tries again', () => {
    const broken = new Error('EIO: i/o error, read');
    let fail = true;
    const get = requireOnFirstUse<string>('some-package', () => {
      if (fail) throw broken;
      return 'loaded';
    });
    let thrown: unknown;
    try {
      get();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GatehouseError);
    expect(thrown).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: 5, cause: broken });
    fail = false;
    expect(get()).toBe('loaded');
  });

  it('requires a real package by default (the confusables map player names use)', () => {
    const map = requireOnFirstUse<(text: string) => string>('unhomoglyph')();
    // Cyrillic А and Latin 0 map to their Latin look-alikes.
    expect(map('\u0410lice')).toBe('Alice');
    expect(map('B0b')).toBe('BOb');
  });

  it('a package that is not installed is SERVICE_UNAVAILABLE, not an unexpected error', () => {
    const get = requireOnFirstUse<unknown>('gatehouse-no-such-package');
    expect(get).toThrow(expect.objectContaining({ code: 'SERVICE_UNAVAILABLE' }));
  });
});

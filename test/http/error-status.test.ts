import { describe, expect, it } from 'vitest';
import { createErrorStatusRegistry, processStatusOf } from '../../src/http/error-status.js';

describe('the error status registry', () => {
  it('takes an app’s codes, and the same code again with the same status', () => {
    const registry = createErrorStatusRegistry();
    registry.register({ TEST_ONLY_ROOM_FULL: 409 });
    registry.register({ TEST_ONLY_ROOM_FULL: 409 });
    expect(registry.statusOf('TEST_ONLY_ROOM_FULL')).toBe(409);
    expect(processStatusOf('TEST_ONLY_ROOM_FULL')).toBe(409);
  });

  // The review of red-team 2026-12j E4: CONFLICT, GONE and UNPROCESSABLE_CONTENT became core codes;
  // an app that had registered one of them with the same status must keep starting.
  it('lets an app register a core code with the core’s status, and refuses another status', () => {
    const registry = createErrorStatusRegistry();
    registry.register({ CONFLICT: 409, GONE: 410, UNPROCESSABLE_CONTENT: 422 });
    expect(registry.statusOf('CONFLICT')).toBe(409);
    expect(() => registry.register({ CONFLICT: 400 })).toThrow(/CONFLICT belongs to the core \(status 409\)/);
    expect(() => registry.register({ FORBIDDEN: 401 })).toThrow(/FORBIDDEN belongs to the core/);
  });

  it('refuses bad names and statuses', () => {
    const registry = createErrorStatusRegistry();
    expect(() => registry.register({ lower_case: 400 })).toThrow(/UPPER_SNAKE_CASE/);
    expect(() => registry.register({ TEAPOT: 418.5 })).toThrow(/integer from 400 to 599/);
    expect(() => registry.register({ OK_ISH: 200 })).toThrow(/integer from 400 to 599/);
  });
});

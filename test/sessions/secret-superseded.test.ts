import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import {
  createSecretSupersededCheck,
  SECRET_RECHECK_RETRY_MS,
} from '../../src/sessions/secret-superseded.js';
import { createTestClock } from '../../src/testing.js';

/** A check whose outcomes the test queues: 'ok', 'superseded' (a ConfigError) or 'down'. */
function scripted(outcomes: ('ok' | 'superseded' | 'down')[]) {
  let calls = 0;
  const release: (() => void)[] = [];
  const check = () => {
    calls += 1;
    const outcome = outcomes.shift() ?? 'ok';
    return new Promise<void>((resolve, reject) => {
      release.push(() => {
        if (outcome === 'ok') resolve();
        else if (outcome === 'superseded') reject(new ConfigError(['SECRET_KEY is not the secret…']));
        else reject(new Error('database down'));
      });
    });
  };
  return {
    check,
    calls: () => calls,
    /** Settles the oldest check still waiting. */
    settle: async () => {
      release.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

describe('createSecretSupersededCheck', () => {
  it('marks the secret superseded once, on the ConfigError, and never checks again', async () => {
    const clock = createTestClock();
    const script = scripted(['ok', 'superseded']);
    const events: string[] = [];
    const check = createSecretSupersededCheck({
      check: script.check,
      onSuperseded: () => events.push('superseded'),
      onError: () => events.push('error'),
      scheduler: clock,
    });
    check.run();
    await script.settle();
    expect(check.superseded).toBe(false);
    check.run();
    await script.settle();
    expect(check.superseded).toBe(true);
    check.run();
    expect(script.calls()).toBe(2);
    expect(events).toEqual(['superseded']);
    check.close();
  });

  it('runs once more after a check under way when asked again meanwhile (a second cut-off), not once per ask', async () => {
    const clock = createTestClock();
    const script = scripted(['ok', 'ok']);
    const check = createSecretSupersededCheck({
      check: script.check,
      onSuperseded: () => undefined,
      onError: () => undefined,
      scheduler: clock,
    });
    check.run();
    check.run();
    check.run();
    expect(script.calls()).toBe(1);
    await script.settle();
    expect(script.calls()).toBe(2);
    await script.settle();
    expect(script.calls()).toBe(2);
    check.close();
  });

  it('retries a check the database could not answer, and close stops the retries', async () => {
    const clock = createTestClock();
    const script = scripted(['down', 'down']);
    const errors: unknown[] = [];
    const check = createSecretSupersededCheck({
      check: script.check,
      onSuperseded: () => undefined,
      onError: (error) => errors.push(error),
      scheduler: clock,
    });
    check.run();
    await script.settle();
    expect(errors).toHaveLength(1);
    clock.advance(SECRET_RECHECK_RETRY_MS);
    expect(script.calls()).toBe(2);
    await script.settle();
    check.close();
    clock.advance(SECRET_RECHECK_RETRY_MS * 10);
    expect(script.calls()).toBe(2);
    expect(check.superseded).toBe(false);
  });
});

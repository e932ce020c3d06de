import { describe, expect, it, vi } from 'vitest';
import { type SweepStep, startPeriodicSweep } from '../../src/lib/periodic-sweep.js';
import { createTestClock } from '../../src/testing.js';

const HOUR = 3600_000;

/** A step that records the time of each run, and fails or waits when told. */
function recordingStep(name: string) {
  const runs: number[] = [];
  let failWith: Error | undefined;
  let hold: Promise<void> | undefined;
  const step: SweepStep = {
    name,
    async run(now) {
      runs.push(now);
      if (hold !== undefined) await hold;
      if (failWith !== undefined) throw failWith;
    },
  };
  return {
    step,
    runs,
    fail: (error: Error | undefined) => {
      failWith = error;
    },
    holdUntil: (promise: Promise<void> | undefined) => {
      hold = promise;
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('startPeriodicSweep', () => {
  const start = (steps: SweepStep[]) => {
    const clock = createTestClock(0);
    const warnings: { message: string; detail: Record<string, unknown> }[] = [];
    const sweep = startPeriodicSweep({
      steps,
      scheduler: clock,
      now: clock,
      warn: (message, detail) => warnings.push({ message, detail }),
      intervalMs: HOUR,
      firstPassAfterMs: 60_000,
    });
    return { clock, warnings, sweep };
  };

  it('sweeps a minute after start-up, then hourly (an instance restarted often sweeps too)', async () => {
    const a = recordingStep('a');
    const { clock, sweep } = start([a.step]);
    clock.advance(59_999);
    await settle();
    expect(a.runs).toEqual([]);
    clock.advance(1);
    await settle();
    expect(a.runs).toEqual([60_000]);
    clock.advance(HOUR - 60_000);
    await settle();
    expect(a.runs).toEqual([60_000, HOUR]);
    await sweep.stop();
  });

  it('runs every step when one fails, and says which failed', async () => {
    const a = recordingStep('expired sessions');
    const b = recordingStep('audit retention');
    a.fail(new Error('canceling statement due to statement timeout'));
    const { warnings, sweep } = start([a.step, b.step]);
    await sweep.runPass();
    // Before, one `.catch(() => {})` per step: nothing was ever said, and a step's own parts after
    // the failing statement did not run.
    expect(b.runs).toHaveLength(1);
    expect(warnings).toEqual([
      {
        message: 'sweep step failed; it runs again at the next pass',
        detail: { step: 'expired sessions', error: 'canceling statement due to statement timeout' },
      },
    ]);
    await sweep.stop();
  });

  it('never overlaps passes: one due meanwhile follows, once, with the time it fell due', async () => {
    const a = recordingStep('a');
    const { clock, sweep } = start([a.step]);
    let release = () => {};
    a.holdUntil(new Promise<void>((resolve) => (release = resolve)));
    clock.advance(60_000);
    await settle();
    expect(a.runs).toEqual([60_000]);
    // Three passes fall due while the first waits: one follows it, with the last time.
    clock.advance(3 * HOUR);
    await settle();
    expect(a.runs).toEqual([60_000]);
    a.holdUntil(undefined);
    release();
    await vi.waitFor(() => expect(a.runs).toHaveLength(2));
    await settle();
    expect(a.runs).toEqual([60_000, 3 * HOUR]);
    await sweep.stop();
  });

  it('stop() aborts the pass under way, waits for it, and nothing runs after', async () => {
    const seen: boolean[] = [];
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const first: SweepStep = {
      name: 'first',
      async run(_now, signal) {
        await held;
        seen.push(signal.aborted);
      },
    };
    const second = recordingStep('second');
    const { clock, sweep } = start([first, second.step]);
    const pass = sweep.runPass();
    const stopped = sweep.stop();
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    await settle();
    expect(done).toBe(false);
    release();
    await stopped;
    await pass;
    expect(seen).toEqual([true]);
    expect(second.runs).toEqual([]);
    clock.advance(2 * HOUR);
    await settle();
    expect(second.runs).toEqual([]);
  });
});

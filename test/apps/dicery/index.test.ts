import { describe, expect, it, vi } from 'vitest';
import { buildTestServer, createTestClock } from '../../../src/testing.js';
import { expectCloseToWaitFor } from '../../support/close-waits.js';

describe('the Dicery plugin at close', () => {
  // A pass of the idle-room sweep started just before a shutdown went on into the closed database
  // ("Closed room sweep failed: … closed") while the core closed under it.
  it('waits for an idle-room sweep pass under way, and starts no further step of it', async () => {
    const IDLE_TTL = 3600;
    const clock = createTestClock();
    const app = await buildTestServer({ roomIdleTtl: IDLE_TTL }, { clock, scheduler: clock });
    let finish: () => void = () => {};
    const closing = vi.spyOn(app.dicery.hostTools, 'closeIdleRooms').mockImplementation(
      () =>
        new Promise<number>((resolve) => {
          finish = () => resolve(0);
        }),
    );
    const purging = vi.spyOn(app.dicery.hostTools, 'purgeClosedRooms');
    clock.advance((IDLE_TTL / 4) * 1000);
    expect(closing).toHaveBeenCalledTimes(1);
    await expectCloseToWaitFor(app, () => finish());
    expect(purging).not.toHaveBeenCalled();
  });
});

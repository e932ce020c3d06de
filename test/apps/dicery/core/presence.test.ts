import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createPresence,
  PRESENCE_COALESCE_MS,
  type Presence,
  type PresenceChange,
  type PresenceMessage,
  type SpectatorCountChange,
} from '../../../../src/apps/dicery/core/presence.js';
import { createTestClock, type TestClock } from '../../../../src/testing.js';

const W = PRESENCE_COALESCE_MS;
const ROOM = 'ROOM23';

/** Instances joined by an in-memory channel that delivers at once (Redis's fan-out, minus Redis). */
function createDeployment(heartbeatMs = 3_600_000) {
  const peers: { deliver(message: PresenceMessage): void }[] = [];
  /** Every message published, with its sender's clock at the time. */
  const published: PresenceMessage[] = [];
  const open = async (): Promise<{ presence: Presence; clock: TestClock }> => {
    const clock = createTestClock(0);
    const self = { deliver: (_message: PresenceMessage) => {} };
    peers.push(self);
    const presence = await createPresence({
      openChannel: async (options) => {
        self.deliver = options.deliver;
        return {
          publish: async (message: PresenceMessage) => {
            published.push(message);
            for (const peer of peers) if (peer !== self) peer.deliver(message);
            return true;
          },
          close: () => {},
        };
      },
      scheduler: clock,
      // By default far from the windows under test: only the coalescing is exercised.
      heartbeatMs,
      onWarning: (message) => {
        throw new Error(message);
      },
    });
    return { presence, clock };
  };
  return { open, published };
}

/**
 * What a watcher (the web UI's lobby) knows: the state it started from, with every change applied,
 * and the clock time of every announcement (one handler call per change, several per announcement).
 */
function watch(presence: Presence, clock: TestClock, room = ROOM) {
  const start = presence.online(room);
  const seen = { players: new Set(start.playerIds), host: start.host, spectators: start.spectators };
  const times: number[] = [];
  const changes: (PresenceChange | SpectatorCountChange)[] = [];
  const stop = presence.subscribe(room, (change) => {
    changes.push(change);
    if (times.at(-1) !== clock()) times.push(clock());
    if ('spectators' in change) seen.spectators = change.spectators;
    else if (change.playerId === null) seen.host = change.online;
    else if (change.online) seen.players.add(change.playerId);
    else seen.players.delete(change.playerId);
  });
  const state = () => ({ playerIds: [...seen.players].sort(), host: seen.host, spectators: seen.spectators });
  return { state, times, changes, stop };
}

/** Milliseconds between consecutive announcements. */
const gaps = (times: number[]) => times.slice(1).map((time, n) => time - (times[n] ?? 0));

const sorted = (online: ReturnType<Presence['online']>) => ({
  ...online,
  playerIds: [...online.playerIds].sort(),
});

describe('presence coalescing (red-team 2026-12b G8)', () => {
  it('announces the first change of a quiet room at once, and a burst of churn as one net change at the window’s end', async () => {
    const { open, published } = createDeployment();
    const { presence, clock } = await open();
    const watcher = watch(presence, clock);

    const leave = presence.connect(ROOM, 'pat');
    expect(watcher.changes).toEqual([{ room: ROOM, playerId: 'pat', online: true }]);
    expect(published).toHaveLength(1);

    // 200 spectator streams and Sam's stream open and close inside the window: nothing goes out yet.
    for (let n = 0; n < 200; n++) presence.connectSpectator(ROOM)();
    presence.connect(ROOM, 'sam')();
    const stays = presence.connectSpectator(ROOM);
    leave();
    expect(watcher.changes).toHaveLength(1);
    expect(published).toHaveLength(1);

    clock.advance(W);
    // The net difference only: Pat left, one spectator stayed; Sam came and went unannounced.
    expect(watcher.changes.slice(1)).toEqual([
      { room: ROOM, playerId: 'pat', online: false },
      { room: ROOM, spectators: 1 },
    ]);
    expect(watcher.state()).toEqual(sorted(presence.online(ROOM)));
    // One more message to the other instances, carrying the state as it is now.
    expect(published).toHaveLength(2);
    expect(published[1]?.rooms).toEqual([{ code: ROOM, members: [expect.stringMatching(/^spectator:/)] }]);

    // A window with nothing in it ends the cooldown: the next change goes out at once again.
    clock.advance(W);
    stays();
    expect(watcher.changes.at(-1)).toEqual({ room: ROOM, spectators: 0 });
    expect(published.at(-1)?.rooms).toEqual([{ code: ROOM, members: [] }]);
    presence.close();
  });

  it('sends each watcher and each other instance at most one announcement per window, however fast streams churn', async () => {
    const { open, published } = createDeployment();
    const a = await open();
    const b = await open();
    const onA = watch(a.presence, a.clock);
    const onB = watch(b.presence, b.clock);
    const churns = 2_000;
    const steps = 40;
    for (let step = 0; step < steps; step++) {
      for (let n = 0; n < churns / steps; n++) {
        a.presence.connectSpectator(ROOM)();
        a.presence.connect(ROOM, 'pat')();
      }
      a.clock.advance(W / 4);
      b.clock.advance(W / 4);
    }
    const elapsed = (steps * W) / 4;
    const windows = elapsed / W + 1;
    expect(onA.times.length).toBeLessThanOrEqual(windows);
    for (const gap of gaps(onA.times)) expect(gap).toBeGreaterThanOrEqual(W);
    // B hears from A at most once a window, so it announces at most once a window too.
    expect(published.length).toBeLessThanOrEqual(windows);
    expect(onB.times.length).toBeLessThanOrEqual(windows);
    // Without coalescing: four changes per churn, to each watcher and over the bus.
    expect(onA.changes.length).toBeLessThan(churns / 50);

    a.clock.advance(W);
    b.clock.advance(W);
    const empty = { playerIds: [], host: false, spectators: 0 };
    expect(onA.state()).toEqual(empty);
    expect(onB.state()).toEqual(empty);
    expect(b.presence.online(ROOM)).toEqual(empty);
    a.presence.close();
    b.presence.close();
  });

  it('a heartbeat that repeats a room’s state announces nothing, so it never holds back a real change', async () => {
    const heartbeatMs = 4 * W;
    const { open } = createDeployment(heartbeatMs);
    const a = await open();
    const b = await open();
    const onB = watch(b.presence, b.clock);
    a.presence.connect(ROOM, 'pat');
    expect(onB.changes).toEqual([{ room: ROOM, playerId: 'pat', online: true }]);
    // A's heartbeat repeats Pat: B has nothing to announce, and opens no window for it... (B's
    // clock goes first, so B's window from Pat's arrival has closed when the heartbeat lands.)
    b.clock.advance(heartbeatMs);
    a.clock.advance(heartbeatMs);
    expect(onB.changes).toHaveLength(1);
    // ...so Sam's arrival right after it reaches B's watchers at once.
    a.presence.connect(ROOM, 'sam');
    expect(onB.changes.at(-1)).toEqual({ room: ROOM, playerId: 'sam', online: true });
    a.presence.close();
    b.presence.close();
  });

  it('always ends with the latest state, on this instance and on another (property)', async () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('connect' as const),
        on: fc.nat(1),
        member: fc.integer({ min: -1, max: 3 }),
      }),
      fc.record({ kind: fc.constant('spectate' as const), on: fc.nat(1) }),
      fc.record({ kind: fc.constant('end' as const), index: fc.nat() }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 2 * W }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const { open } = createDeployment();
        const instances = [await open(), await open()];
        const watchers = instances.map(({ presence, clock }) => watch(presence, clock));
        const streams: (() => void)[] = [];
        const instance = (on: number) => instances[on] ?? instances[0];
        for (const step of ops) {
          if (step.kind === 'connect') {
            const { presence } = instance(step.on) as (typeof instances)[number];
            streams.push(presence.connect(ROOM, step.member < 0 ? null : `p${step.member}`));
          } else if (step.kind === 'spectate') {
            streams.push((instance(step.on) as (typeof instances)[number]).presence.connectSpectator(ROOM));
          } else if (step.kind === 'end' && streams.length > 0) {
            const [end] = streams.splice(step.index % streams.length, 1);
            end?.();
          } else if (step.kind === 'wait') {
            for (const { clock } of instances) clock.advance(step.ms);
          }
        }
        // One window for the last messages to go out, one for the receiver to announce them.
        for (const { clock } of instances) clock.advance(W);
        for (const { clock } of instances) clock.advance(W);
        for (const [n, { presence }] of instances.entries()) {
          const truth = sorted(presence.online(ROOM));
          expect(watchers[n]?.state()).toEqual(truth);
          for (const gap of gaps(watchers[n]?.times ?? [])) expect(gap).toBeGreaterThanOrEqual(W);
        }
        // Both instances agree on who is online.
        const [first, second] = instances.map(({ presence }) => sorted(presence.online(ROOM)));
        expect(first).toEqual(second);
        for (const { presence } of instances) presence.close();
      }),
      { numRuns: 200 },
    );
  });
});

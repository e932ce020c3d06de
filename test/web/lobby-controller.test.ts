// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forgetCsrfToken } from '../../web/src/api.js';
import {
  LOBBY_ENDED,
  ROOM_OUT_OF_DATE,
  ROOM_RELOADED,
  STREAM_COOKIE_PLANTED,
  STREAM_STOPPED,
  startLobby,
} from '../../web/src/lobby-controller.js';
import type { openRoomStream, RoomStreamHandlers } from '../../web/src/room-stream.js';
import { createLobbyStore, type LobbyStore } from '../../web/src/store.js';
import type { RoomSnapshot } from '../../web/src/types.js';
import { rollOf, settle, snapshotOf } from './fixtures.js';

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
/** Answers fetch calls by `METHOD path`; unknown requests fail the test. */
let replies: Map<string, Reply>;
let requests: string[];

beforeEach(() => {
  replies = new Map([['GET /auth/csrf', { status: 200, body: { csrf_token: 'csrf' } }]]);
  requests = [];
  forgetCsrfToken();
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string, init: RequestInit) => {
      const key = `${init.method} ${path}`;
      requests.push(key);
      const reply = replies.get(key);
      if (reply === undefined) throw new Error(`unexpected request ${key}`);
      const type = reply.status < 400 ? 'application/json' : 'application/problem+json';
      return new Response(reply.body === undefined ? null : JSON.stringify(reply.body), {
        status: reply.status,
        headers: { ...(reply.body === undefined ? {} : { 'Content-Type': type }), ...reply.headers },
      });
    }),
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
});

function start(snapshot: RoomSnapshot = snapshotOf()) {
  const lobby = createLobbyStore(snapshot);
  let handlers: RoomStreamHandlers | undefined;
  let opens = 0;
  const close = vi.fn();
  const openStream: typeof openRoomStream = (_code, on) => {
    handlers = on;
    opens++;
    return { close };
  };
  const leave = new AbortController();
  const navigate = vi.fn();
  const remount = vi.fn();
  const actions = startLobby(lobby, { signal: leave.signal, remount, navigate, openStream });
  if (handlers === undefined) throw new Error('no stream opened');
  return { lobby, actions, on: handlers, close, leave, navigate, remount, opened: () => opens };
}

/** The stream's own answer, asked for when `EventSource` reports a refusal. */
const EVENTS = 'GET /rooms/ABCD2345/events?presence=true';
const names = (lobby: LobbyStore) => lobby.players.value.map((player) => player.name);
const problem = (status: number, code: string) => ({
  status,
  body: { type: 'about:blank', title: 'x', status, detail: `${code} happened.`, code },
});
const ROOM = 'GET /rooms/ABCD2345';
const ids = (lobby: LobbyStore) => lobby.state.value.rolls.map((roll) => roll.id);
/** Makes the next fetch wait; the returned function answers it with `body` (200, JSON). */
function holdNextFetch(): (body: unknown) => void {
  let answer: (value: Response) => void = () => {};
  vi.mocked(fetch).mockImplementationOnce(async (path, init) => {
    requests.push(`${init?.method} ${String(path)}`);
    return new Promise((resolve) => (answer = resolve));
  });
  return (body) =>
    answer(
      new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } }),
    );
}

describe('startLobby', () => {
  it('adds a joining player once and announces them once', () => {
    const { lobby, on } = start();
    on.onPlayerJoined({ player: { id: 'p3', name: 'Cleo' } });
    on.onPlayerJoined({ player: { id: 'p3', name: 'Cleo' } });
    expect(names(lobby)).toEqual(['Alice', 'Bob', 'Cleo']);
    expect(lobby.announcement.value).toBe('Cleo joined.');
  });

  it('announces a kick of someone else, and ends the lobby when you are the one kicked', () => {
    const { lobby, on, close } = start();
    on.onPlayerLeft({ player: { id: 'p2', name: 'Bob' }, reason: 'kicked' });
    expect(lobby.announcement.value).toBe('Bob was removed by the host.');
    expect(lobby.ended.value).toBeNull();
    on.onPlayerLeft({ player: { id: 'p1', name: 'Alice' }, reason: 'kicked' });
    expect(lobby.ended.value).toBe(LOBBY_ENDED.kicked);
    expect(lobby.status.value).toEqual({ message: LOBBY_ENDED.kicked, kind: 'ended' });
    expect(close).toHaveBeenCalled();
    // The first reason wins.
    on.onRoomClosed();
    expect(lobby.ended.value).toBe(LOBBY_ENDED.kicked);
  });

  it('tells a host that they closed the room', () => {
    const host = start(snapshotOf({ you: { player_id: null, host: true } }));
    host.on.onRoomClosed();
    expect(host.lobby.ended.value).toBe(LOBBY_ENDED.closedByYou);
  });

  it.each(['token_expired', 'token_revoked'] as const)(
    'renews a room token (%s) from the seat and reloads, never ending the lobby as a kick',
    async (reason) => {
      const player = start();
      replies.set('POST /rooms/ABCD2345/seat', { status: 200, body: {} });
      player.on.onStreamEnd(reason);
      await vi.waitFor(() => expect(player.remount).toHaveBeenCalled());
      expect(player.lobby.ended.value).toBeNull();
    },
  );

  // After `gatehouse revoke-all` every player's stream ends at one heartbeat; a class behind one
  // address renews at once, past the join limit. A 429 or 503 is no lost seat.
  it('tries a seat renewal again after a 429 or 503, and never ends the lobby for one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const SEAT = 'POST /rooms/ABCD2345/seat';
      const seatRequests = () => requests.filter((request) => request === SEAT).length;
      const player = start();
      replies.set(SEAT, { ...problem(429, 'TOO_MANY_REQUESTS'), headers: { 'Retry-After': '2' } });
      player.on.onStreamEnd('token_revoked');
      await vi.waitFor(() => expect(seatRequests()).toBe(1));
      // A second stream end meanwhile starts no second chain of tries.
      player.on.onStreamEnd('token_revoked');
      expect(player.lobby.ended.value).toBeNull();
      replies.set(SEAT, { status: 200, body: {} });
      await vi.advanceTimersByTimeAsync(3_000); // Retry-After 2 s, spread by up to half as long
      await vi.waitFor(() => expect(player.remount).toHaveBeenCalled());
      expect(seatRequests()).toBe(2);
      expect(player.lobby.ended.value).toBeNull();

      // Still refused after the last try (a limit or an outage that outlasts them): the seat is
      // still held, so the player is not told they left; the status line says what happened.
      const unlucky = start();
      replies.set(SEAT, problem(503, 'SERVICE_UNAVAILABLE'));
      unlucky.on.onStreamEnd('token_expired');
      for (let wait = 0; wait < 5; wait++) await vi.advanceTimersByTimeAsync(7_500);
      await vi.waitFor(() => expect(seatRequests()).toBe(2 + 5));
      await vi.waitFor(() => expect(unlucky.lobby.status.value?.kind).toBe('stopped'));
      expect(unlucky.lobby.ended.value).toBeNull();

      // A proxy's 502 while instances restart is tried again too.
      const proxied = start();
      replies.set(SEAT, problem(502, 'BAD_GATEWAY'));
      proxied.on.onStreamEnd('token_revoked');
      await vi.waitFor(() => expect(seatRequests()).toBe(2 + 5 + 1));
      expect(proxied.lobby.ended.value).toBeNull();
      replies.set(SEAT, { status: 200, body: {} });
      await vi.advanceTimersByTimeAsync(7_500);
      await vi.waitFor(() => expect(proxied.remount).toHaveBeenCalled());
      expect(proxied.lobby.ended.value).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('says "your seat expired" when the seat cannot renew the token, and "removed" only for a kick', async () => {
    const expired = start();
    replies.set('POST /rooms/ABCD2345/seat', problem(401, 'SEAT_EXPIRED'));
    expired.on.onStreamEnd('token_expired');
    await vi.waitFor(() => expect(expired.lobby.ended.value).toBe(LOBBY_ENDED.expired));

    const kicked = start();
    replies.set('GET /rooms/ABCD2345', problem(403, 'PLAYER_REMOVED'));
    kicked.on.onRefused();
    await vi.waitFor(() => expect(kicked.lobby.ended.value).toBe(LOBBY_ENDED.kicked));

    const tokenExpired = start();
    replies.set('GET /rooms/ABCD2345', problem(401, 'ROOM_TOKEN_EXPIRED'));
    replies.set('POST /rooms/ABCD2345/seat', problem(401, 'SEAT_EXPIRED'));
    tokenExpired.on.onRefused();
    await vi.waitFor(() => expect(tokenExpired.lobby.ended.value).toBe(LOBBY_ENDED.expired));

    const moved = start();
    moved.on.onStreamEnd('seat_replaced');
    expect(moved.lobby.ended.value).toBe(LOBBY_ENDED.replaced);

    const own = start();
    own.on.onPlayerLeft({ player: { id: 'p1', name: 'Pat' }, reason: 'expired' });
    expect(own.lobby.ended.value).toBe(LOBBY_ENDED.expired);
  });

  it('shows reconnecting, and catches up from a fresh snapshot when the stream is back', async () => {
    const { lobby, on } = start();
    on.onReconnecting();
    expect(lobby.status.value?.kind).toBe('reconnecting');
    replies.set('GET /rooms/ABCD2345', { status: 200, body: snapshotOf({ rolls: [rollOf(7)] }) });
    on.onOpen();
    expect(lobby.status.value).toBeNull();
    // Waits for the snapshot rather than counting microtasks (api() may take a few more of them).
    await vi.waitFor(() => expect(lobby.state.value.rolls.map((roll) => roll.id)).toEqual([7]));
  });

  it('asks the room why the stream was refused: 404 means it closed', async () => {
    const { lobby, on } = start();
    replies.set('GET /rooms/ABCD2345', problem(404, 'ROOM_NOT_FOUND'));
    on.onRefused();
    await vi.waitFor(() => expect(lobby.ended.value).toBe(LOBBY_ENDED.closed));
  });

  it('offers Reconnect when the stream caps refused the stream but the viewer is still in the room', async () => {
    const { lobby, on, opened } = start();
    replies.set('GET /rooms/ABCD2345', { status: 200, body: snapshotOf() });
    replies.set(EVENTS, problem(429, 'TOO_MANY_STREAMS'));
    on.onRefused();
    await vi.waitFor(() => expect(lobby.status.value).toEqual({ message: STREAM_STOPPED, kind: 'stopped' }));
    expect(lobby.ended.value).toBeNull();
    // Asked once why, and not reopened: it would only be refused again.
    expect(requests.filter((request) => request === EVENTS)).toHaveLength(1);
    expect(opened()).toBe(1);
  });

  it('reopens the stream once after a planted cookie was refused and dropped (red-team G2), and says what to do when it persists', async () => {
    const { lobby, on, opened } = start();
    replies.set('GET /rooms/ABCD2345', { status: 200, body: snapshotOf() });
    replies.set(EVENTS, problem(400, 'AMBIGUOUS_COOKIE'));
    on.onRefused();
    await vi.waitFor(() => expect(opened()).toBe(2));
    expect(lobby.status.value).toBeNull();
    // The reopened stream is refused for the same reason: no loop, the way out instead.
    on.onRefused();
    await vi.waitFor(() =>
      expect(lobby.status.value).toEqual({ message: STREAM_COOKIE_PLANTED, kind: 'stopped' }),
    );
    expect(opened()).toBe(2);
    // A stream that opens earns the next refusal its own automatic reopen.
    on.onOpen();
    on.onRefused();
    await vi.waitFor(() => expect(opened()).toBe(3));
  });

  it('does not claim the stream stopped when only an action was refused', async () => {
    const { lobby, actions } = start();
    replies.set('POST /rooms/ABCD2345/rolls', problem(403, 'CSRF_ORIGIN'));
    replies.set('GET /rooms/ABCD2345', { status: 200, body: snapshotOf() });
    await actions.roll('1d20', '');
    await vi.waitFor(() => expect(requests).toContain('GET /rooms/ABCD2345'));
    await settle();
    expect(lobby.status.value).toBeNull();
    expect(requests).not.toContain(EVENTS);
  });

  it('rolls with the CSRF token and puts the answer in the log once, even when its event follows', async () => {
    const { lobby, actions, on } = start();
    replies.set('POST /rooms/ABCD2345/rolls', { status: 201, body: rollOf(3) });
    const result = await actions.roll('1d20', '');
    expect(result.ok).toBe(true);
    expect(requests).toEqual(['GET /auth/csrf', 'POST /rooms/ABCD2345/rolls']);
    on.onRoll(rollOf(3));
    expect(lobby.state.value.rolls).toHaveLength(1);
  });

  it('takes a removed player off the list at once, also when they had already left', async () => {
    const host = start(snapshotOf({ you: { player_id: null, host: true } }));
    replies.set('DELETE /rooms/ABCD2345/players/p2', problem(404, 'PLAYER_NOT_FOUND'));
    expect(await host.actions.kick({ id: 'p2', name: 'Bob' })).toBeNull();
    expect(names(host.lobby)).toEqual(['Alice']);
    expect(host.lobby.announcement.value).toBe('Bob was removed.');
  });

  it('leaves for the join page with a notice', async () => {
    const { actions, navigate, close } = start();
    replies.set('DELETE /rooms/ABCD2345/players/me', { status: 204 });
    expect(await actions.leave()).toBeNull();
    expect(close).toHaveBeenCalled();
    expect(navigate).toHaveBeenCalledWith('#/join', LOBBY_ENDED.left);
  });

  it('a spectator stops watching: the server ends the credential, the page goes home with a notice', async () => {
    const { actions, navigate, close } = start(
      snapshotOf({ you: { player_id: null, host: false, spectator: true } }),
    );
    replies.set('DELETE /rooms/ABCD2345/watch', problem(403, 'CSRF_INVALID'));
    expect(await actions.stopWatching()).toBe('CSRF_INVALID happened.');
    expect(navigate).not.toHaveBeenCalled();
    replies.set('DELETE /rooms/ABCD2345/watch', { status: 204 });
    expect(await actions.stopWatching()).toBeNull();
    expect(close).toHaveBeenCalled();
    expect(navigate).toHaveBeenCalledWith('#/', LOBBY_ENDED.stoppedWatching);
    // The double-submit token went with it (the watch cookie is a cookie credential).
    expect(requests).toContain('GET /auth/csrf');
  });

  it("ends a spectator's lobby when its credential ended elsewhere (watch_ended), saying how to come back", () => {
    const { lobby, on } = start(snapshotOf({ you: { player_id: null, host: false, spectator: true } }));
    on.onStreamEnd('watch_ended');
    expect(lobby.ended.value).toBe(LOBBY_ENDED.watchEnded);
    expect(LOBBY_ENDED.watchEnded).toContain('Open the link again');
  });

  it('follows presence events, and a snapshot answer only when no event arrived meanwhile', async () => {
    const { lobby, on } = start(snapshotOf({ online: { player_ids: ['p1'], host: false } }));
    expect([...lobby.presence.value.players]).toEqual(['p1']);
    on.onPresence?.({ player_id: 'p2', online: true });
    on.onPresence?.({ player_id: null, online: true });
    expect([...lobby.presence.value.players].sort()).toEqual(['p1', 'p2']);
    expect(lobby.presence.value.host).toBe(true);
    // A snapshot asked for before an event may predate it: it must not undo the event.
    let answer: (value: Response) => void = () => {};
    vi.mocked(fetch).mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    on.onOpen();
    on.onPresence?.({ player_id: 'p1', online: false });
    answer(
      new Response(JSON.stringify(snapshotOf({ online: { player_ids: ['p1', 'p2'], host: true } })), {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
      }),
    );
    await settle();
    expect([...lobby.presence.value.players]).toEqual(['p2']);
    // With no event meanwhile, the snapshot is the truth (e.g. after a reconnect).
    replies.set('GET /rooms/ABCD2345', {
      status: 200,
      body: snapshotOf({ online: { player_ids: [], host: false } }),
    });
    on.onOpen();
    await vi.waitFor(() => expect(lobby.presence.value.players.size).toBe(0));
    expect(lobby.presence.value.host).toBe(false);
  });

  it('takes a player who left off the online list', () => {
    const { lobby, on } = start(snapshotOf({ online: { player_ids: ['p1', 'p2'], host: true } }));
    on.onPlayerLeft({ player: { id: 'p2', name: 'Bob' }, reason: 'left' });
    expect([...lobby.presence.value.players]).toEqual(['p1']);
  });

  it('loads older rolls page by page until the start, and says what went wrong', async () => {
    const { lobby, actions } = start(snapshotOf({ rolls: [rollOf(30), rollOf(31)] }));
    expect(lobby.history.value).toEqual({ before: 30 });
    replies.set('GET /rooms/ABCD2345/rolls?before=30&limit=50', {
      status: 200,
      body: { items: [rollOf(20), rollOf(10)], next_before: 10 },
    });
    expect(await actions.loadOlder()).toBeNull();
    expect(lobby.state.value.rolls.map((roll) => roll.id)).toEqual([31, 30, 20, 10]);
    expect(lobby.history.value).toEqual({ before: 10 });
    replies.set('GET /rooms/ABCD2345/rolls?before=10&limit=50', problem(503, 'DATABASE_UNAVAILABLE'));
    expect(await actions.loadOlder()).toBe('DATABASE_UNAVAILABLE happened.');
    expect(lobby.history.value).toEqual({ before: 10 });
    replies.set('GET /rooms/ABCD2345/rolls?before=10&limit=50', {
      status: 200,
      body: { items: [rollOf(5)], next_before: null },
    });
    expect(await actions.loadOlder()).toBeNull();
    expect(lobby.history.value).toEqual({ before: null });
    const asked = requests.length;
    expect(await actions.loadOlder()).toBeNull();
    expect(requests).toHaveLength(asked);
  });

  it('has no history to load in a room without rolls', () => {
    expect(start().lobby.history.value).toEqual({ before: null });
  });

  it('reveals a secret roll (host) and shows a reveal from the stream to everyone', async () => {
    const secret = { ...rollOf(4), visibility: 'host' as const };
    const host = start(snapshotOf({ you: { player_id: null, host: true }, rolls: [secret] }));
    replies.set('POST /rooms/ABCD2345/rolls/4/reveal', {
      status: 201,
      body: { id: 9, roll_id: 4, roll: { ...secret, id: undefined }, salt: 'ab', content: '{}' },
    });
    expect(await host.actions.reveal(secret)).toBeNull();
    expect(host.lobby.state.value.rolls[0]).toMatchObject({ id: 4, revealed: true, total: 4 });

    const player = start(
      snapshotOf({
        rolls: [
          {
            player: { id: 'p2', name: 'Bob' },
            notation: '',
            label: null,
            terms: [],
            total: 0,
            hidden: true,
            visibility: 'host',
            rolled_at: rollOf(4).rolled_at,
            id: 4,
          },
        ],
      }),
    );
    player.on.onRollRevealed?.(4, { ...secret, player: { id: 'p2', name: 'Bob' } });
    const revealed = player.lobby.state.value.rolls[0];
    expect(revealed).toMatchObject({ id: 4, total: 4, revealed: true });
    expect(revealed?.hidden).not.toBe(true);
    expect(player.lobby.announcement.value).toBe("The host revealed Bob's secret roll: 4.");
  });

  it('takes "already revealed" as revealed, and shows other refusals', async () => {
    const secret = { ...rollOf(4), visibility: 'host' as const };
    const host = start(snapshotOf({ you: { player_id: null, host: true }, rolls: [secret] }));
    replies.set('POST /rooms/ABCD2345/rolls/4/reveal', problem(409, 'ROLL_ALREADY_REVEALED'));
    expect(await host.actions.reveal(secret)).toBeNull();
    expect(host.lobby.state.value.rolls[0]?.revealed).toBe(true);
    replies.set('POST /rooms/ABCD2345/rolls/5/reveal', problem(403, 'FORBIDDEN'));
    expect(await host.actions.reveal({ ...secret, id: 5 })).toBe('FORBIDDEN happened.');
  });

  describe('after a resync (the stream skipped what happened while the page was away)', () => {
    const secret = {
      player: { id: 'p2', name: 'Bob' },
      notation: '',
      label: null,
      terms: [],
      total: 0,
      hidden: true,
      visibility: 'host' as const,
      rolled_at: rollOf(4).rolled_at,
      id: 4,
    };
    const away = () => start(snapshotOf({ rolls: [secret, rollOf(3)] }));

    it('replaces the view with a fresh read of the room, keeping what the stream brought meanwhile', async () => {
      const { lobby, on } = away();
      expect(lobby.history.value).toEqual({ before: 3 });
      const answer = holdNextFetch();
      on.onResync();
      // Meanwhile, live events after the resync; the answer may predate them.
      on.onRoll(rollOf(42));
      on.onPlayerLeft({ player: { id: 'p3', name: 'Cleo' }, reason: 'left' });
      on.onPlayerJoined({ player: { id: 'p4', name: 'Dan' } });
      answer(
        snapshotOf({
          // Bob left while the page was away; Cleo joined; secret roll 4 was revealed.
          players: [
            { id: 'p1', name: 'Alice' },
            { id: 'p3', name: 'Cleo' },
          ],
          rolls: [rollOf(41), rollOf(40), { ...rollOf(4), player: { id: 'p2', name: 'Bob' } }],
          online: { player_ids: ['p1'], host: true },
        }),
      );
      await vi.waitFor(() => expect(lobby.announcement.value).toBe(ROOM_RELOADED));
      expect(names(lobby)).toEqual(['Alice', 'Dan']);
      // Roll 3 is gone from the view (it sat before a hole); 4 shows in full; 42 is kept.
      expect(ids(lobby)).toEqual([42, 41, 40, 4]);
      expect(lobby.state.value.rolls.at(-1)).toMatchObject({ total: 4 });
      expect(lobby.state.value.rolls.at(-1)?.hidden).not.toBe(true);
      expect(lobby.history.value).toEqual({ before: 4 });
      expect(lobby.presence.value).toMatchObject({ host: true });
      expect(requests.filter((request) => request === ROOM)).toHaveLength(1);
    });

    it('reads one at a time: a resync during the read asks for one more, whose answer is shown', async () => {
      const { lobby, on } = away();
      const answer = holdNextFetch();
      on.onResync();
      on.onResync();
      on.onResync();
      expect(requests.filter((request) => request === ROOM)).toHaveLength(1);
      replies.set(ROOM, { status: 200, body: snapshotOf({ rolls: [rollOf(50)] }) });
      answer(snapshotOf({ rolls: [rollOf(45)] }));
      await vi.waitFor(() => expect(lobby.announcement.value).toBe(ROOM_RELOADED));
      expect(ids(lobby)).toEqual([50]);
      expect(requests.filter((request) => request === ROOM)).toHaveLength(2);
    });

    it('drops a page of older rolls asked for before the reload: it would continue the old log', async () => {
      const { lobby, on, actions } = away();
      const olderPage = holdNextFetch();
      const loading = actions.loadOlder();
      replies.set(ROOM, { status: 200, body: snapshotOf({ rolls: [rollOf(50)] }) });
      on.onResync();
      await vi.waitFor(() => expect(lobby.announcement.value).toBe(ROOM_RELOADED));
      olderPage({ items: [rollOf(2)], next_before: 2 });
      expect(await loading).toBeNull();
      expect(ids(lobby)).toEqual([50]);
      expect(lobby.history.value).toEqual({ before: 50 });
    });

    it('says the view is stale and offers Reconnect when the room cannot be read, and ends a closed room', async () => {
      const { lobby, on, remount, actions } = away();
      replies.set(ROOM, problem(429, 'TOO_MANY_REQUESTS'));
      on.onResync();
      await vi.waitFor(() =>
        expect(lobby.status.value).toEqual({ message: ROOM_OUT_OF_DATE, kind: 'stopped' }),
      );
      expect(names(lobby)).toEqual(['Alice', 'Bob']);
      actions.reconnect();
      expect(remount).toHaveBeenCalled();

      const closed = away();
      replies.set(ROOM, problem(404, 'ROOM_NOT_FOUND'));
      closed.on.onResync();
      await vi.waitFor(() => expect(closed.lobby.ended.value).toBe(LOBBY_ENDED.closed));
    });
  });

  it('closes its stream when the page is left', () => {
    const { leave, close } = start();
    leave.abort();
    expect(close).toHaveBeenCalled();
  });
});

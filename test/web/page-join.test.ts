// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forgetCsrfToken } from '../../web/src/api.js';
import { LOBBY_ENDED } from '../../web/src/lobby-controller.js';
import { seatView } from '../../web/src/page-join.js';
import { roomActions } from '../../web/src/room-actions.js';
import { problemOf, snapshotOf } from './fixtures.js';

afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
});

function mount(nodes: Node[]): HTMLElement {
  const root = document.createElement('div');
  root.append(...nodes);
  document.body.append(root);
  return root;
}

const byTestId = (root: ParentNode, testId: string) =>
  root.querySelector<HTMLElement>(`[data-testid="${testId}"]`);

describe('seatView (#/join/CODE)', () => {
  const ctx = () => ({
    navigate: vi.fn(),
    signal: new AbortController().signal,
    rooms: { joinRoom: vi.fn() },
  });

  it('offers "Continue as Pat" instead of the join form, and opens the room on one click', () => {
    const context = ctx();
    const root = mount(seatView(context, 'ABCD2345', { kind: 'seated', roomName: 'Den', playerName: 'Pat' }));
    expect(byTestId(root, 'continue-button')?.textContent).toBe('Continue as Pat');
    expect(byTestId(root, 'player-name-input')).toBeNull();
    // Not offered: the server would resume this seat whatever name is typed.
    expect(byTestId(root, 'continue-other')?.textContent).toContain('leave the room first');
    byTestId(root, 'continue-button')?.click();
    expect(context.navigate).toHaveBeenCalledWith('#/rooms/ABCD2345');
  });

  it('shows the join form without a seat, and a removed player only the reason', () => {
    expect(
      byTestId(mount(seatView(ctx(), 'ABCD2345', { kind: 'none' })), 'player-name-input'),
    ).not.toBeNull();
    const removed = mount(
      seatView(ctx(), 'ABCD2345', { kind: 'ended', problem: problemOf(403, 'PLAYER_REMOVED') }),
    );
    expect(byTestId(removed, 'status-message')?.textContent).toBe(LOBBY_ENDED.kicked);
    expect(byTestId(removed, 'player-name-input')).toBeNull();
    const expired = mount(
      seatView(ctx(), 'ABCD2345', { kind: 'ended', problem: problemOf(401, 'SEAT_EXPIRED') }),
    );
    expect(byTestId(expired, 'status-message')?.textContent).toBe(LOBBY_ENDED.expired);
    expect(byTestId(expired, 'player-name-input')).not.toBeNull();
  });
});

describe('roomActions.findSeat', () => {
  let replies: Map<string, { status: number; body: unknown }>;
  beforeEach(() => {
    forgetCsrfToken();
    replies = new Map([['GET /auth/csrf', { status: 200, body: { csrf_token: 'csrf' } }]]);
    vi.stubGlobal(
      'fetch',
      vi.fn(async (path: string, init: RequestInit) => {
        const reply = replies.get(`${init.method} ${path}`);
        if (reply === undefined) throw new Error(`unexpected request ${init.method} ${path}`);
        return new Response(JSON.stringify(reply.body), {
          status: reply.status,
          headers: { 'Content-Type': reply.status < 400 ? 'application/json' : 'application/problem+json' },
        });
      }),
    );
  });
  const problem = (status: number, code: string) => ({
    status,
    body: { type: 'about:blank', title: 'x', status, detail: 'No.', code },
  });

  it('reads the player from a live room token without touching the seat', async () => {
    replies.set('GET /rooms/ABCD2345', { status: 200, body: snapshotOf() });
    expect(await roomActions.findSeat('ABCD2345')).toEqual({
      kind: 'seated',
      roomName: 'Den',
      playerName: 'Alice',
    });
    expect(vi.mocked(fetch)).toHaveBeenCalledTimes(1);
  });

  it('treats a host who does not play as having no seat', async () => {
    replies.set('GET /rooms/ABCD2345', {
      status: 200,
      body: snapshotOf({ you: { player_id: null, host: true } }),
    });
    expect(await roomActions.findSeat('ABCD2345')).toEqual({ kind: 'none' });
  });

  it('resumes from the seat when the room token is gone, and tells an ended seat from none', async () => {
    replies.set('GET /rooms/ABCD2345', problem(401, 'UNAUTHENTICATED'));
    replies.set('POST /rooms/ABCD2345/seat', {
      status: 200,
      body: { room: { code: 'ABCD2345', name: 'Den' }, player: { id: 'p1', name: 'Pat' }, resumed: true },
    });
    expect(await roomActions.findSeat('ABCD2345')).toEqual({
      kind: 'seated',
      roomName: 'Den',
      playerName: 'Pat',
    });
    replies.set('POST /rooms/ABCD2345/seat', problem(401, 'SEAT_INVALID'));
    expect(await roomActions.findSeat('ABCD2345')).toEqual({ kind: 'none' });
    replies.set('POST /rooms/ABCD2345/seat', problem(429, 'TOO_MANY_REQUESTS'));
    expect(await roomActions.findSeat('ABCD2345')).toEqual({ kind: 'none' });
    replies.set('POST /rooms/ABCD2345/seat', problem(403, 'PLAYER_REMOVED'));
    expect(await roomActions.findSeat('ABCD2345')).toMatchObject({
      kind: 'ended',
      problem: { code: 'PLAYER_REMOVED' },
    });
  });
});

import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import { openRoomStream, type RoomStreamHandlers } from '../../web/src/room-stream.js';

/** The part of EventSource the module uses; events are dispatched by the test. */
class FakeEventSource extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static last: FakeEventSource | undefined;
  readyState = FakeEventSource.CONNECTING;
  constructor(readonly url: string) {
    super();
    FakeEventSource.last = this;
  }
  close(): void {
    this.readyState = FakeEventSource.CLOSED;
  }
  emit(type: string, data: unknown): void {
    this.dispatchEvent(new MessageEvent(type, { data: JSON.stringify(data) }));
  }
}

function handlers(): { [K in keyof RoomStreamHandlers]-?: Mock<Required<RoomStreamHandlers>[K]> } {
  return {
    onRollRevealed: vi.fn(),
    onPresence: vi.fn(),
    onSpectators: vi.fn(),
    onOpen: vi.fn(),
    onPlayerJoined: vi.fn(),
    onPlayerLeft: vi.fn(),
    onRoll: vi.fn(),
    onRoomClosed: vi.fn(),
    onResync: vi.fn(),
    onStreamEnd: vi.fn(),
    onReconnecting: vi.fn(),
    onRefused: vi.fn(),
  };
}

describe('openRoomStream', () => {
  beforeEach(() => vi.stubGlobal('EventSource', FakeEventSource));
  afterEach(() => vi.unstubAllGlobals());

  it.each([
    'token_expired',
    'token_revoked',
    'session_ended',
    'session_revoked',
    'seat_replaced',
    'link_revoked',
    'watch_ended',
  ])('reports stream_end (%s) and stops the browser from reconnecting with the dead credential', (reason) => {
    const on = handlers();
    openRoomStream('ABCD2345', on);
    const source = FakeEventSource.last as FakeEventSource;
    expect(source.url).toBe('/rooms/ABCD2345/events?presence=true');
    source.emit('stream_end', { reason });
    expect(on.onStreamEnd).toHaveBeenCalledWith(reason);
    expect(source.readyState).toBe(FakeEventSource.CLOSED);
    // Nothing after it is reported: not a refusal (which would read as a kick), nor events.
    source.dispatchEvent(new Event('error'));
    source.emit('room_closed', {});
    expect(on.onRefused).not.toHaveBeenCalled();
    expect(on.onReconnecting).not.toHaveBeenCalled();
    expect(on.onRoomClosed).not.toHaveBeenCalled();
    expect(on.onPlayerLeft).not.toHaveBeenCalled();
  });

  it('reports presence and reveals, and drops malformed ones', () => {
    const on = handlers();
    openRoomStream('ABCD2345', on);
    const source = FakeEventSource.last as FakeEventSource;
    source.emit('presence', { player_id: 'p2', online: false });
    source.emit('presence', { player_id: null, online: true });
    source.emit('presence', { player_id: 7, online: true });
    source.emit('presence', { player_id: 'p2' });
    expect(on.onPresence.mock.calls).toEqual([
      [{ player_id: 'p2', online: false }],
      [{ player_id: null, online: true }],
    ]);
    const roll = {
      player: { id: 'p1', name: 'Pat' },
      notation: '1d6',
      label: null,
      terms: [],
      modifier: 0,
      total: 4,
      rolled_at: '2026-01-01T00:00:00.000Z',
      visibility: 'host',
    };
    source.emit('roll_revealed', { id: 9, roll_id: 5, roll, salt: 'ab', content: '{}' });
    source.emit('roll_revealed', { id: 10, roll_id: '5', roll });
    source.emit('roll_revealed', { id: 11, roll_id: 6, roll: { nonsense: true } });
    expect(on.onRollRevealed).toHaveBeenCalledTimes(1);
    expect(on.onRollRevealed.mock.calls[0]?.[0]).toBe(5);
    expect(on.onRollRevealed.mock.calls[0]?.[1]).toMatchObject({ notation: '1d6', total: 4 });
  });

  it('reports the spectator count, and drops malformed ones', () => {
    const on = handlers();
    openRoomStream('ABCD2345', on);
    const source = FakeEventSource.last as FakeEventSource;
    source.emit('spectators', { count: 2 });
    source.emit('spectators', { count: -1 });
    source.emit('spectators', { count: '3' });
    source.emit('spectators', { count: 0 });
    expect(on.onSpectators.mock.calls).toEqual([[2], [0]]);
  });

  it('reports resync whatever its data (the view is stale either way), and nothing once closed', () => {
    const on = handlers();
    const stream = openRoomStream('ABCD2345', on);
    const source = FakeEventSource.last as FakeEventSource;
    source.emit('resync', { last_event_id: 42 });
    source.dispatchEvent(new MessageEvent('resync', { data: 'not json', lastEventId: '43' }));
    expect(on.onResync).toHaveBeenCalledTimes(2);
    expect(on.onRoll).not.toHaveBeenCalled();
    stream.close();
    source.emit('resync', { last_event_id: 44 });
    expect(on.onResync).toHaveBeenCalledTimes(2);
  });

  it('treats an unknown stream_end reason as the session ending', () => {
    const on = handlers();
    openRoomStream('ABCD2345', on);
    (FakeEventSource.last as FakeEventSource).emit('stream_end', { reason: 'something new' });
    expect(on.onStreamEnd).toHaveBeenCalledWith('session_ended');
  });
});

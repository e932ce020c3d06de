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
    onOpen: vi.fn(),
    onPlayerJoined: vi.fn(),
    onPlayerLeft: vi.fn(),
    onRoll: vi.fn(),
    onRoomClosed: vi.fn(),
    onStreamEnd: vi.fn(),
    onReconnecting: vi.fn(),
    onRefused: vi.fn(),
  };
}

describe('openRoomStream', () => {
  beforeEach(() => vi.stubGlobal('EventSource', FakeEventSource));
  afterEach(() => vi.unstubAllGlobals());

  it.each(['token_expired', 'session_ended', 'session_revoked'])(
    'reports stream_end (%s) and stops the browser from reconnecting with the dead credential',
    (reason) => {
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
    },
  );

  it('treats an unknown stream_end reason as the session ending', () => {
    const on = handlers();
    openRoomStream('ABCD2345', on);
    (FakeEventSource.last as FakeEventSource).emit('stream_end', { reason: 'something new' });
    expect(on.onStreamEnd).toHaveBeenCalledWith('session_ended');
  });
});

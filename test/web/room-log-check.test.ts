// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkRoomLog, fetchRoomLog, MAX_LOG_PAGES, readLogFile } from '../../web/src/room-log-check.js';
import { signedLog } from './signed-log.js';

let replies: Map<string, { status: number; body: unknown }>;
let requests: string[];

beforeEach(() => {
  replies = new Map();
  requests = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string) => {
      requests.push(path);
      const reply = replies.get(path);
      if (reply === undefined) throw new Error(`unexpected request ${path}`);
      return new Response(JSON.stringify(reply.body), {
        status: reply.status,
        headers: { 'Content-Type': reply.status < 400 ? 'application/json' : 'application/problem+json' },
      });
    }),
  );
});
afterEach(() => vi.unstubAllGlobals());

describe('fetchRoomLog', () => {
  it('joins the pages in order and merges their keys; the result verifies', async () => {
    const { document, key } = await signedLog('ABCD2345', 5);
    const page = (entries: typeof document.entries, next: number | null) => ({
      status: 200,
      body: { ...document, entries, next_after: next },
    });
    replies.set('/rooms/ABCD2345/log?after=0', page(document.entries.slice(0, 3), 3));
    replies.set('/rooms/ABCD2345/log?after=3', page(document.entries.slice(3), null));
    const fetched = await fetchRoomLog('ABCD2345');
    if (!fetched.ok) throw new Error(fetched.message);
    expect(fetched.document.entries.map((entry) => entry.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(fetched.document.keys).toEqual([key]);
    expect(await checkRoomLog(fetched.document, [key])).toMatchObject({
      ok: true,
      entries: 5,
      fromGenesis: true,
    });
  });

  it('stops on a page that does not move forward, and after the page cap', async () => {
    const { document } = await signedLog('ABCD2345', 1);
    replies.set('/rooms/ABCD2345/log?after=0', { status: 200, body: { ...document, next_after: 0 } });
    expect(await fetchRoomLog('ABCD2345')).toEqual({
      ok: false,
      message: 'The server sent a log page that does not move forward.',
    });
    for (let after = 0; after < MAX_LOG_PAGES; after++)
      replies.set(`/rooms/ABCD2345/log?after=${after}`, {
        status: 200,
        body: { ...document, next_after: after + 1 },
      });
    requests = [];
    const capped = await fetchRoomLog('ABCD2345');
    expect(capped.ok).toBe(false);
    expect(requests).toHaveLength(MAX_LOG_PAGES);
  });

  it('passes the server’s refusal on', async () => {
    replies.set('/rooms/ABCD2345/log?after=0', {
      status: 401,
      body: {
        type: 'about:blank',
        title: 'x',
        status: 401,
        detail: 'Join the room first.',
        code: 'NOT_ROOM_MEMBER',
      },
    });
    const result = await fetchRoomLog('ABCD2345');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain('Join the room first.');
  });
});

describe('readLogFile', () => {
  it('reads JSON and refuses what is not JSON', async () => {
    expect(await readLogFile(new Blob(['{"a":1}']))).toEqual({ ok: true, document: { a: 1 } });
    expect(await readLogFile(new Blob(['nope']))).toEqual({ ok: false, message: 'The file is not JSON.' });
  });

  it('refuses a huge file without reading it', async () => {
    const huge = { size: 64 * 1024 * 1024, text: vi.fn() } as unknown as Blob;
    expect((await readLogFile(huge)).ok).toBe(false);
    expect(huge.text).not.toHaveBeenCalled();
  });
});

describe('checkRoomLog', () => {
  it('trusts the given keys over the ones inside the document', async () => {
    const { document } = await signedLog('ABCD2345', 2);
    const other = await signedLog('ABCD2345', 1);
    expect(await checkRoomLog(document, undefined)).toMatchObject({ ok: true, entries: 2 });
    const verdict = await checkRoomLog(document, [other.key]);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok)
      expect(verdict.problems.map((problem) => problem.reason)).toEqual(['bad_signature', 'bad_signature']);
  });
});

// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PageContext } from '../../web/src/page.js';
import { renderVerdict, renderVerifyRoom } from '../../web/src/page-verify-room.js';
import { createAppStore } from '../../web/src/store.js';
import { signedLog } from './signed-log.js';

let replies: Map<string, unknown>;

beforeEach(() => {
  replies = new Map();
  vi.stubGlobal(
    'fetch',
    vi.fn(async (path: string) => {
      const body = replies.get(path);
      if (body === undefined) throw new Error(`unexpected request ${path}`);
      return new Response(JSON.stringify(body), {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
      });
    }),
  );
  vi.stubGlobal(
    'URL',
    Object.assign(URL, { createObjectURL: vi.fn(() => 'blob:log'), revokeObjectURL: vi.fn() }),
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
});

function context(): { ctx: PageContext; leave: AbortController } {
  const main = document.createElement('main');
  document.body.append(main);
  const leave = new AbortController();
  const ctx = {
    main,
    store: createAppStore(),
    signal: leave.signal,
    notice: undefined,
    navigate: vi.fn(),
  } as unknown as PageContext;
  return { ctx, leave };
}

const byTestId = (root: ParentNode, testId: string) => root.querySelector(`[data-testid="${testId}"]`);

describe('renderVerdict', () => {
  it('counts the entries of a verified log and names the head', () => {
    const element = renderVerdict({
      ok: true,
      entries: 1,
      fromGenesis: false,
      head: 'ab'.repeat(32),
      revealed: 0,
      secret: 2,
    });
    expect(element.dataset.verified).toBe('true');
    expect(byTestId(element, 'verdict-title')?.textContent).toBe('Verified 1 entry.');
    expect(element.textContent).toContain('does not start at the room’s first roll');
    expect(element.textContent).toContain('0 revealed and matching what was committed, 2 still secret');
    expect(byTestId(element, 'verdict-head')?.textContent).toBe('ab'.repeat(32));
  });

  it('says which entries broke, by position and roll number', () => {
    const element = renderVerdict({
      ok: false,
      problems: [
        { index: 2, seq: 7, reason: 'broken_chain', message: 'Entry does not link to the entry before it' },
        { index: -1, seq: null, reason: 'malformed', message: 'Not a dicery-room-log/1 document' },
      ],
    });
    expect(element.dataset.verified).toBe('false');
    expect(
      Array.from(element.querySelectorAll('[data-testid="verdict-problem"]'), (li) => li.textContent),
    ).toEqual([
      'Entry 3 (roll #7): Entry does not link to the entry before it',
      'Not a dicery-room-log/1 document',
    ]);
  });
});

describe('renderVerifyRoom', () => {
  it('fetches the room’s log and the published keys, verifies in the browser and offers to save it', async () => {
    const { document: log, key } = await signedLog('ABCD2345', 3);
    replies.set('/rooms/ABCD2345/log?after=0', { ...log, next_after: null });
    replies.set('/rooms/log-keys', { keys: [key] });
    const { ctx } = context();
    renderVerifyRoom(ctx, 'ABCD2345');
    await vi.waitFor(() => expect(byTestId(ctx.main, 'verdict')?.getAttribute('data-verified')).toBe('true'));
    expect(byTestId(ctx.main, 'verdict-title')?.textContent).toBe('Verified 3 entries.');
    expect(byTestId(ctx.main, 'save-log')?.getAttribute('download')).toBe('dicery-ABCD2345-log.json');
    expect(byTestId(ctx.main, 'verify-explained')?.textContent).toContain('does not prove');
  });

  it('refuses a log signed by a key the server does not publish', async () => {
    const { document: log } = await signedLog('ABCD2345', 2);
    const other = await signedLog('ABCD2345', 1);
    replies.set('/rooms/ABCD2345/log?after=0', { ...log, next_after: null });
    replies.set('/rooms/log-keys', { keys: [other.key] });
    const { ctx } = context();
    renderVerifyRoom(ctx, 'ABCD2345');
    await vi.waitFor(() =>
      expect(byTestId(ctx.main, 'verdict')?.getAttribute('data-verified')).toBe('false'),
    );
    expect(byTestId(ctx.main, 'verdict-title')?.textContent).toBe('This log does NOT verify.');
  });
});

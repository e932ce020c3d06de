// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { claimForm, joinForm } from '../../../web/src/components/join-form.js';
import type { RoomActions } from '../../../web/src/room-actions.js';
import { PLAYER_NAME_MAX_LENGTH } from '../../../web/src/shared.js';
import type { JoinResult } from '../../../web/src/types.js';
import { problemOf, settle } from '../fixtures.js';

afterEach(() => {
  document.body.replaceChildren();
});

const joined = {
  room: { code: 'ABCD2345', name: 'Den' },
  player: { id: 'p1', name: 'Alice' },
  resumed: false,
} as unknown as JoinResult;

function field(form: HTMLElement, testId: string): HTMLInputElement {
  const input = form.querySelector<HTMLInputElement>(`[data-testid="${testId}"]`);
  if (input === null) throw new Error(`no ${testId}`);
  return input;
}

describe('joinForm', () => {
  it('canonicalises the code and refuses one that cannot exist without a request', () => {
    const joinRoom = vi.fn<RoomActions['joinRoom']>();
    const form = joinForm({ joinRoom }, { until: new AbortController().signal, onJoined: vi.fn() });
    document.body.append(form);
    field(form, 'join-code-input').value = 'ab-c';
    field(form, 'player-name-input').value = 'Alice';
    form.requestSubmit();
    expect(joinRoom).not.toHaveBeenCalled();
    expect(field(form, 'join-code-input').getAttribute('aria-invalid')).toBe('true');
    expect(field(form, 'player-name-input').maxLength).toBe(PLAYER_NAME_MAX_LENGTH * 2);
  });

  it('joins with the trimmed name and hands the answer over', async () => {
    const joinRoom = vi.fn<RoomActions['joinRoom']>(async () => ({ ok: true, status: 201, data: joined }));
    const onJoined = vi.fn();
    const form = joinForm({ joinRoom }, { code: 'abcd2345', until: new AbortController().signal, onJoined });
    document.body.append(form);
    field(form, 'player-name-input').value = ' Alice ';
    form.requestSubmit();
    await settle();
    expect(joinRoom).toHaveBeenCalledWith('ABCD2345', 'Alice');
    expect(onJoined).toHaveBeenCalledWith(joined);
  });

  it('has no code field for a fixed room, and puts ROOM_NOT_FOUND on the alert with advice', async () => {
    const joinRoom = vi.fn<RoomActions['joinRoom']>(async () => ({
      ok: false,
      problem: problemOf(404, 'ROOM_NOT_FOUND', 'Room not found.'),
    }));
    const form = joinForm(
      { joinRoom },
      { fixedCode: 'ABCD2345', until: new AbortController().signal, onJoined: vi.fn() },
    );
    document.body.append(form);
    expect(form.querySelector('[data-testid="join-code-input"]')).toBeNull();
    field(form, 'player-name-input').value = 'Alice';
    form.requestSubmit();
    await settle();
    expect(joinRoom).toHaveBeenCalledWith('ABCD2345', 'Alice');
    expect(form.querySelector('[data-testid="join-error"]')?.textContent).toContain(
      'closed rooms cannot be joined',
    );
  });
});

describe('claimForm', () => {
  it('sends the trimmed claim code, and marks the field on CLAIM_CODE_INVALID', async () => {
    const claimSeat = vi.fn<RoomActions['claimSeat']>(async () => ({
      ok: false,
      problem: problemOf(400, 'CLAIM_CODE_INVALID', 'That claim code is not valid.'),
    }));
    const onJoined = vi.fn();
    const form = claimForm(
      { claimSeat },
      { code: 'ABCD2345', until: new AbortController().signal, onJoined },
    );
    document.body.append(form);
    field(form, 'claim-code-input').value = ' ABCD-EFGH-JKMN ';
    form.requestSubmit();
    await settle();
    expect(claimSeat).toHaveBeenCalledWith('ABCD2345', 'ABCD-EFGH-JKMN');
    expect(onJoined).not.toHaveBeenCalled();
    expect(field(form, 'claim-code-input').getAttribute('aria-invalid')).toBe('true');
  });
});

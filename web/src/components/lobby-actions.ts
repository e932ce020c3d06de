/**
 * The lobby's side actions: Leave for players, Stop watching for spectators, Close room (with a
 * confirmation) for the host;
 * once the lobby ends, links to join another room or go home instead.
 */
import { h, setChildren } from '../dom.js';
import { buildAlert } from '../forms.js';
import type { LobbyActions } from '../lobby-controller.js';
import { problemMessage } from '../problem.js';
import type { LobbyStore } from '../store.js';
import { exportPath } from './roll-history.js';
import { watch } from './watch.js';

/**
 * A button that runs `run` once per click (disabled meanwhile) and shows the message it answers,
 * if any, in its own alert; on success the lobby moves on, so it stays disabled.
 */
function runButton(
  label: string,
  ids: { button: string; alert: string },
  run: () => Promise<string | null>,
): HTMLElement {
  const alert = buildAlert(ids.alert);
  const button = h(
    'button',
    { type: 'button', class: 'button button--secondary', 'data-testid': ids.button },
    label,
  );
  button.addEventListener('click', () => {
    button.disabled = true;
    alert.clear();
    void run().then((problem) => {
      if (problem === null) return;
      button.disabled = false;
      alert.show(problem);
    });
  });
  return h('div', { class: 'leave' }, alert.element, button);
}

/** The Leave button with its error alert. */
export function leaveButton(actions: Pick<LobbyActions, 'leave'>): HTMLElement {
  return runButton('Leave room', { button: 'leave-button', alert: 'leave-error' }, () => actions.leave());
}

/**
 * "Stop watching" for a spectator: ends the watch credential on the server (not just in this tab),
 * so the link's spectator slot and this browser's cookie are both gone.
 */
export function stopWatchingButton(actions: Pick<LobbyActions, 'stopWatching'>): HTMLElement {
  return runButton('Stop watching', { button: 'stop-watching-button', alert: 'stop-watching-error' }, () =>
    actions.stopWatching(),
  );
}

/**
 * "Play on another device": asks for a single-use claim code and shows it, with what to do with
 * it. The code moves this seat; this window stops once it is used.
 */
export function claimCodeControl(actions: Pick<LobbyActions, 'claimCode'>): HTMLElement {
  const alert = buildAlert('claim-code-error');
  const output = h('p', { class: 'claim-code-output', 'aria-live': 'polite' });
  const button = h(
    'button',
    { type: 'button', class: 'button button--secondary', 'data-testid': 'claim-code-button' },
    'Play on another device',
  );
  button.addEventListener('click', () => {
    button.disabled = true;
    alert.clear();
    void actions.claimCode().then((result) => {
      button.disabled = false;
      if (!result.ok) {
        alert.show(problemMessage(result.problem));
        return;
      }
      const until = new Date(result.data.expires_at).toLocaleTimeString([], {
        hour: '2-digit',
        minute: '2-digit',
      });
      setChildren(
        output,
        'On the other device, open this room and enter ',
        h('strong', { class: 'room-code', 'data-testid': 'claim-code' }, result.data.claim_code),
        ` before ${until}. It is single-use; this window stops once it is used.`,
      );
    });
  });
  return h('div', { class: 'claim-code-control' }, alert.element, button, output);
}

/**
 * Close room, asking first; focus moves to the confirmation and back on Cancel. The confirmation
 * offers the history's downloads: once closed, the room's history, exports and signed log answer
 * 404 to everyone, the host included (web review 2026-12-06 W6).
 */
export function hostControls(actions: Pick<LobbyActions, 'close'>, code: string): HTMLElement {
  const element = h('div', { class: 'host-controls' });
  const alert = buildAlert('close-room-error');
  const closeButton = h(
    'button',
    { type: 'button', class: 'button button--danger', 'data-testid': 'close-room-button' },
    'Close room',
  );
  const idle = () => setChildren(element, alert.element, closeButton);
  closeButton.addEventListener('click', () => {
    alert.clear();
    const confirm = h(
      'button',
      { type: 'button', class: 'button button--danger', 'data-testid': 'confirm-close-button' },
      'Yes, close it',
    );
    const cancel = h(
      'button',
      { type: 'button', class: 'button button--secondary', 'data-testid': 'cancel-close-button' },
      'Cancel',
    );
    cancel.addEventListener('click', () => {
      idle();
      closeButton.focus();
    });
    confirm.addEventListener('click', () => {
      confirm.disabled = true;
      cancel.disabled = true;
      void actions.close().then((problem) => {
        if (problem === null) return;
        idle();
        alert.show(problem);
      });
    });
    setChildren(
      element,
      h(
        'div',
        { class: 'confirm', role: 'group', 'aria-labelledby': 'confirm-close-text' },
        h(
          'p',
          { id: 'confirm-close-text' },
          'Close this room for everyone? Players can no longer roll or join, and the code stops working. ' +
            'Its roll history cannot be opened afterwards, not even by you: download it first.',
        ),
        h(
          'p',
          { class: 'button-row' },
          h(
            'a',
            {
              class: 'button button--secondary',
              href: exportPath(code, 'json'),
              download: '',
              'data-testid': 'close-export-json',
            },
            'History (JSON)',
          ),
          h(
            'a',
            {
              class: 'button button--secondary',
              href: exportPath(code, 'csv'),
              download: '',
              'data-testid': 'close-export-csv',
            },
            'History (CSV)',
          ),
        ),
        h('div', { class: 'button-row' }, confirm, cancel),
      ),
    );
    confirm.focus();
  });
  idle();
  return element;
}

/** The actions area: the viewer's controls while the lobby is live, then the ways out. */
export function lobbyActions(lobby: LobbyStore, actions: LobbyActions, until: AbortSignal): HTMLElement {
  const element = h('div', { class: 'lobby-actions' });
  const live = [
    lobby.you.player_id === null ? null : leaveButton(actions),
    lobby.you.player_id === null ? null : claimCodeControl(actions),
    lobby.you.spectator === true ? stopWatchingButton(actions) : null,
    lobby.you.host ? hostControls(actions, lobby.code) : null,
  ];
  watch(until, () => {
    if (lobby.ended.value === null) {
      setChildren(element, ...live);
      return;
    }
    setChildren(
      element,
      h(
        'a',
        { class: 'button button--primary', href: '#/join', 'data-testid': 'join-another-link' },
        'Join another room',
      ),
      h('a', { class: 'button button--secondary', href: '#/' }, 'Home'),
    );
  });
  return element;
}

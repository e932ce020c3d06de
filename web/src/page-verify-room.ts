/**
 * `#/rooms/CODE/verify` (issue 14, item 7): checks the room's signed roll log in the browser, or a
 * log file saved earlier, and says what the check proves and what it does not.
 */
import { h, setChildren } from './dom.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import {
  type CheckFailure,
  checkRoomLog,
  fetchPublishedKeys,
  fetchRoomLog,
  readLogFile,
} from './room-log-check.js';
import { roomHash } from './routes.js';
import type { RoomLogDocument, RoomLogKey, RoomLogVerdict } from './shared.js';

/** The verdict as the page words it: a headline and, for a failure, which entries broke. */
export function renderVerdict(verdict: RoomLogVerdict): HTMLElement {
  if (verdict.ok) {
    return h(
      'div',
      { class: 'verdict verdict--ok', 'data-testid': 'verdict', 'data-verified': 'true' },
      h(
        'p',
        { class: 'verdict-title', 'data-testid': 'verdict-title' },
        `Verified ${verdict.entries} ${verdict.entries === 1 ? 'entry' : 'entries'}.`,
      ),
      h(
        'ul',
        {},
        h('li', {}, 'No entry was changed, removed, inserted or reordered between the first and the last.'),
        h(
          'li',
          {},
          verdict.fromGenesis
            ? 'The log starts at the room’s first roll.'
            : 'The log does not start at the room’s first roll (earlier entries are not in it).',
        ),
        h(
          'li',
          {},
          `Secret rolls: ${verdict.revealed} revealed and matching what was committed, ${verdict.secret} still secret.`,
        ),
        h(
          'li',
          {},
          'Last entry’s hash: ',
          h('code', { class: 'hash', 'data-testid': 'verdict-head' }, verdict.head),
          ' — compare it with the hash of the newest roll in a history download you kept (each roll carries its hash) to know nothing was cut off the end.',
        ),
      ),
    );
  }
  return h(
    'div',
    { class: 'verdict verdict--bad alert', 'data-testid': 'verdict', 'data-verified': 'false' },
    h('p', { class: 'verdict-title', 'data-testid': 'verdict-title' }, 'This log does NOT verify.'),
    h(
      'ul',
      {},
      ...verdict.problems.map((problem) =>
        h(
          'li',
          { 'data-testid': 'verdict-problem', 'data-reason': problem.reason },
          problem.index < 0
            ? problem.message
            : `Entry ${problem.index + 1}${problem.seq === null ? '' : ` (roll #${problem.seq})`}: ${problem.message}`,
        ),
      ),
    ),
  );
}

function failure(result: CheckFailure): HTMLElement {
  return h('p', { class: 'alert', 'data-testid': 'verify-error' }, result.message);
}

/** What a check proves and what it does not: the README's "Verifiable rolls", in short. */
function explanation(): HTMLElement {
  return h(
    'details',
    { class: 'card verify-explained', 'data-testid': 'verify-explained' },
    h('summary', {}, h('h2', { class: 'summary-title' }, 'What this check proves, and what it does not')),
    h(
      'p',
      {},
      'Every roll is an entry in the room’s hash chain: each entry holds the hash of the one before it and is signed with the server’s room-log key (a key used for nothing else). A secret roll enters only as a salted hash of its result; revealing it discloses the salt.',
    ),
    h(
      'p',
      {},
      h('strong', {}, 'It proves'),
      ' that no roll between the first and the last entry was changed, removed, inserted or reordered after it was recorded; that this server’s published key signed each entry; and that each revealed secret roll is exactly what was committed when it was rolled.',
    ),
    h(
      'p',
      {},
      h('strong', {}, 'It does not prove'),
      ' that the server’s random numbers were fair (the server rolls and signs what it rolled; a biased generator, or a roll repeated in secret before recording, would not show); that entries after the last one were not dropped (compare the last hash with one you saw live); or anything about a secret roll that is still secret, except that it can no longer change. Whoever runs the server holds the key and could re-sign a whole new chain: the check protects those who kept a hash or a saved log from before.',
    ),
  );
}

/**
 * A link that saves `document` as a JSON file, for `gatehouse verify-room-log FILE` later. The
 * object URL pins the text in memory until `until` aborts (the next check, or leaving the page).
 */
function saveLink(document: RoomLogDocument, until: AbortSignal): HTMLElement {
  const url = URL.createObjectURL(new Blob([JSON.stringify(document)], { type: 'application/json' }));
  until.addEventListener('abort', () => URL.revokeObjectURL(url), { once: true });
  return h(
    'a',
    {
      class: 'button button--secondary button--small',
      href: url,
      download: `dicery-${document.room}-log.json`,
      'data-testid': 'save-log',
    },
    'Save this log',
  );
}

/** `#/rooms/CODE/verify`. */
export function renderVerifyRoom(ctx: PageContext, code: string): void {
  setTitle(`Check room ${code}'s roll log`);
  const { signal } = ctx;
  const result = h('div', { class: 'verify-result', role: 'status', 'data-testid': 'verify-result' });
  const again = h(
    'button',
    { type: 'button', class: 'button button--primary', 'data-testid': 'verify-button' },
    'Check again',
  );
  // Fetched once per page: the keys a log must be signed with are this server's, never a file's.
  let published: Promise<{ ok: true; keys: RoomLogKey[] } | CheckFailure> | undefined;
  const publishedKeys = () => {
    published ??= fetchPublishedKeys().then((keys) => {
      // A failed fetch is not kept: the next check asks again.
      if (!keys.ok) published = undefined;
      return keys;
    });
    return published;
  };

  // One saved log at a time: a new check releases the previous one's object URL.
  let saved: AbortController | undefined;
  async function checkRoom(): Promise<void> {
    saved?.abort();
    const current = new AbortController();
    saved = current;
    signal.addEventListener('abort', () => current.abort(), { once: true });
    again.disabled = true;
    setChildren(result, h('p', { class: 'loading' }, 'Fetching and checking the room’s log…'));
    const [log, keys] = await Promise.all([fetchRoomLog(code, signal), publishedKeys()]);
    if (signal.aborted) return;
    again.disabled = false;
    if (!log.ok) {
      setChildren(result, failure(log));
      return;
    }
    if (!keys.ok) {
      setChildren(result, failure(keys));
      return;
    }
    const verdict = await checkRoomLog(log.document, keys.keys);
    if (signal.aborted) return;
    setChildren(
      result,
      renderVerdict(verdict),
      h('p', { class: 'button-row' }, saveLink(log.document, current.signal)),
    );
  }
  again.addEventListener('click', () => void checkRoom());

  const fileInput = h('input', {
    type: 'file',
    accept: 'application/json,.json',
    id: 'log-file',
    'data-testid': 'log-file-input',
  });
  const ownKeys = h('input', { type: 'checkbox', id: 'log-file-own-keys', 'data-testid': 'own-keys-input' });
  const fileResult = h('div', { class: 'verify-result', role: 'status', 'data-testid': 'file-result' });
  // Files picked in quick succession: only the newest check may write the result.
  let fileChecks = 0;
  async function checkFile(): Promise<void> {
    const file = fileInput.files?.[0];
    if (file === undefined) return;
    const check = ++fileChecks;
    const stale = () => signal.aborted || check !== fileChecks;
    setChildren(fileResult, h('p', { class: 'loading' }, `Checking ${file.name}…`));
    const read = await readLogFile(file);
    if (stale()) return;
    if (!read.ok) {
      setChildren(fileResult, failure(read));
      return;
    }
    let keys: readonly RoomLogKey[] | undefined;
    if (!ownKeys.checked) {
      const fetched = await publishedKeys();
      if (stale()) return;
      if (!fetched.ok) {
        setChildren(fileResult, failure(fetched));
        return;
      }
      keys = fetched.keys;
    }
    const verdict = await checkRoomLog(read.document, keys);
    if (stale()) return;
    setChildren(
      fileResult,
      renderVerdict(verdict),
      keys === undefined
        ? h(
            'p',
            { class: 'aside', 'data-testid': 'own-keys-warning' },
            'Checked against the keys inside the file: this shows the log is consistent, not that this server signed it.',
          )
        : null,
    );
  }
  fileInput.addEventListener('change', () => void checkFile());
  ownKeys.addEventListener('change', () => void checkFile());

  ctx.main.append(
    pageHeading(`Check room ${code}'s roll log`),
    h('p', {}, h('a', { href: roomHash(code), 'data-testid': 'back-to-room' }, 'Back to the room')),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'verify-room-title' },
      h('h2', { id: 'verify-room-title' }, 'This room’s log'),
      h(
        'p',
        { class: 'aside' },
        'Fetched from the server (for the room’s players and host) and checked here, in your browser, against the log keys the server publishes.',
      ),
      result,
      again,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'verify-file-title' },
      h('h2', { id: 'verify-file-title' }, 'Check a saved log'),
      h('p', { class: 'aside' }, 'A log saved from this page or fetched from GET /rooms/{code}/log.'),
      h('div', { class: 'field' }, h('label', { for: 'log-file' }, 'Log file (JSON)'), fileInput),
      h(
        'div',
        { class: 'field' },
        h(
          'label',
          { class: 'checkbox-label', for: 'log-file-own-keys' },
          ownKeys,
          ' Use the keys inside the file (a log from another server)',
        ),
      ),
      fileResult,
    ),
    explanation(),
  );
  void checkRoom();
}

/**
 * A "Copy" button with its status line, for room codes and join links.
 */
import { h } from '../dom.js';

/** A button that copies `text` to the clipboard, and the status element that says how it went. */
export function copyButton(text: string, label: string, testId: string): [HTMLButtonElement, HTMLElement] {
  const status = h('span', { class: 'copy-status', role: 'status' });
  const button = h(
    'button',
    { type: 'button', class: 'button button--secondary', 'data-testid': testId },
    label,
  );
  button.addEventListener('click', () => {
    // The Clipboard API needs a secure context (HTTPS or localhost); elsewhere say so instead.
    const clipboard = typeof navigator.clipboard?.writeText === 'function' ? navigator.clipboard : undefined;
    if (clipboard === undefined) {
      status.textContent = 'Copying is not available here; select the text instead.';
      return;
    }
    clipboard.writeText(text).then(
      () => {
        status.textContent = 'Copied.';
      },
      () => {
        status.textContent = 'Could not copy; select the text instead.';
      },
    );
  });
  return [button, status];
}

/** The join link of a room as players open it (this page's origin and path, `#/join/CODE`). */
export function joinUrl(joinHash: string): string {
  return `${location.origin}${location.pathname}${joinHash}`;
}

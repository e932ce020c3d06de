import { type DisplayTextRejection, normalizeDisplayText } from '../../../index.js';

export type { DisplayTextRejection, DisplayTextResult } from '../../../index.js';
export { normalizeDisplayText } from '../../../index.js';

import { PLAYER_NAME_MAX_LENGTH } from '../shared/limits.js';

export { PLAYER_NAME_MAX_LENGTH } from '../shared/limits.js';

/** Result of {@link normalizePlayerName}. */
export type PlayerNameResult =
  | {
      ok: true;
      /** The name to store and show. */
      name: string;
      /** Case-folded name; two names with the same key cannot be present in one room at once. */
      key: string;
    }
  | { ok: false; reason: DisplayTextRejection };

/**
 * Validates a player's display name and derives the key that makes names unique per room
 * ignoring case: 1–{@link PLAYER_NAME_MAX_LENGTH} code points, rules of {@link normalizeDisplayText}.
 *
 * The name is kept as typed (NFC); the key is NFKC and case-folded (the comparison of RFC 8266's
 * nickname profile), so `Ｂｏｂ` (full-width) and `bob` cannot both be present in one room.
 *
 * The key folds case with upper-then-lower casing, which approximates Unicode full case folding
 * (`"STRASSE"`, `"straße"` and `"Straße"` share a key; so do `σ` and final `ς`). It does not catch
 * cross-script look-alikes (Latin `a` vs Cyrillic `а`): that needs the UTS #39 confusables table.
 *
 * @example
 * ```ts
 * normalizePlayerName('  Ｂｏｂ ') // { ok: true, name: 'Ｂｏｂ', key: 'bob' }
 * ```
 */
export function normalizePlayerName(raw: string): PlayerNameResult {
  const result = normalizeDisplayText(raw, PLAYER_NAME_MAX_LENGTH);
  if (!result.ok) return result;
  return { ok: true, name: result.text, key: foldCase(result.text) };
}

function foldCase(text: string): string {
  // NFKC first, so compatibility forms fold with their plain letters; casing can then produce
  // non-NFKC sequences (e.g. "İ" lower-cases to "i" + U+0307): renormalize so equal keys are equal strings.
  return text.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/** Most code points in a player name. */
export const PLAYER_NAME_MAX_LENGTH = 32;

/** Why a piece of display text was rejected. */
export type DisplayTextRejection = 'empty' | 'too_long' | 'invalid_characters';

/** Result of {@link normalizeDisplayText}. */
export type DisplayTextResult = { ok: true; text: string } | { ok: false; reason: DisplayTextRejection };

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
 * Characters display text may not contain, after NFKC:
 * - `Cc` controls (NUL, newlines, ESC…), which break logs, SSE framing and terminals;
 * - `Cf` format characters: bidi overrides (U+202E can make a name read backwards, "Trojan
 *   Source"), zero-width spaces and joiners (invisible variants of another player's name), BOM;
 * - `Zl`/`Zp` line and paragraph separators;
 * - `Cs` lone surrogates (not valid UTF-8, so not storable faithfully), `Co` private use and `Cn`
 *   unassigned code points, whose rendering nobody can predict.
 *
 * Rejecting `Cf` also rejects ZWJ emoji sequences (👩‍💻); single emoji are fine.
 */
const FORBIDDEN_CHARACTERS = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

/**
 * Raw input longer than this (UTF-16 units) is rejected before normalizing, so the work done for
 * one request stays bounded whatever a client sends. NFKC can grow a string, so this is checked
 * again, in code points, afterwards.
 */
const MAX_RAW_LENGTH = 1024;

/**
 * Normalizes short user-chosen text shown to other people (room names, player names, roll labels):
 * NFKC (so full-width and other compatibility forms collapse to their plain letters), every run of
 * spaces becomes one space (`"a  b"` cannot pose as `"a b"`), ends are trimmed, and unsafe
 * characters, tabs and newlines included, are refused rather than stripped (stripping would let
 * `"Al\u200Bice"` become `"Alice"` silently).
 *
 * @param raw - Text as received.
 * @param maxLength - Most code points allowed after normalizing (emoji count as one).
 */
export function normalizeDisplayText(raw: string, maxLength: number): DisplayTextResult {
  if (raw.length > MAX_RAW_LENGTH) return { ok: false, reason: 'too_long' };
  const normalized = raw.normalize('NFKC');
  // Refuse before collapsing whitespace: `\s` also matches U+FEFF and U+2028, which must be
  // rejected, not turned into spaces. What `\s` still matches afterwards is only `Zs` spaces.
  if (FORBIDDEN_CHARACTERS.test(normalized)) return { ok: false, reason: 'invalid_characters' };
  const text = normalized.replace(/\s+/gu, ' ').trim();
  if (text === '') return { ok: false, reason: 'empty' };
  if (countCodePoints(text) > maxLength) return { ok: false, reason: 'too_long' };
  return { ok: true, text };
}

/**
 * Validates a player's display name and derives the key that makes names unique per room
 * ignoring case: 1–{@link PLAYER_NAME_MAX_LENGTH} code points, rules of {@link normalizeDisplayText}.
 *
 * The key folds case with upper-then-lower casing, which approximates Unicode full case folding
 * (`"STRASSE"`, `"straße"` and `"Straße"` share a key; so do `σ` and final `ς`). It does not catch
 * cross-script look-alikes (Latin `a` vs Cyrillic `а`): that needs the UTS #39 confusables table.
 *
 * @example
 * ```ts
 * normalizePlayerName('  Ｂｏｂ ') // { ok: true, name: 'Bob', key: 'bob' }
 * ```
 */
export function normalizePlayerName(raw: string): PlayerNameResult {
  const result = normalizeDisplayText(raw, PLAYER_NAME_MAX_LENGTH);
  if (!result.ok) return result;
  return { ok: true, name: result.text, key: foldCase(result.text) };
}

function foldCase(text: string): string {
  // Casing can produce non-NFKC sequences (e.g. "İ" lower-cases to "i" + U+0307); renormalize so
  // equal keys are equal strings.
  return text.toUpperCase().toLowerCase().normalize('NFKC');
}

function countCodePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

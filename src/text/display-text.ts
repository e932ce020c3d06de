/** Why a piece of display text was rejected. */
export type DisplayTextRejection = 'empty' | 'too_long' | 'invalid_characters';

/** Result of {@link normalizeDisplayText}. */
export type DisplayTextResult = { ok: true; text: string } | { ok: false; reason: DisplayTextRejection };

/**
 * Characters display text may not contain (checked after NFC):
 * - `Cc` controls (NUL, newlines, ESC…), which break logs, SSE framing, terminals and PostgreSQL
 *   `text` (NUL);
 * - `Cf` format characters, among them the bidi embeddings and overrides U+202A–U+202E and
 *   isolates U+2066–U+2069 (U+202E makes a name read backwards: "Trojan Source", CVE-2021-42574),
 *   the zero-width space, non-joiner and joiner U+200B–U+200D, the word joiner U+2060 and the BOM
 *   U+FEFF (invisible variants of someone else's name);
 * - `Zl`/`Zp` line and paragraph separators;
 * - `Cs` unpaired surrogates (not valid UTF-8, so not storable faithfully), `Co` private use and
 *   `Cn` unassigned code points, whose rendering nobody can predict.
 *
 * Rejecting `Cf` also rejects ZWJ emoji sequences (👩‍💻); single emoji are fine.
 */
const FORBIDDEN_CHARACTERS = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

/** Variation selectors: default-ignorable, but they choose the glyph of the character before them. */
const VARIATION_SELECTOR = String.raw`[\u180B-\u180D\u180F\uFE00-\uFE0F\u{E0100}-\u{E01EF}]`;

/**
 * Invisible characters of other categories than `Cf` (checked after NFC; red-team 2026-12e J4):
 * Unicode's `Default_Ignorable_Code_Point`s draw as nothing (UAX #44; UTS #39 §4's identifier
 * profile and UTS #55 exclude them), and some are `Mn` or `Lo`: U+034F COMBINING GRAPHEME JOINER,
 * the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, the Khmer inherent vowels U+17B4–U+17B5.
 * `"Alice\u034F"` would show as `"Alice"` and compare as another name (a second "Alice", a ban
 * dodged). Variation selectors are kept where they select something: U+FE0F after an emoji
 * (`❤️`, keycaps `1️⃣`), ideographic variation sequences after a CJK ideograph, Mongolian free
 * variation selectors after a Mongolian letter, one each; after anything else (`"Alice\uFE0F"`) they are
 * refused. Comparison keys built from display text should still drop them (`"Bob1\uFE0F"` draws
 * as `"Bob1"`).
 */
const INVISIBLE_CHARACTERS = new RegExp(
  // No look-behind (the web bundle runs this too, and Safari before 16.4 has none): a selector
  // is refused at the start or after a character that takes none, another selector included.
  String.raw`(?!${VARIATION_SELECTOR})\p{Default_Ignorable_Code_Point}|(?:^|[^\p{Emoji}\p{Ideographic}\u1820-\u1878\u1880-\u18AA])${VARIATION_SELECTOR}`,
  'u',
);

/**
 * Blank characters that are not Unicode white space (`\s`) but draw as one: U+2800 BRAILLE PATTERN
 * BLANK. They are collapsed and trimmed like spaces, so `"Alice\u2800"` is `"Alice"`.
 */
const BLANKS = /[\s\u2800]+/gu;

/**
 * Raw input longer than this (UTF-16 units) is rejected before normalizing, so the work done for
 * one request stays bounded whatever a client sends.
 */
export const DISPLAY_TEXT_MAX_RAW_LENGTH = 1024;

/**
 * The one rule for short text that people choose and other people see: full names, player names,
 * the names and labels apps keep (clothes names, Dicery's names and labels).
 *
 * - NFC (W3C Character Model: Normalization), so one text typed with precomposed or combining
 *   accents is one string. Not NFKC: that rewrites what the person wrote (`²` → `2`, `ﬁ` → `fi`,
 *   full-width forms); comparisons that must ignore such differences (player-name uniqueness)
 *   derive their own key.
 * - Unsafe and invisible characters (`FORBIDDEN_CHARACTERS`, `INVISIBLE_CHARACTERS`) are
 *   refused, never stripped: stripping would turn `"Al\u200Bice"` into `"Alice"` silently.
 * - Every run of spaces and blanks (`BLANKS`) becomes one space (`"a  b"` cannot pose as `"a b"`)
 *   and the ends are trimmed.
 * - Length is counted in code points (an emoji is one), after normalizing.
 *
 * @param raw - Text as received.
 * @param maxLength - Most code points allowed after normalizing.
 */
export function normalizeDisplayText(raw: string, maxLength: number): DisplayTextResult {
  if (raw.length > DISPLAY_TEXT_MAX_RAW_LENGTH) return { ok: false, reason: 'too_long' };
  // A lone surrogate survives `normalize`, and the `Cs` test below catches it; test before
  // collapsing whitespace, since `\s` also matches U+FEFF and U+2028, which must be refused.
  const normalized = raw.normalize('NFC');
  if (FORBIDDEN_CHARACTERS.test(normalized) || INVISIBLE_CHARACTERS.test(normalized))
    return { ok: false, reason: 'invalid_characters' };
  const text = normalized.replace(BLANKS, ' ').trim();
  if (text === '') return { ok: false, reason: 'empty' };
  if (countCodePoints(text) > maxLength) return { ok: false, reason: 'too_long' };
  return { ok: true, text };
}

/**
 * What to tell a person whose text was refused, for a field error (`"name must …"`).
 *
 * @param reason - The rejection from {@link normalizeDisplayText}.
 * @param maxLength - The limit that was applied.
 */
export function describeDisplayTextRejection(reason: DisplayTextRejection, maxLength: number): string {
  switch (reason) {
    case 'empty':
      return 'must not be empty';
    case 'too_long':
      return `must be at most ${maxLength} characters`;
    case 'invalid_characters':
      return 'must not contain control, formatting (bidi, zero-width), invisible or unassigned characters';
  }
}

/** Number of Unicode code points in `text` (what people call characters, emoji counting as one). */
export function countCodePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

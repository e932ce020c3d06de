import type unhomoglyph from 'unhomoglyph';
import { type DisplayTextRejection, normalizeDisplayText } from '../../../index.js';
import { requireOnFirstUse } from './require-on-first-use.js';

export type { DisplayTextRejection, DisplayTextResult } from '../../../index.js';
export { normalizeDisplayText } from '../../../index.js';

import { PLAYER_NAME_MAX_LENGTH } from '../shared/limits.js';

export { PLAYER_NAME_MAX_LENGTH } from '../shared/limits.js';

/**
 * Names no player may take, compared by their key (so `HOST`, `Ｈｏｓｔ` and `Нost` too): a player
 * called "Host" or "GM" could pass their rolls off as the game master's (red-team F8).
 */
export const RESERVED_PLAYER_NAMES: readonly string[] = [
  'Host',
  'GM',
  'Game Master',
  'DM',
  'Admin',
  'Administrator',
  'Moderator',
  'Server',
  'System',
  'Dicery',
  'Gatehouse',
];

/** Why {@link normalizePlayerName} refused a name: a display-text rule, or a reserved name. */
export type PlayerNameRejection = DisplayTextRejection | 'reserved';

/** Result of {@link normalizePlayerName}. */
export type PlayerNameResult =
  | {
      ok: true;
      /** The name to store and show. */
      name: string;
      /**
       * The name's confusable skeleton, case-folded; two names with the same key cannot be present
       * in one room at once, and a ban holds every name with its key.
       */
      key: string;
      /**
       * The key as it was before confusables were folded (NFKC and case only): bans recorded then
       * carry it, so a join is checked against both.
       */
      legacyKey: string;
    }
  | { ok: false; reason: PlayerNameRejection };

/**
 * Validates a player's display name and derives the key that makes names unique per room:
 * 1–{@link PLAYER_NAME_MAX_LENGTH} code points, rules of {@link normalizeDisplayText}, not one of
 * {@link RESERVED_PLAYER_NAMES}.
 *
 * The name is kept as typed (NFC). The key ignores case and width (NFKC and case folding, the
 * comparison of RFC 8266's nickname profile, so `Ｂｏｂ` and `bob` cannot both be present), spaces
 * (`A l i c e`), invisible characters (variation selectors), and look-alike characters: it is the UTS #39 §4 confusable skeleton of the folded
 * name, so Cyrillic `Аlice`, `B0b` and `Sarn`/`Sam` collide with `Alice`, `Bob` and each other
 * (red-team F8: a kicked bot came back as a homoglyph of its banned name).
 *
 * Case folding uses upper-then-lower casing, which approximates Unicode full case folding
 * (`"STRASSE"`, `"straße"` and `"Straße"` share a key; so do `σ` and final `ς`).
 *
 * @example
 * ```ts
 * normalizePlayerName('  Ｂｏｂ ') // { ok: true, name: 'Ｂｏｂ', key: 'bob', legacyKey: 'bob' }
 * ```
 */
export function normalizePlayerName(raw: string): PlayerNameResult {
  const result = normalizeDisplayText(raw, PLAYER_NAME_MAX_LENGTH);
  if (!result.ok) return result;
  const key = confusableKey(result.text);
  reservedKeys ??= new Set(RESERVED_PLAYER_NAMES.map(confusableKey));
  if (reservedKeys.has(key)) return { ok: false, reason: 'reserved' };
  return { ok: true, name: result.text, key, legacyKey: foldCase(result.text) };
}

function foldCase(text: string): string {
  // NFKC first, so compatibility forms fold with their plain letters; casing can then produce
  // non-NFKC sequences (e.g. "İ" lower-cases to "i" + U+0307): renormalize so equal keys are equal strings.
  return text.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/**
 * The confusables map, required on the first player name (issue 10, footprint): its table and the
 * regular expression built from it are ≈ 0.8 MiB of heap that a server without Dicery players
 * never needs. A failed load answers 503 (see `requireOnFirstUse`).
 */
const confusables = requireOnFirstUse<typeof unhomoglyph>('unhomoglyph');

/** UTS #39 §4: skeleton(X) = NFD(map(NFD(X))), the map being Unicode's confusables.txt. */
function skeleton(text: string): string {
  return confusables()(text.normalize('NFD')).normalize('NFD');
}

/**
 * The confusable key: the skeleton of the upper-cased name, case-folded, then its skeleton again,
 * folded again, without white space. confusables.txt is case-sensitive and maps many capitals
 * only (Cyrillic `Н` → `H`, but its `н` to a small capital), so the first pass runs on capitals;
 * the second catches lower-case pairs (`rn` → `m`). Both start from the upper-cased name, so names
 * differing only in case share a key. The map comes from `unhomoglyph` (MIT, data only, no
 * dependency) and runs on the server alone: the web bundle does not carry its 100 KB table.
 */
function confusableKey(text: string): string {
  const capitals = text.normalize('NFKC').toUpperCase().normalize('NFKC');
  return foldCase(skeleton(foldCase(skeleton(capitals)))).replace(IGNORED_IN_KEY, '');
}

/**
 * White space, and the default-ignorable code points display text still lets through (variation
 * selectors after an emoji or a digit: `"Bob1\uFE0F"` draws as `"Bob1"`), so they cannot make a
 * second player of one visible name (red-team 2026-12e J4).
 */
const IGNORED_IN_KEY = /[\s\p{Default_Ignorable_Code_Point}]+/gu;

/** The keys of {@link RESERVED_PLAYER_NAMES}, computed with the first name (they need the map). */
let reservedKeys: ReadonlySet<string> | undefined;

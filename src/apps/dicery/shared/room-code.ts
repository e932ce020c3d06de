/**
 * Characters a room code is drawn from: digits and upper-case letters without `0 O 1 I L`, so a
 * code read aloud or copied from a screen cannot be mistyped into another valid code.
 */
export const ROOM_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';

/**
 * Characters in a room code. 31^8 ≈ 8.5 × 10^11 codes (≈ 39.6 bits): guessing a live room by
 * enumeration is hopeless as long as join attempts are rate-limited, which the HTTP layer does.
 */
export const ROOM_CODE_LENGTH = 8;

// Lower-case letters are listed explicitly rather than upper-casing first: `toUpperCase` maps some
// non-ASCII characters to ASCII (`ﬀ` → `FF`), which would let odd input pass as a code.
const ROOM_CODE_CHARACTERS = `[${ROOM_CODE_ALPHABET}${ROOM_CODE_ALPHABET.toLowerCase().replace(/[0-9]/g, '')}]{${ROOM_CODE_LENGTH}}`;
const ROOM_CODE_PATTERN = new RegExp(`^${ROOM_CODE_CHARACTERS}$`);

/**
 * The same rule as {@link normalizeRoomCode}, as a JSON Schema `pattern` (surrounding whitespace
 * allowed, since `normalizeRoomCode` trims it), so a route can refuse a malformed code by schema.
 */
export const ROOM_CODE_INPUT_PATTERN = `^\\s*${ROOM_CODE_CHARACTERS}\\s*$`;

/**
 * Draws a fresh room code from a CSPRNG (Web Crypto's `getRandomValues`, global in Node 20 and in
 * browsers, so this module stays importable by the web UI), so codes of past rooms tell nothing
 * about future ones.
 *
 * Codes are not checked for uniqueness here: the store's primary key does that, and the caller
 * draws again on a collision.
 */
export function generateRoomCode(): string {
  let code = '';
  for (let i = 0; i < ROOM_CODE_LENGTH; i++)
    code += ROOM_CODE_ALPHABET[randomIndex(ROOM_CODE_ALPHABET.length)];
  return code;
}

/**
 * A uniform integer in `0..bound-1`. Draws falling in the incomplete last block of 2^32 are
 * redrawn (rejection sampling), so no index is favoured by modulo bias.
 */
function randomIndex(bound: number): number {
  const limit = 2 ** 32 - (2 ** 32 % bound);
  const draw = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(draw);
    const value = draw[0] ?? 0;
    if (value < limit) return value % bound;
  }
}

/**
 * Canonical form of a room code typed by a person: surrounding whitespace removed, upper-cased.
 *
 * @returns The code, or undefined when it cannot be a room code (wrong length or a character
 *   outside {@link ROOM_CODE_ALPHABET}), so callers can answer "room not found" without a query.
 */
export function normalizeRoomCode(input: string): string | undefined {
  // Bound the work before touching the string; anything this long is not a code anyway.
  if (input.length > 64) return undefined;
  const code = input.trim();
  return ROOM_CODE_PATTERN.test(code) ? code.toUpperCase() : undefined;
}

/**
 * Dicery's length limits on what people type, shared by the server (which enforces them) and the
 * web UI (which sizes its fields and hints from them), so the two cannot disagree. Lengths are in
 * code points after the display-text rule (`src/text/display-text.ts`) has normalized the text.
 *
 * Browser-safe: no imports.
 *
 * @module
 */

/** Most code points in a room name. */
export const ROOM_NAME_MAX_LENGTH = 80;

/** Most code points in a player name. */
export const PLAYER_NAME_MAX_LENGTH = 32;

/** Most code points in a roll label. */
export const ROLL_LABEL_MAX_LENGTH = 64;

import type { Generated } from 'kysely';

/**
 * Dicery's tables (migrations `005-rooms`, `006-room-event-sequence`, `007-room-seats`,
 * `008a-room-host-tools`, `009a-room-log`, `010a-spectator-links`, `011a-spectator-sessions`,
 * `012a-player-activity`, `013a-spectator-networks`, `014a-player-networks`,
 * `015a-closed-room-retention`), for `Kysely<DiceryTables>`.
 */
export interface DiceryTables {
  rooms: RoomsTable;
  room_players: RoomPlayersTable;
  room_events: RoomEventsTable;
  room_bans: RoomBansTable;
  room_log_entries: RoomLogEntriesTable;
  room_log_keys: RoomLogKeysTable;
  room_spectator_links: RoomSpectatorLinksTable;
  room_spectator_sessions: RoomSpectatorSessionsTable;
}

/** Dicery rooms. */
export interface RoomsTable {
  code: string;
  name: string;
  host_user_id: string;
  state: string;
  created_at: number;
  closed_at: number | null;
  /** Sequence number of the room's newest event (0 for none); see migration 006. */
  last_event_seq: Generated<number>;
  /** 1 while the host refuses new players (migration 008a). */
  locked: Generated<number>;
  /** Epoch ms of the newest event, or creation; what the idle sweeper compares. */
  last_activity_at: number | null;
  /**
   * Epoch ms the retention sweep emptied this closed room (migration 015a): its rows are gone and
   * the row itself stays, so its code is never drawn again. Null otherwise.
   */
  purged_at: number | null;
  /** SHA-256 (hex) of the pending host hand-over code, if any. */
  transfer_hash: string | null;
  /** When that code expires, epoch ms. */
  transfer_expires_at: number | null;
}

/** Bans of a room (kick = ban): the name key and the kicked player, whose seat stays refused. */
export interface RoomBansTable {
  id: string;
  room_code: string;
  /** The banned display name, for the host's list. */
  name: string;
  name_key: string;
  /** The kicked player (their row keeps the seat hash), or null for a name-only ban. */
  player_id: string | null;
  created_at: number;
}

/** Players of a room; `left_at` is set when a player leaves or is kicked. */
export interface RoomPlayersTable {
  id: string;
  room_code: string;
  name: string;
  /** Lower-cased NFKC name; unique per room among players still present. */
  name_key: string;
  /**
   * `name_key` while the player is present, NULL once gone. A unique index on
   * `(room_code, present_key)` enforces the per-room name rule (NULLs never collide).
   */
  present_key: string | null;
  joined_at: number;
  left_at: number | null;
  /** `left`, `kicked` or `expired` (the seat expired) once gone. */
  left_reason: string | null;
  /** SHA-256 (hex) of the player's seat secret; unique; kept after a kick so the seat stays refused. */
  seat_hash: string | null;
  /** When the seat expires, epoch ms (sliding: renewed on every resume). */
  seat_expires_at: number | null;
  /** Bumped when the seat moves to another device; room tokens carry it. */
  seat_generation: Generated<number>;
  /** SHA-256 (hex) of the pending claim code, if any. */
  claim_hash: string | null;
  /** When the pending claim code expires, epoch ms. */
  claim_expires_at: number | null;
  /**
   * When the player first used the room after joining (a seat resume or claim, a roll), epoch ms;
   * null while they never have (migration 012a).
   */
  first_active_at: number | null;
  /** The network the player joined from (IPv4 address or IPv6 /48; migration 014a); NULL before it. */
  network: string | null;
}

/** The per-room event log that SSE `Last-Event-ID` resumes from. */
export interface RoomEventsTable {
  /** Internal row key; never sent to clients (it would reveal other rooms' activity). */
  id: Generated<number>;
  room_code: string;
  /** 1, 2, 3… within the room, with no gap: the event id clients see. */
  seq: number;
  type: string;
  /** JSON payload as sent to subscribers. */
  data: string;
  created_at: number;
}

/** The per-room signed hash chain of rolls (migration `009a-room-log`). */
export interface RoomLogEntriesTable {
  room_code: string;
  /** Sequence number of the roll event this entry records. */
  seq: number;
  /** Hash of the room's previous entry (64 zeros for the first). */
  prev_hash: string;
  /** SHA-256 (hex) of `entry`. */
  hash: string;
  /** The exact JSON text hashed and signed. */
  entry: string;
  /** Ed25519 signature (base64url) by `key_id`. */
  signature: string;
  key_id: string;
  /** `room` or `host` (secret). */
  visibility: string;
  player_id: string;
  /** A secret roll's 128-bit salt (hex); never sent before the reveal. */
  salt: string | null;
  /** Sequence number of the `roll_revealed` event, once revealed. */
  revealed_seq: number | null;
}

/** Room-log signing keys (Ed25519), the private half sealed. */
export interface RoomLogKeysTable {
  key_id: string;
  /** `current` for the signing key, NULL for retired ones (unique). */
  slot: string | null;
  /** Raw 32-byte public key, base64url. */
  public_key: string;
  sealed_private_key: string;
  created_at: number;
  retired_at: number | null;
}

/** Live spectator (watch) links of a room (migration `010a-spectator-links`). */
export interface RoomSpectatorLinksTable {
  id: string;
  room_code: string;
  /** SHA-256 (hex) of the link's secret; unique. */
  token_hash: string;
  created_at: number;
  /** When a spectator last opened the link, epoch ms (migration 011a); null before the first. */
  last_opened_at: number | null;
}

/** Spectators of watch links, one per exchange of a link (migration `011a-spectator-sessions`). */
export interface RoomSpectatorSessionsTable {
  id: string;
  link_id: string;
  room_code: string;
  /** SHA-256 (hex) of the spectator's secret (watch cookie or spectator token); unique. */
  token_hash: string;
  created_at: number;
  /** Epoch ms; the row counts for nothing after it and goes when the link is next opened. */
  expires_at: number;
  /** The network it was opened from (IPv4 address or IPv6 /48; migration 013a); NULL before it. */
  network: string | null;
}

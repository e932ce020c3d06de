import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../../../index.js';
import type { PlayerRecord, RoomStore } from '../storage/room-store.js';
import type { DiceryErrorCode } from './errors.js';

/**
 * Most bans one room holds. Only the room's host can add one (each is a kick), so this bounds
 * what a host's own mistakes or scripts can store; beyond it a kick answers `TOO_MANY_BANS` and
 * changes nothing until the host lifts some.
 */
export const MAX_BANS_PER_ROOM = 1000;

/**
 * Bans a kicked player inside the kick's unit of work: their name key (nobody joins under it
 * again) and their player id (whose seat row keeps the seat hash, so that browser stays refused
 * whatever name it types). A name banned already keeps its first ban.
 */
export async function banPlayer(store: RoomStore, player: PlayerRecord, now: number): Promise<void> {
  if ((await store.countBans(player.roomCode)) >= MAX_BANS_PER_ROOM) {
    throw new GatehouseError<DiceryErrorCode>(
      'TOO_MANY_BANS',
      `This room already holds ${MAX_BANS_PER_ROOM} bans, the most allowed; lift some first.`,
    );
  }
  await store.insertBan({
    id: randomUUID(),
    roomCode: player.roomCode,
    name: player.name,
    nameKey: player.nameKey,
    playerId: player.id,
    createdAt: now,
  });
}

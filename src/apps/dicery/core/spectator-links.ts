import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../../../index.js';
import type { RoomStore } from '../storage/room-store.js';
import type { SpectatorLinkRecord } from '../storage/spectator-link-store.js';
import { type DiceryErrorCode, roomNotFound } from './errors.js';
import { findOpenRoom, type RoomChange } from './room-change.js';
import type { Page } from './room-host-tools.js';
import { generateSeatSecret, hashSecret, SEAT_SECRET_MAX_LENGTH } from './seat-secrets.js';

/**
 * Most live watch links one room holds. Only its host creates them, so this bounds what a host's
 * own scripts can store; beyond it a creation answers `TOO_MANY_SPECTATOR_LINKS` until the host
 * revokes one.
 */
export const MAX_SPECTATOR_LINKS_PER_ROOM = 20;

/** A watch link just created: its secret is shown once, to the host, and never stored. */
export interface IssuedSpectatorLink {
  id: string;
  /** The capability: 256 random bits, base64url. */
  secret: string;
  /** Epoch ms. */
  createdAt: number;
}

/** A spectator proven by a watch-link secret: the link, in an open room. */
export interface SpectatorIdentity {
  linkId: string;
  roomCode: string;
}

/**
 * Read-only watch links (issue 14, item 8). A link is a capability: whoever holds its secret may
 * watch the room (rolls as other players see them, presence) and nothing more. A spectator is not
 * a player: no name, no seat, no row in `room_players`, no roll. Every host operation answers
 * `ROOM_NOT_FOUND` to anyone but the room's host, as for a missing room.
 */
export interface SpectatorLinks {
  /**
   * Creates a link, with its `spectator_link_created` event (players learn someone may watch).
   * Throws `TOO_MANY_SPECTATOR_LINKS`, `ROOM_NOT_FOUND`.
   */
  create(code: string, hostUserId: string): Promise<IssuedSpectatorLink>;
  /** The room's live links, newest first. */
  list(code: string, hostUserId: string, limit: number, offset: number): Promise<Page<SpectatorLinkRecord>>;
  /**
   * Revokes a link: its secret stops working at once, and its open streams end after the
   * `spectator_link_revoked` event. Throws `SPECTATOR_LINK_NOT_FOUND`, `ROOM_NOT_FOUND`.
   */
  revoke(code: string, hostUserId: string, linkId: string): Promise<void>;
  /** The spectator a secret proves in open room `code` (normalized), or undefined. Never throws for a bad secret. */
  check(code: string, secret: string): Promise<SpectatorIdentity | undefined>;
}

/** Options of {@link createSpectatorLinks}. */
export interface SpectatorLinksOptions {
  /** Reads outside any transaction. */
  rooms: RoomStore;
  /** The room changes' unit of work (a change and its events commit together). */
  change: RoomChange;
  clock: () => number;
}

/** Creates the {@link SpectatorLinks}. */
export function createSpectatorLinks(options: SpectatorLinksOptions): SpectatorLinks {
  const { rooms, change, clock } = options;

  async function hostedRoom(store: RoomStore, rawCode: string, hostUserId: string) {
    const room = await findOpenRoom(store, rawCode);
    if (room.hostUserId !== hostUserId) throw roomNotFound();
    return room;
  }

  return {
    async create(code, hostUserId) {
      const secret = generateSeatSecret();
      const id = randomUUID();
      const createdAt = clock();
      await change(async (store, emit) => {
        const room = await hostedRoom(store, code, hostUserId);
        // The event first: its append row-locks the room (PostgreSQL) or holds the one writer
        // (SQLite) until commit, so concurrent creations are counted one at a time and the cap is exact.
        await emit(room.code, 'spectator_link_created', { link_id: id }, createdAt);
        await store.spectators.insertLink({
          id,
          roomCode: room.code,
          tokenHash: hashSecret(secret),
          createdAt,
        });
        if ((await store.spectators.countLinks(room.code)) > MAX_SPECTATOR_LINKS_PER_ROOM) {
          throw new GatehouseError<DiceryErrorCode>(
            'TOO_MANY_SPECTATOR_LINKS',
            `This room already has ${MAX_SPECTATOR_LINKS_PER_ROOM} watch links, the most allowed; revoke one first.`,
          );
        }
      });
      return { id, secret, createdAt };
    },

    async list(code, hostUserId, limit, offset) {
      const room = await hostedRoom(rooms, code, hostUserId);
      const [items, total] = await Promise.all([
        rooms.spectators.listLinks(room.code, limit, offset),
        rooms.spectators.countLinks(room.code),
      ]);
      return { items, total };
    },

    revoke: (code, hostUserId, linkId) =>
      change(async (store, emit) => {
        const room = await hostedRoom(store, code, hostUserId);
        if (!(await store.spectators.deleteLink(room.code, linkId))) {
          throw new GatehouseError<DiceryErrorCode>(
            'SPECTATOR_LINK_NOT_FOUND',
            'No such watch link in this room.',
          );
        }
        // Streams opened with the link end on this event (and, should the bus lose it, at the
        // next heartbeat's re-check, which finds the link gone).
        await emit(room.code, 'spectator_link_revoked', { link_id: linkId }, clock());
      }),

    async check(code, secret) {
      if (secret === '' || secret.length > SEAT_SECRET_MAX_LENGTH) return undefined;
      const link = await rooms.spectators.findLinkByHash(code, hashSecret(secret));
      if (link === undefined) return undefined;
      const room = await rooms.findRoom(code);
      if (room === undefined || room.state !== 'open') return undefined;
      return { linkId: link.id, roomCode: link.roomCode };
    },
  };
}

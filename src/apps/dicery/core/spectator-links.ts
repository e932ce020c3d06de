import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../../../index.js';
import type { RoomStore } from '../storage/room-store.js';
import type { SpectatorLinkRecord } from '../storage/spectator-link-store.js';
import { type DiceryErrorCode, roomNotFound } from './errors.js';
import { findOpenRoom, lockOpenRoom, type RoomChange } from './room-change.js';
import type { Page } from './room-host-tools.js';
import { generateSeatSecret, hashSecret, SEAT_SECRET_MAX_LENGTH } from './seat-secrets.js';

/**
 * How a spectator's own credential begins (the watch cookie's value, or a spectator bearer token):
 * it tells it apart from a room token (a JWT) and from an account token at a glance, before any
 * lookup.
 */
export const SPECTATOR_TOKEN_PREFIX = 'dicery_spectator_';

/** Seconds a spectator's credential lasts (the watch cookie's Max-Age); revoking the link ends it sooner. */
export const SPECTATOR_SESSION_TTL_SECONDS = 30 * 24 * 3600;

/** A watch link just created: its secret is shown once, to the host, and never stored. */
export interface IssuedSpectatorLink {
  id: string;
  /** The capability: 256 random bits, base64url. */
  secret: string;
  /** Epoch ms. */
  createdAt: number;
}

/**
 * A spectator proven by their own credential: one exchange of a watch link, in an open room. Read
 * budgets and stream caps count per `sessionId` (each viewer on their own) and per `linkId` (the
 * link's whole audience).
 */
export interface SpectatorIdentity {
  sessionId: string;
  linkId: string;
  roomCode: string;
}

/** A spectator's credential just issued: its secret goes into the watch cookie or the answer, once. */
export interface OpenedSpectatorSession extends SpectatorIdentity {
  /** {@link SPECTATOR_TOKEN_PREFIX} and 256 random bits (base64url); the server keeps its SHA-256. */
  secret: string;
  /** Epoch ms. */
  expiresAt: number;
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
  /**
   * Exchanges a watch link's secret for a spectator's own credential in open room `code`
   * (normalized), from client `network` (an IPv4 address or IPv6 /48), or undefined when the secret
   * is no live link of it. Beyond `maxSpectatorsPerLink`, the oldest spectator of the network
   * holding the most ends (and the link's expired ones), in the same transaction.
   */
  open(code: string, linkSecret: string, network: string): Promise<OpenedSpectatorSession | undefined>;
  /**
   * The spectator a credential ({@link OpenedSpectatorSession.secret}) proves in open room `code`
   * (normalized), or undefined. Never throws for a bad secret.
   */
  check(code: string, secret: string): Promise<SpectatorIdentity | undefined>;
  /** Ends a spectator's credential ("Stop watching"); false when it was not (or no longer) live. */
  end(code: string, secret: string): Promise<boolean>;
}

/** Options of {@link createSpectatorLinks}. */
export interface SpectatorLinksOptions {
  /** Reads outside any transaction. */
  rooms: RoomStore;
  /** The room changes' unit of work (a change and its events commit together). */
  change: RoomChange;
  clock: () => number;
  /**
   * Live links one room holds (`MAX_WATCH_LINKS_PER_ROOM`). Only its host creates them, so this
   * bounds what a host's own scripts can store; beyond it `TOO_MANY_SPECTATOR_LINKS`.
   * @default 20
   */
  maxLinksPerRoom?: number;
  /**
   * Spectators one link has at once (`MAX_SPECTATORS_PER_WATCH_LINK`); opening it beyond ends the
   * oldest of the network holding the most.
   * @default 100
   */
  maxSpectatorsPerLink?: number;
}

/** Whether `secret` has the shape of a spectator credential (prefix, bounded length). */
export function looksLikeSpectatorToken(secret: string): boolean {
  return (
    secret.startsWith(SPECTATOR_TOKEN_PREFIX) &&
    secret.length <= SPECTATOR_TOKEN_PREFIX.length + SEAT_SECRET_MAX_LENGTH
  );
}

/** Creates the {@link SpectatorLinks}. */
export function createSpectatorLinks(options: SpectatorLinksOptions): SpectatorLinks {
  const { rooms, change, clock } = options;
  const maxLinks = options.maxLinksPerRoom ?? 20;
  const maxSpectators = options.maxSpectatorsPerLink ?? 100;

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
        const room = await lockOpenRoom(store, code, hostUserId);
        // The event first: its append row-locks the room (PostgreSQL) or holds the one writer
        // (SQLite) until commit, so concurrent creations are counted one at a time and the cap is exact.
        await emit(room.code, 'spectator_link_created', { link_id: id }, createdAt);
        await store.spectators.insertLink({
          id,
          roomCode: room.code,
          tokenHash: hashSecret(secret),
          createdAt,
        });
        if ((await store.spectators.countLinks(room.code)) > maxLinks) {
          throw new GatehouseError<DiceryErrorCode>(
            'TOO_MANY_SPECTATOR_LINKS',
            `This room already has ${maxLinks} watch links, the most allowed; revoke one first.`,
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
        const room = await lockOpenRoom(store, code, hostUserId);
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

    async open(code, linkSecret, network) {
      if (linkSecret === '' || linkSecret.length > SEAT_SECRET_MAX_LENGTH) return undefined;
      const secret = SPECTATOR_TOKEN_PREFIX + generateSeatSecret();
      const now = clock();
      const expiresAt = now + SPECTATOR_SESSION_TTL_SECONDS * 1000;
      return change(async (store) => {
        const room = await store.findRoom(code);
        if (room === undefined || room.state !== 'open') return undefined;
        const link = await store.spectators.findLinkByHash(code, hashSecret(linkSecret));
        // The UPDATE locks the link until commit, and finds it gone if a revocation won the race.
        if (link === undefined || !(await store.spectators.touchLink(code, link.id, now))) return undefined;
        const sessionId = randomUUID();
        await store.spectators.insertSession({
          id: sessionId,
          linkId: link.id,
          roomCode: code,
          tokenHash: hashSecret(secret),
          createdAt: now,
          expiresAt,
          network,
        });
        await store.spectators.trimSessions(link.id, maxSpectators, now, { network, sessionId });
        return { sessionId, linkId: link.id, roomCode: code, secret, expiresAt };
      });
    },

    async check(code, secret) {
      if (!looksLikeSpectatorToken(secret)) return undefined;
      const session = await rooms.spectators.findSessionByHash(code, hashSecret(secret), clock());
      if (session === undefined) return undefined;
      const room = await rooms.findRoom(code);
      if (room === undefined || room.state !== 'open') return undefined;
      return { sessionId: session.id, linkId: session.linkId, roomCode: session.roomCode };
    },

    end: (code, secret) =>
      looksLikeSpectatorToken(secret)
        ? rooms.spectators.deleteSessionByHash(code, hashSecret(secret))
        : Promise.resolve(false),
  };
}

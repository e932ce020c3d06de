import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import {
  enforceRateLimit,
  errorResponses,
  IdParam,
  NoBody,
  PageQuery,
  pageOf,
  problemRef,
  userAuthOf,
} from '../../../http/index.js';
import { formatClaimCode } from '../shared/claim-code.js';
import { ROOM_NAME_MAX_LENGTH } from '../shared/limits.js';
import { HostedRoomSchema, SpectatorLinkCreatedSchema, SpectatorLinkSchema } from '../shared/wire.js';
import type { DiceryContext } from './dicery-context.js';
import { RoomCodeParam } from './room-code-param.js';
import { createRoomJoinLimit } from './room-join-limit.js';
import { RoomSchema, toRoomView } from './room-views.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** A ban (`GET /rooms/{code}/bans`). */
const BanSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String({ description: 'The banned name (refused ignoring case and width)' }),
  banned_at: Type.String({ format: 'date-time' }),
  seat: Type.Boolean({ description: "True when the kicked player's browser (seat) is refused too" }),
});

const TransferCodeSchema = Type.Object({
  transfer_code: Type.String({
    description: 'Give it to the next host; they accept it signed in (`POST /rooms/{code}/host/accept`)',
    examples: ['ABCD-EFGH-JKMN'],
  }),
  expires_at: Type.String({ format: 'date-time' }),
});

const CodeParams = Type.Object({ code: RoomCodeParam });

/** The caller's account, on a route behind an account guard (which set it or refused). */
const authOf = userAuthOf;

/**
 * The host tools' routes (issue 14, item 3): `GET /rooms`, `PATCH /rooms/{code}` (rename, lock),
 * bans, host hand-over. Every route takes the host's account credential (`rooms:host`); a room
 * someone else hosts answers 404 like a missing one.
 */
export function registerRoomHostRoutes(parent: FastifyInstance, context: DiceryContext): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { hostTools, spectators, settings } = context.dicery;
  const { counters, clock } = context.gatehouse;
  const host = app.auth.require({ scopes: ['rooms:host'] });
  const limitJoins = createRoomJoinLimit(context);

  app.get(
    '/rooms',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Your rooms',
        description:
          'The rooms you host, open and closed (by you, or after `ROOM_IDLE_TTL` without an event), newest first.',
        querystring: Type.Object(PageQuery),
        response: { 200: pageOf(HostedRoomSchema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { limit, offset } = request.query;
      const page = await hostTools.listHostedRooms(authOf(request).user.id, limit, offset);
      reply.header('cache-control', 'no-store');
      return {
        items: page.items.map((room) => ({
          code: room.code,
          name: room.name,
          state: room.state,
          locked: room.locked,
          created_at: iso(room.createdAt),
          closed_at: room.closedAt === null ? null : iso(room.closedAt),
          last_activity_at: iso(room.lastActivityAt),
        })),
        total: page.total,
        limit,
        offset,
      };
    },
  );

  app.patch(
    '/rooms/:code',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Rename or lock a room (host)',
        description:
          "Changes the room's `name` and/or `locked`. A locked room refuses new players (403 `ROOM_LOCKED`); " +
          'present players keep playing, and their seats and claim codes keep working. Streams get a ' +
          '`room_updated` event with the new `name` and `locked`.',
        params: CodeParams,
        body: Type.Object(
          {
            name: Type.Optional(
              Type.String({
                maxLength: 1024,
                description: `1–${ROOM_NAME_MAX_LENGTH} characters after normalization`,
              }),
            ),
            locked: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: RoomSchema, ...errorResponses, 404: problemRef },
      },
    },
    async (request) => {
      const { name, locked } = request.body;
      const room = await hostTools.updateRoom(request.params.code, authOf(request).user.id, {
        ...(name === undefined ? {} : { name }),
        ...(locked === undefined ? {} : { locked }),
      });
      return toRoomView(room);
    },
  );

  app.get(
    '/rooms/:code/bans',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Bans of a room (host)',
        description:
          'Removing a player bans them (kick = ban): nobody joins under that name again (403 `PLAYER_BANNED`), ' +
          "and their browser's seat stays refused (403 `PLAYER_REMOVED`) whatever name it types. Newest first.",
        params: CodeParams,
        querystring: Type.Object(PageQuery),
        response: { 200: pageOf(BanSchema), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const { limit, offset } = request.query;
      const page = await hostTools.listBans(request.params.code, authOf(request).user.id, limit, offset);
      reply.header('cache-control', 'no-store');
      return {
        items: page.items.map((ban) => ({
          id: ban.id,
          name: ban.name,
          banned_at: iso(ban.createdAt),
          seat: ban.playerId !== null,
        })),
        total: page.total,
        limit,
        offset,
      };
    },
  );

  app.delete(
    '/rooms/:code/bans/:id',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Lift a ban (host)',
        description:
          'The name may join again, and the banned browser may join as a new player (its old seat is forgotten; ' +
          'the removed player stays removed). 404 `BAN_NOT_FOUND` when the room has no such ban.',
        params: Type.Object({ ...CodeParams.properties, id: IdParam('Ban id') }),
        response: { 204: NoBody(), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      await hostTools.liftBan(request.params.code, authOf(request).user.id, request.params.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/rooms/:code/host',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Hand the room over (host)',
        description:
          'A single-use hand-over code (valid 10 minutes; a new one replaces it). Whoever accepts it signed in ' +
          'with an account that may host rooms (`POST /rooms/{code}/host/accept`) becomes the host: the host is ' +
          'always an account, never an account-less player. You stay host until then.',
        params: CodeParams,
        response: { 201: TransferCodeSchema, ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const issued = await hostTools.issueTransferCode(request.params.code, authOf(request).user.id);
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        transfer_code: formatClaimCode(issued.code),
        expires_at: iso(issued.expiresAt),
      });
    },
  );

  app.post(
    '/rooms/:code/host/accept',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Take a room over',
        description:
          "With the hand-over code the host gave you, you become the room's host (the previous host loses it; " +
          'their streams end after `host_changed`). A wrong, used or expired code answers 400 ' +
          '`TRANSFER_CODE_INVALID`, and so does a room that does not exist or is closed. Attempts count on the same ' +
          'limit as joins (which is what bounds guessing room codes), per client IP and per IPv6 /48 ' +
          '(`ROOM_JOINS_PER_MINUTE`). The room counts on your `MAX_OPEN_ROOMS_PER_HOST` (409 ' +
          '`TOO_MANY_OPEN_ROOMS`, answered only to a right code).',
        params: CodeParams,
        body: Type.Object(
          { transfer_code: Type.String({ maxLength: 64, examples: ['ABCD-EFGH-JKMN'] }) },
          { additionalProperties: false },
        ),
        response: { 200: RoomSchema, ...errorResponses, 409: problemRef, 429: problemRef },
      },
    },
    async (request) => {
      const userId = authOf(request).user.id;
      // One budget with joins and claims: ≈ 59 bits per code make guessing hopeless.
      await limitJoins(request.ip);
      const room = await hostTools.acceptTransfer(request.params.code, userId, request.body.transfer_code);
      return toRoomView(room);
    },
  );
  app.post(
    '/rooms/:code/spectator-links',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Create a watch link (host)',
        description:
          'A read-only capability for the room: whoever holds its `token` may watch (rolls as other players see ' +
          'them, secret rolls as placeholders, and presence) but never roll, take a name or show up as a player. ' +
          'Share it as `/#/watch/{code}?token=…`: in the URL fragment, never sent to a server or in a Referer. ' +
          'The token is shown once (the server keeps its SHA-256). Players get a `spectator_link_created` event. ' +
          'Each person who opens it becomes a spectator of their own (`POST /rooms/{code}/watch`), with their own ' +
          'read budget; at most `MAX_SPECTATORS_PER_WATCH_LINK` at once (opening it beyond ends the oldest of the client network holding the most). ' +
          'A room holds at most `MAX_WATCH_LINKS_PER_ROOM` live links (409 `TOO_MANY_SPECTATOR_LINKS`); an ' +
          'account creates at most `WATCH_LINKS_PER_HOUR_PER_ACCOUNT` per hour (429).',
        params: CodeParams,
        response: {
          201: SpectatorLinkCreatedSchema,
          ...errorResponses,
          404: problemRef,
          409: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      const userId = authOf(request).user.id;
      await enforceRateLimit(
        counters,
        {
          key: `room-watch-link:account:${userId}`,
          max: settings.watchLinksPerHourPerAccount,
          windowMs: 3_600_000,
          message: 'Too many watch links created; try again later.',
        },
        clock,
      );
      const link = await spectators.create(request.params.code, userId);
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({ id: link.id, token: link.secret, created_at: iso(link.createdAt) });
    },
  );

  app.get(
    '/rooms/:code/spectator-links',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Watch links of a room (host)',
        description:
          'The live watch links, newest first. Their tokens are not shown again (only their hashes are kept).',
        params: CodeParams,
        querystring: Type.Object(PageQuery),
        response: { 200: pageOf(SpectatorLinkSchema), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const { limit, offset } = request.query;
      const page = await spectators.list(request.params.code, authOf(request).user.id, limit, offset);
      reply.header('cache-control', 'no-store');
      return {
        items: page.items.map((link) => ({ id: link.id, created_at: iso(link.createdAt) })),
        total: page.total,
        limit,
        offset,
      };
    },
  );

  app.delete(
    '/rooms/:code/spectator-links/:id',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Revoke a watch link (host)',
        description:
          'The link stops working at once, and so does every spectator who opened it: their requests answer 401 ' +
          '`SPECTATOR_LINK_INVALID`, and their open streams end after the `spectator_link_revoked` event ' +
          '(`stream_end` `link_revoked`). 404 ' +
          '`SPECTATOR_LINK_NOT_FOUND` when the room has no such live link.',
        params: Type.Object({ ...CodeParams.properties, id: IdParam('Watch link id') }),
        response: { 204: NoBody(), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      await spectators.revoke(request.params.code, authOf(request).user.id, request.params.id);
      return reply.code(204).send();
    },
  );
}

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import {
  type AuthContext,
  currentCsrfBinding,
  declareLocation,
  enforceRateLimit,
  errorResponses,
  IdParam,
  NoBody,
  problemRef,
  readBearerToken,
  type UserAuthContext,
  userAuthOf,
} from '../../../http/index.js';
import { addressBucket, GatehouseError } from '../../../index.js';
import { type DiceryErrorCode, spectatorLinkInvalid } from '../core/errors.js';
import type { SeatedPlayer } from '../core/room-service.js';
import { looksLikeSeatSecret } from '../core/seat-secrets.js';
import { looksLikeSpectatorToken } from '../core/spectator-links.js';
import { formatClaimCode } from '../shared/claim-code.js';
import { normalizeRoomCode } from '../shared/room-code.js';
import { ClaimCodeSchema, JoinResultSchema, RoomSnapshotSchema } from '../shared/wire.js';
import type { DiceryContext } from './dicery-context.js';
import { installRoomAuth, PLAYER_SECURITY, playerOf, roomOf, VIEWER_SECURITY } from './room-auth.js';
import { RoomCodeParam } from './room-code-param.js';
import {
  readRoomCookie,
  roomCookieName,
  roomCookiePath,
  seatCookieName,
  watchCookieName,
} from './room-cookies.js';
import { type RoomEventsRouteOptions, registerRoomEventsRoute } from './room-events-route.js';
import { createRoomJoinLimit } from './room-join-limit.js';
import { registerRoomLogRoutes } from './room-log-routes.js';
import { createRoomReadLimits, READ_LIMITS_DESCRIPTION } from './room-read-limits.js';
import { RollSchema, RoomSchema, toPlayerView, toRollView, toRoomView } from './room-views.js';

/** The caller's account, on a route behind an account guard (which set it or refused). */
function authOf(request: { auth: AuthContext | null }): UserAuthContext {
  return userAuthOf(request);
}

/** Options of {@link registerRoomRoutes}. */
export interface RoomRoutesOptions {
  /** Options of the SSE route `GET /rooms/{code}/events`. */
  events?: RoomEventsRouteOptions;
}

const CodeParams = Type.Object({ code: RoomCodeParam });

const CsrfHeaders = Type.Object({
  'x-csrf-token': Type.Optional(
    Type.String({
      description:
        'Needed when the room cookie authenticates the call (not with a room bearer token): the token from ' +
        '`GET /auth/csrf` (call it after signing in or out, since it is bound to the account session if any).',
    }),
  ),
});

const MINUTE_MS = 60_000;

const WATCH_DESCRIPTION = `Exchanges a watch link's secret for a **spectator credential of your own**, read-only, valid
30 days unless the host revokes the link first (the server keeps only its SHA-256). Each exchange is one spectator, with
its own read budget (\`ROOM_READS_PER_MINUTE\`, \`ROOM_EXPORTS_PER_MINUTE\`) and stream cap (\`MAX_STREAMS_PER_PLAYER\`), so
a link shared with a whole audience is not one budget that its heaviest viewer spends for everyone; the link's audience
together is bounded too (\`ROOM_READS_PER_MINUTE_PER_WATCH_LINK\`, \`MAX_SPECTATOR_STREAMS_PER_LINK\`), and a link has at
most \`MAX_SPECTATORS_PER_WATCH_LINK\` spectators at once: opening it beyond ends the oldest spectator of the client network
(IPv4 address or IPv6 /48) holding the most, the opening network's own when it holds as many as any and has an older one:
whoever opens a shared link again and again ends their own spectators.

**Cookie transport** (default, for browsers): the answer sets the **watch cookie** \`<prefix>watch_<CODE>\`
(\`__Secure-dicery_watch_<CODE>\`), HttpOnly, SameSite=Lax, \`Path=/rooms/<CODE>\`. **Bearer transport**
(\`"transport": "bearer"\`, for scripts: stock cookie jars never send a \`__Secure-\` cookie over plain http): no cookie;
\`access_token\` (it begins \`dicery_spectator_\`) goes in \`Authorization: Bearer …\` on the read-only routes (the
\`spectatorBearer\` scheme under **Authorize**). \`DELETE /rooms/{code}/watch\` ends either ("Stop watching").

The host creates watch links (\`POST /rooms/{code}/spectator-links\`) and shares them as
\`/#/watch/<CODE>?token=<secret>\`: the secret rides in the URL fragment, which browsers never send to a server, so it
stays out of Referer headers and access logs; the page posts it here once and forgets it.

With the cookie, the read-only room routes answer (snapshot, event stream, history, export, log), showing what other
players see (a secret roll as its placeholder). A spectator is not a player: no name, nothing in the player list or in
\`presence\`, and every player route answers 403 \`SPECTATOR_READ_ONLY\`. When the host revokes the link, every
request with it answers 401 \`SPECTATOR_LINK_INVALID\` and its streams end (\`stream_end\` \`link_revoked\`). A
credential of a closed room answers the same 401: one that proves nothing never learns whether a room exists.

A wrong or revoked secret answers 401 \`SPECTATOR_LINK_INVALID\`, a closed room 404. Attempts count on the join
limit of the client address (\`ROOM_JOINS_PER_MINUTE\`), which is also what bounds how fast one holder of the link can
open it again (and, when the link is full, end its own oldest spectators).`;
const HOUR_MS = 60 * MINUTE_MS;

const JOIN_DESCRIPTION = `Joins an open room as a player; no account needed. A room holds at most
\`MAX_PLAYERS_PER_ROOM\` present players: beyond it, 409 \`ROOM_FULL\` until one leaves or is removed; and at most
\`MAX_PLAYERS_PER_ROOM_PER_NETWORK\` from one client network (an IPv4 address or IPv6 /48): beyond it, 409
\`TOO_MANY_PLAYERS_FROM_NETWORK\`, so whoever has the code cannot fill the room from one address.
A room that holds \`ROOM_MAX_EVENTS\` events takes no more players: 409 \`ROOM_EVENT_LIMIT\`.
Names are unique per room ignoring case, width, spaces and look-alike letters (the UTS #39 confusable skeleton:
\`Аlice\` with a Cyrillic А is \`Alice\`), 409 \`PLAYER_NAME_TAKEN\`; \`Host\`, \`GM\`, \`Admin\`, \`Server\` and
similar names are reserved, 400 \`VALIDATION_FAILED\`.

**Cookie transport** (default, for browsers): the answer sets the room cookie \`<prefix><CODE>\`
(\`__Secure-dicery_room_<CODE>\`, or \`dicery_room_<CODE>\` when the server runs with \`COOKIE_SECURE=false\`)
holding a room token: HttpOnly, SameSite=Lax, \`Path=/rooms/<CODE>\` (so one browser can be in several rooms at
once; this is why the cookie cannot use the \`__Host-\` prefix, which requires \`Path=/\`), Max-Age = the token's
lifetime (at most 12 h). The browser then sends it on every \`/rooms/<CODE>/…\` call by itself; use the code
as this answer spells it (upper case) in those URLs, since cookie paths are case-sensitive.

**In /docs**: Swagger UI cannot set cookies, but it does not need to: "Try it out" here, and the browser stores
the cookie because /docs is served from the same origin; the room routes then work from this page. Unsafe calls
authenticated by the cookie (rolls, leave) also need \`X-CSRF-Token\`: run \`GET /auth/csrf\` and paste its
\`csrf_token\` into the header field.

**Bearer transport** (\`"transport": "bearer"\`, for bots and scripts): no cookie; the token comes back as
\`access_token\`, to send as \`Authorization: Bearer …\` (the \`roomBearer\` scheme under **Authorize**). Bearer
calls need no CSRF token. This is the documented way for **scripts and native apps** to act as a player
without cookies: stock cookie jars (Python's \`http.cookiejar\`, \`requests\`) never send a \`__Secure-\` cookie over
plain \`http://127.0.0.1\`, while the bearer room token works on every player route (room state, event stream,
rolls, leave) until \`expires_at\`.

Player names: 1–32 characters after NFC normalization and trimming, no control or format (bidi, zero-width) characters, unique
in the room ignoring case and width. Unknown and closed rooms answer the same 404. Join attempts (successful or not) are
limited per client IP per minute (\`ROOM_JOINS_PER_MINUTE\`); beyond it, 429 with \`Retry-After\`.`;

const SEAT_DESCRIPTION = `Resumes the player this browser holds a **seat** for, and mints a fresh room token.

A seat is a long-lived, revocable credential: 256 random bits in the HttpOnly cookie \`<prefix>seat_<CODE>\`
(\`__Secure-dicery_seat_<CODE>\`, \`Path=/rooms/<CODE>\`), stored on the server only as a SHA-256 hash. Joining with
the cookie transport sets it; it lasts \`ROOM_SEAT_TTL\` unused, and every resume slides it forward. Room tokens stay
short-lived (\`ROOM_TOKEN_TTL\`); when one expires (401 \`ROOM_TOKEN_EXPIRED\`, or \`stream_end\` with
\`token_expired\`, or \`token_revoked\` after the operator's \`gatehouse revoke-all\`), call this and reconnect.

Answers: 200 with the player (\`resumed: true\`); 401 \`SEAT_INVALID\` (no seat, or given up by leaving); 401
\`SEAT_EXPIRED\` (unused too long: the player is removed, \`player_left\` with \`reason: "expired"\`); 403
\`PLAYER_REMOVED\` (the host removed this player); 404 for unknown and closed rooms. Counted on the join limit.`;

const CLAIM_DESCRIPTION = `Takes a seat to this device with a claim code: one the player got on their old device
(\`POST /rooms/{code}/players/me/claim-code\`) or that the host handed over
(\`POST /rooms/{code}/players/{id}/claim-code\`). The player keeps their name, id and history; they get a new seat
and room token here, and every room token and the seat of the old device stop working (\`SEAT_REPLACED\`).

A code is single-use and lasts 10 minutes. A wrong, used or expired code answers 400 \`CLAIM_CODE_INVALID\`.
Attempts count on the join limit of the client address (\`ROOM_JOINS_PER_MINUTE\`); with ≈ 59 bits per code,
guessing is hopeless, and no per-player lock exists that someone could trigger against a victim.`;

/**
 * Dicery's HTTP surface: create and close rooms (signed-in hosts), join (anyone with the code),
 * snapshot, roll, leave, kick, and the event stream. Call after the Gatehouse plugin.
 */
export function registerRoomRoutes(
  parent: FastifyInstance,
  context: DiceryContext,
  options: RoomRoutesOptions = {},
): void {
  // Handler types come from the route schemas (no casts that could drift from them).
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { rooms, roomTokens } = context.dicery;
  const { counters, clock } = context.gatehouse;
  const { settings } = context.dicery;
  const guards = installRoomAuth(app, context.dicery);
  const host = app.auth.require({ scopes: ['rooms:host'] });
  const limitReads = createRoomReadLimits(context);

  const roomCookie = (code: string) => ({
    // `__Secure-` (not `__Host-`) because the path is the room's own (RFC 6265bis §4.1.3).
    name: roomCookieName(app.cookiePolicy, code),
    attributes: { ...app.cookiePolicy.httpOnly, path: roomCookiePath(code) },
  });

  // The seat cookie sits beside the room cookie, same path and flags; only its lifetime differs.
  const seatCookie = (code: string) => ({
    name: seatCookieName(app.cookiePolicy, code),
    attributes: { ...app.cookiePolicy.httpOnly, path: roomCookiePath(code) },
  });
  const seatOf = (request: FastifyRequest, reply: FastifyReply, code: string): Promise<string | undefined> =>
    readRoomCookie({
      request,
      reply,
      cookies: app.cookiePolicy,
      name: seatCookie(code).name,
      code,
      // Opaque secrets: only their shape can be judged without the database's current state.
      couldBeOurs: looksLikeSeatSecret,
    });

  /**
   * Answers a seated join, resume or claim: mints a room token for the seat's generation, sets
   * the room and seat cookies, and never lets the answer be cached (it carries credentials).
   */
  const sendSeated = async (
    reply: FastifyReply,
    room: { code: string; name: string },
    seated: SeatedPlayer,
  ) => {
    const { player, seat } = seated;
    const issued = await roomTokens.issue(room.code, player.id, player.seatGeneration);
    reply.header('cache-control', 'no-store');
    const cookie = roomCookie(room.code);
    reply.setCookie(cookie.name, issued.token, { ...cookie.attributes, maxAge: issued.expiresIn });
    const seatJar = seatCookie(room.code);
    reply.setCookie(seatJar.name, seat.secret, {
      ...seatJar.attributes,
      maxAge: Math.max(1, Math.floor((seat.expiresAt - clock()) / 1000)),
    });
    return reply.code(seated.resumed ? 200 : 201).send({
      room: { code: room.code, name: room.name },
      player: { id: player.id, name: player.name },
      expires_at: new Date(issued.expiresAt).toISOString(),
      resumed: seated.resumed,
      seat_expires_at: new Date(seat.expiresAt).toISOString(),
    });
  };

  /** Counts one hit on `key` per minute; beyond `max`, 429 with Retry-After. */
  const limit = (key: string, max: number, message: string) =>
    enforceRateLimit(counters, { key, max, windowMs: MINUTE_MS, message }, clock);
  const limitJoins = createRoomJoinLimit(context);

  app.post(
    '/rooms',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Create a room',
        description:
          'Creates an open Dicery room hosted by you. Share its `code` with the players.\n\n' +
          'Creation attempts are limited per account (`ROOMS_PER_HOUR_PER_ACCOUNT`) and per client IP ' +
          '(`ROOMS_PER_HOUR_PER_IP`) per hour: beyond either, 429 `TOO_MANY_REQUESTS` with `Retry-After`. A host ' +
          'may have at most `MAX_OPEN_ROOMS_PER_HOST` rooms open at once: beyond it, 409 `TOO_MANY_OPEN_ROOMS` ' +
          '(close one first).',
        body: Type.Object(
          { name: Type.String({ maxLength: 1024, description: '1–80 characters after normalization' }) },
          { additionalProperties: false },
        ),
        response: {
          201: declareLocation(RoomSchema, 'The new room: `/rooms/{code}`'),
          ...errorResponses,
          409: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      const { name } = request.body;
      const hostId = authOf(request).user.id;
      // Each room multiplies what one client can hold (streams, players, event logs), so creation
      // is rate-limited like joins. The IP limit comes first: once an address is refused, its
      // requests add nothing to the per-account counter.
      await enforceRateLimit(
        counters,
        {
          key: `room-create:ip:${addressBucket(request.ip)}`,
          max: settings.roomsPerHourPerIp,
          windowMs: HOUR_MS,
          message: 'Too many rooms created from this address; try again later.',
        },
        clock,
      );
      await enforceRateLimit(
        counters,
        {
          key: `room-create:account:${hostId}`,
          max: settings.roomsPerHourPerAccount,
          windowMs: HOUR_MS,
          message: 'Too many rooms created; try again later.',
        },
        clock,
      );
      const room = await rooms.createRoom(hostId, name);
      return reply.code(201).header('location', `/rooms/${room.code}`).send(toRoomView(room));
    },
  );

  app.post(
    '/rooms/:code/join',
    {
      schema: {
        tags: ['rooms'],
        summary: 'Join a room',
        description: JOIN_DESCRIPTION,
        params: CodeParams,
        body: Type.Object(
          {
            player: Type.String({ maxLength: 1024, description: 'Your display name in the room' }),
            transport: Type.Optional(
              Type.Union([Type.Literal('cookie'), Type.Literal('bearer')], {
                default: 'cookie',
                description: '`cookie` (browsers) or `bearer` (token in the body, no cookie)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: JoinResultSchema,
          201: JoinResultSchema,
          400: problemRef,
          403: problemRef,
          404: problemRef,
          409: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      // Join carries no credential, so there is no session to bind a CSRF token to; refusing
      // cross-site requests still stops a page elsewhere from joining rooms in a visitor's name.
      app.csrf.checkOrigin(request);
      await limitJoins(request.ip);
      const { code } = request.params;
      const body = request.body;
      const room = await rooms.getRoom(code);
      if (body.transport !== 'bearer') {
        // The same browser joining again resumes its seat: never a second player (issue 14).
        return sendSeated(
          reply,
          room,
          await rooms.joinSeated(
            room.code,
            body.player,
            await seatOf(request, reply, room.code),
            addressBucket(request.ip, 48),
          ),
        );
      }
      const player = await rooms.join(room.code, body.player, addressBucket(request.ip, 48));
      const issued = await roomTokens.issue(room.code, player.id);
      // The response carries a credential: never cache it (RFC 6749 §5.1 spirit).
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        room: { code: room.code, name: room.name },
        player: { id: player.id, name: player.name },
        expires_at: new Date(issued.expiresAt).toISOString(),
        resumed: false,
        access_token: issued.token,
        token_type: 'bearer',
      });
    },
  );

  app.get(
    '/rooms/:code',
    {
      preValidation: guards.viewer,
      schema: {
        tags: ['rooms'],
        summary: 'Room snapshot',
        description:
          'The room, its present players and recent rolls (oldest first), for its players (room cookie or room ' +
          'bearer token), its host (account credential) and its spectators (watch cookie: `you.spectator` is ' +
          'true; they are never among `players`, and `online.spectators` counts them). Follow `GET /rooms/{code}/events` with ' +
          '`?last_event_id=<last_event_id>` to receive exactly what happened after this snapshot. Event ids ' +
          'are sequence numbers within this room (1, 2, 3… with no gap), unrelated to other rooms. ' +
          READ_LIMITS_DESCRIPTION,
        params: CodeParams,
        security: VIEWER_SECURITY,
        response: {
          200: RoomSnapshotSchema,
          ...errorResponses,
          404: problemRef,
        },
      },
    },
    async (request, reply) => {
      // A page read like history's and the log's (the room, its players, 20 rolls): a viewer
      // looping it over keep-alive cost the database each time with nothing to stop it.
      await limitReads(request, 'page');
      const caller = roomOf(request);
      const snapshot = await rooms.snapshot(caller.code);
      const online = context.dicery.presence.online(caller.code);
      reply.header('cache-control', 'no-store');
      // Secret rolls as this caller may see them (issue 14): a placeholder unless host, roller or revealed.
      const viewer = { playerId: caller.player?.id ?? null, host: caller.host !== null };
      return {
        room: toRoomView(snapshot.room),
        players: snapshot.players.map(toPlayerView),
        rolls: await context.dicery.history.view(snapshot.room.code, snapshot.recentRolls, viewer),
        you: {
          player_id: caller.player?.id ?? null,
          host: caller.host !== null,
          spectator: (caller.spectator ?? null) !== null,
        },
        last_event_id: snapshot.lastEventId,
        online: { player_ids: online.playerIds, host: online.host, spectators: online.spectators },
      };
    },
  );

  // The watch cookie sits beside the room and seat cookies, same path and flags.
  const watchCookie = (code: string) => ({
    name: watchCookieName(app.cookiePolicy, code),
    attributes: { ...app.cookiePolicy.httpOnly, path: roomCookiePath(code) },
  });

  app.post(
    '/rooms/:code/watch',
    {
      schema: {
        tags: ['rooms'],
        summary: 'Watch a room (watch link)',
        description: WATCH_DESCRIPTION,
        params: CodeParams,
        body: Type.Object(
          {
            token: Type.String({ maxLength: 256, description: "The watch link's secret (its `token=`)" }),
            transport: Type.Optional(
              Type.Union([Type.Literal('cookie'), Type.Literal('bearer')], {
                default: 'cookie',
                description: '`cookie` (browsers) or `bearer` (a spectator token in the answer, no cookie)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            room: Type.Object({ code: Type.String(), name: Type.String() }),
            expires_at: Type.String({
              format: 'date-time',
              description: 'When this spectator credential ends',
            }),
            access_token: Type.Optional(
              Type.String({
                description: 'Bearer transport only: the spectator token (`dicery_spectator_…`)',
              }),
            ),
            token_type: Type.Optional(Type.Literal('bearer')),
          }),
          400: problemRef,
          401: problemRef,
          403: problemRef,
          404: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      // No credential yet, so no session to bind a CSRF token to: refuse cross-site requests, as join does.
      app.csrf.checkOrigin(request);
      // Counted on the join limit of the address: a secret has 256 bits, but every guess costs.
      await limitJoins(request.ip);
      const room = await rooms.getRoom(request.params.code);
      const opened = await context.dicery.spectators.open(
        room.code,
        request.body.token,
        addressBucket(request.ip, 48),
      );
      if (opened === undefined) throw spectatorLinkInvalid();
      reply.header('cache-control', 'no-store');
      const answer = {
        room: { code: room.code, name: room.name },
        expires_at: new Date(opened.expiresAt).toISOString(),
      };
      if (request.body.transport === 'bearer') {
        return { ...answer, access_token: opened.secret, token_type: 'bearer' as const };
      }
      const cookie = watchCookie(room.code);
      reply.setCookie(cookie.name, opened.secret, {
        ...cookie.attributes,
        maxAge: Math.max(1, Math.floor((opened.expiresAt - clock()) / 1000)),
      });
      return answer;
    },
  );

  app.delete(
    '/rooms/:code/watch',
    {
      schema: {
        tags: ['rooms'],
        summary: 'Stop watching a room',
        description:
          'Ends this spectator credential on the server (its streams end within a heartbeat) and clears the watch ' +
          'cookie; the link itself stays valid for the others until the host revokes it. With the watch cookie the ' +
          'call needs `X-CSRF-Token` (from `GET /auth/csrf`), like every cookie-authenticated change, so another site ' +
          'cannot stop your watching; with a spectator bearer token it needs none. Answers 204 whether or not the ' +
          'credential was still live (a closed room included), so it is safe to repeat.',
        params: CodeParams,
        headers: CsrfHeaders,
        security: [{ watchCookie: [] }, { spectatorBearer: [] }],
        response: { 204: NoBody(), 403: problemRef },
      },
    },
    async (request, reply) => {
      // No room lookup: a closed room's watch cookie is cleared all the same.
      const code = normalizeRoomCode(request.params.code);
      if (code === undefined) return reply.code(204).send();
      const bearer = readBearerToken(request);
      const cookie = watchCookie(code);
      if (bearer !== undefined && looksLikeSpectatorToken(bearer)) {
        await context.dicery.spectators.end(code, bearer);
        return reply.code(204).send();
      }
      const secret = await readRoomCookie({
        request,
        reply,
        cookies: app.cookiePolicy,
        name: cookie.name,
        code,
        couldBeOurs: looksLikeSpectatorToken,
      });
      if (secret !== undefined) {
        // A cookie rides along on cross-site requests: the double-submit token proves this page sent it.
        app.csrf.verify(request, await currentCsrfBinding(request));
        await context.dicery.spectators.end(code, secret);
      } else {
        app.csrf.checkOrigin(request);
      }
      clearRoomCookie(reply, cookie);
      return reply.code(204).send();
    },
  );

  app.post(
    '/rooms/:code/rolls',
    {
      preValidation: guards.player,
      schema: {
        tags: ['rooms'],
        summary: 'Roll dice',
        description:
          "Rolls on the server with a CSPRNG, stores the result, records it in the room's signed log " +
          "(`GET /rooms/{code}/log`; the answer's `hash` is its entry) and sends it to every stream of the room. " +
          'Notation: `NdS` terms and constants joined by `+`/`-`, each optionally followed by a `[label]`, ' +
          'with keep/drop rules (`4d6kh3`, `2d20kl1`), exploding dice (`8d6!`, at most 10 extra dice per die), ' +
          'rerolls (`4d6r1` while matching, at most 10 times; `4d6ro<3` once), success counting (`6d10>=8`), ' +
          'Fate dice (`4dF`) and advantage (`1d20adv` = `2d20kh1`, `1d20dis` = `2d20kl1`); at most 100 dice, ' +
          '1000 sides, 20 terms, 128 characters. A syntax error or a limit answers 422 ' +
          '`INVALID_DICE_NOTATION` with `position`, the 0-based offset of the problem in `notation`.\n\n' +
          'Rolls are limited per minute per player (`ROOM_ROLLS_PER_MINUTE`) and per client IP ' +
          '(`ROOM_ROLLS_PER_MINUTE_PER_IP`): beyond either, 429 `TOO_MANY_REQUESTS` with `Retry-After`. ' +
          'A room holds at most `ROOM_MAX_EVENTS` events: past it, 409 `ROOM_EVENT_LIMIT` (the host closes the ' +
          'room and opens a new one).',
        params: CodeParams,
        headers: CsrfHeaders,
        body: Type.Object(
          {
            // Longer than the parser's own limit on purpose: an over-long notation is answered by
            // the parser (422 with the position) rather than by schema validation (400).
            notation: Type.String({ maxLength: 1024, examples: ['2d20kh1+5'] }),
            label: Type.Optional(
              Type.Union([Type.String({ maxLength: 1024 }), Type.Null()], {
                description: 'Up to 64 characters',
              }),
            ),
            visibility: Type.Optional(
              Type.Union([Type.Literal('room'), Type.Literal('host')], {
                default: 'room',
                description:
                  '`host`: a secret roll, seen in full by the host and you only; other players get a placeholder ' +
                  '("Pat rolled in secret") on the stream, in the history and exports, until the host reveals it',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        security: PLAYER_SECURITY,
        response: {
          201: RollSchema,
          ...errorResponses,
          404: problemRef,
          429: problemRef,
          422: Type.Object({
            type: Type.String(),
            title: Type.String(),
            status: Type.Integer(),
            detail: Type.String(),
            code: Type.String(),
            position: Type.Integer({ description: '0-based offset of the error in `notation`' }),
          }),
        },
      },
    },
    async (request, reply) => {
      const player = playerOf(request);
      // Each roll is a write and a broadcast to every stream of the room: bound it per player, and
      // per address, since every join makes a new player with an allowance of its own.
      await limit(
        `room-roll:ip:${addressBucket(request.ip)}`,
        settings.roomRollsPerMinutePerIp,
        'Too many rolls from this address; slow down.',
      );
      await limit(`room-roll:player:${player.id}`, settings.roomRollsPerMinute, 'Too many rolls; slow down.');
      const body = request.body;
      const event = await rooms.roll(player.code, player.id, body.notation, body.label, body.visibility);
      return reply.code(201).send(toRollView(event));
    },
  );

  app.delete(
    '/rooms/:code/players/me',
    {
      preValidation: guards.player,
      schema: {
        tags: ['rooms'],
        summary: 'Leave a room',
        description:
          'You leave the room: your name is free again, your token and your seat stop working and both ' +
          'cookies are cleared.',
        params: CodeParams,
        headers: CsrfHeaders,
        security: PLAYER_SECURITY,
        response: { 204: NoBody(), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const player = playerOf(request);
      await rooms.leave(player.code, player.id);
      clearRoomCookie(reply, roomCookie(player.code));
      clearRoomCookie(reply, seatCookie(player.code));
      return reply.code(204).send();
    },
  );

  app.post(
    '/rooms/:code/seat',
    {
      schema: {
        tags: ['rooms'],
        summary: 'Resume your seat',
        description: SEAT_DESCRIPTION,
        params: CodeParams,
        response: {
          200: JoinResultSchema,
          400: problemRef,
          401: problemRef,
          403: problemRef,
          404: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      // A seat is a cookie credential with no session to bind a CSRF token to: refuse cross-site
      // requests (SameSite=Lax already keeps the cookie off cross-site POSTs).
      app.csrf.checkOrigin(request);
      await limitJoins(request.ip);
      const room = await rooms.getRoom(request.params.code);
      const secret = await seatOf(request, reply, room.code);
      if (secret === undefined) {
        throw new GatehouseError<DiceryErrorCode>(
          'SEAT_INVALID',
          'You have no seat in this room; join it first.',
          {
            challenge: { scheme: 'Bearer' },
          },
        );
      }
      return sendSeated(reply, room, await rooms.resumeSeat(room.code, secret));
    },
  );

  app.post(
    '/rooms/:code/claim',
    {
      schema: {
        tags: ['rooms'],
        summary: 'Take your seat to this device',
        description: CLAIM_DESCRIPTION,
        params: CodeParams,
        body: Type.Object(
          { claim_code: Type.String({ maxLength: 64, examples: ['ABCD-EFGH-JKMN'] }) },
          { additionalProperties: false },
        ),
        response: {
          200: JoinResultSchema,
          400: problemRef,
          403: problemRef,
          404: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      app.csrf.checkOrigin(request);
      // Every attempt counts on the join limit of the address, so guessing a code (≈ 59 bits,
      // 10 minutes) is hopeless; nothing is counted per player, so a guesser cannot lock out a victim.
      await limitJoins(request.ip);
      const room = await rooms.getRoom(request.params.code);
      return sendSeated(reply, room, await rooms.claimSeat(room.code, request.body.claim_code));
    },
  );

  app.post(
    '/rooms/:code/players/me/claim-code',
    {
      preValidation: guards.player,
      schema: {
        tags: ['rooms'],
        summary: 'Get a claim code for your seat',
        description:
          'A single-use code (valid 10 minutes) that moves your seat to another device: type it there ' +
          "(`POST /rooms/{code}/claim`). A new code replaces the previous one. Once it is used, this device's " +
          'room token and seat stop working (`SEAT_REPLACED`).',
        params: CodeParams,
        headers: CsrfHeaders,
        security: PLAYER_SECURITY,
        response: { 201: ClaimCodeSchema, ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const player = playerOf(request);
      const issued = await rooms.issueClaimCode(player.code, player.id);
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        claim_code: formatClaimCode(issued.code),
        expires_at: new Date(issued.expiresAt).toISOString(),
      });
    },
  );

  app.post(
    '/rooms/:code/players/:id/claim-code',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Hand a name over (host)',
        description:
          'The host gets a single-use claim code (valid 10 minutes) for a present player, to give to the person ' +
          'who lost their device or cookies: with it they take the name back (`POST /rooms/{code}/claim`), and ' +
          'the old device is signed out of the seat.',
        params: Type.Object({ ...CodeParams.properties, id: IdParam('Player id') }),
        response: { 201: ClaimCodeSchema, ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const { code, id } = request.params;
      const issued = await rooms.issueClaimCode(code, id, authOf(request).user.id);
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        claim_code: formatClaimCode(issued.code),
        expires_at: new Date(issued.expiresAt).toISOString(),
      });
    },
  );

  app.delete(
    '/rooms/:code/players/:id',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Remove a player (host)',
        description:
          "The player's token stops working on its next request and their streams end. A removal is a ban: " +
          "the name cannot join again (403 `PLAYER_BANNED`) and that browser's seat stays refused (403 " +
          '`PLAYER_REMOVED`) until you lift it (`GET /rooms/{code}/bans`, `DELETE /rooms/{code}/bans/{id}`). ' +
          'A room holds at most 1000 bans (409 `TOO_MANY_BANS`).',
        params: Type.Object({ ...CodeParams.properties, id: IdParam('Player id') }),
        response: { 204: NoBody(), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const { code, id } = request.params;
      await rooms.kick(code, authOf(request).user.id, id);
      return reply.code(204).send();
    },
  );

  app.delete(
    '/rooms/:code',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Close a room (host)',
        description: 'Closing is final: every stream of the room ends and the code answers 404 from now on.',
        params: CodeParams,
        response: { 204: NoBody(), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const { code } = request.params;
      await rooms.close(code, authOf(request).user.id);
      return reply.code(204).send();
    },
  );

  registerRoomEventsRoute(app, context, guards, options.events);
  registerRoomLogRoutes(app, context, guards);
}

/** Clears the room cookie with the attributes it was set with, or browsers keep it (RFC 6265bis §5.7). */
function clearRoomCookie(
  reply: FastifyReply,
  cookie: { name: string; attributes: Record<string, unknown> },
): void {
  reply.clearCookie(cookie.name, { ...cookie.attributes, maxAge: 0 });
}

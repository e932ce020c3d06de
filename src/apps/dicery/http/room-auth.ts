import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { currentCsrfBinding, invalidToken, readBearerToken, SAFE_METHODS } from '../../../http/index.js';
import { GatehouseError } from '../../../index.js';
import {
  type DiceryError,
  type DiceryErrorCode,
  playerRemoved,
  roomNotFound,
  seatExpired,
  seatReplaced,
  spectatorLinkInvalid,
  spectatorReadOnly,
} from '../core/errors.js';
import type { PlayerStanding } from '../core/room-service.js';
import { looksLikeRoomToken } from '../core/room-token.js';
import { looksLikeSpectatorToken } from '../core/spectator-links.js';
import type { Dicery } from '../index.js';
import { normalizeRoomCode } from '../shared/room-code.js';
import { readRoomCookie, roomCookieName, watchCookieName } from './room-cookies.js';

/** A player proven by a room token for the room in the URL, still present in it. */
export interface RoomPlayerAuth {
  /** The player's id (the token's `sub`). */
  id: string;
  /** When the room token expires, epoch ms; streams end then. */
  tokenExpiresAt: number;
  /** When the room token was issued, epoch seconds (`iat`); streams end if a revoke-all cuts it off. */
  tokenIssuedAt: number;
  /** The seat generation the token was minted for; a stream ends when the seat moves on. */
  seatGeneration: number;
  /** How the room token arrived. */
  transport: 'cookie' | 'bearer';
}

/** The room's host, proven by an account credential (session cookie or access token). */
export interface RoomHostAuth {
  userId: string;
  /** The account session, so long-lived streams can notice its revocation. */
  sessionId: string;
  transport: 'cookie' | 'bearer';
  /** When the account credential expires, epoch ms (see `AuthContext.expiresAt`); streams end then. */
  expiresAt: number;
  /**
   * The revocation cut-off (`gatehouse revoke-all`) known when the credential was checked, epoch ms:
   * a stream opened with it reads the session again once the cut-off is past this, including one
   * learned while the request was still being set up.
   */
  cutoffSeen: number;
}

/**
 * A spectator proven by a watch link's secret (issue 14, item 8): a principal of its own, never a
 * player and never the host. Only {@link RoomGuards.viewer} admits one.
 */
export interface RoomSpectatorAuth {
  /** The spectator's own credential (one exchange of the link): their read budget and stream cap. */
  sessionId: string;
  /** The watch link; its streams end when the host revokes it. */
  linkId: string;
  /** How the spectator's credential arrived. */
  transport: 'cookie' | 'bearer';
}

/** Who is calling a room route, set by the room guards on `request.room`. */
export interface RoomAuthContext {
  /** The room code, normalized. */
  code: string;
  /** The calling player, or null when only the host's account credential was accepted. */
  player: RoomPlayerAuth | null;
  /** Set when the caller is (also) signed in as the room's host; null otherwise. */
  host: RoomHostAuth | null;
  /**
   * Set when a watch link alone admitted the caller (then `player` and `host` are null); a
   * player or host who also holds a watch link is let in as what they are, never as a spectator.
   */
  spectator?: RoomSpectatorAuth | null;
}

/** Guards for room routes, created by {@link installRoomAuth}. */
export interface RoomGuards {
  /** Requires a player of the room in the URL (room cookie or room bearer token). */
  player: preHandlerAsyncHookHandler;
  /** Requires a player of the room or its host (account session cookie or access token). */
  member: preHandlerAsyncHookHandler;
  /**
   * Requires a member ({@link RoomGuards.member}) or a spectator (watch cookie): the read-only
   * routes (snapshot, stream, history, export, log) use it.
   */
  viewer: preHandlerAsyncHookHandler;
}

/** An OpenAPI security requirement object. */
type SecurityRequirement = Record<string, string[]>;

/** OpenAPI security of routes behind {@link RoomGuards.player} (schemes from `registerOpenApi`). */
export const PLAYER_SECURITY: SecurityRequirement[] = [{ roomCookie: [] }, { roomBearer: [] }];

/** OpenAPI security of routes behind {@link RoomGuards.member}. */
export const MEMBER_SECURITY: SecurityRequirement[] = [
  ...PLAYER_SECURITY,
  { OAuth2PasswordBearer: ['rooms:host'] },
  { sessionCookie: [] },
];

/** OpenAPI security of routes behind {@link RoomGuards.viewer}. */
export const VIEWER_SECURITY: SecurityRequirement[] = [
  ...MEMBER_SECURITY,
  { watchCookie: [] },
  { spectatorBearer: [] },
];

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the room guards; null on routes without one. */
    room: RoomAuthContext | null;
  }
}

/** A room credential found on a request, not yet verified. */
interface RoomCredential {
  token: string;
  transport: RoomPlayerAuth['transport'];
}

/** Outcome of checking one kind of credential: the caller, nobody, or why it was refused. */
type Check<T> = { ok: true; value: T } | { ok: false; error: DiceryError | null };

const HOST_SCOPE = 'rooms:host';

function notMember(message: string): DiceryError {
  return new GatehouseError<DiceryErrorCode>('NOT_ROOM_MEMBER', message);
}

function roomTokenExpired(): DiceryError {
  const description = 'The room token expired.';
  return new GatehouseError<DiceryErrorCode>('ROOM_TOKEN_EXPIRED', description, {
    challenge: { scheme: 'Bearer', error: 'invalid_token', description },
  });
}

/** Why a player who is not (or no longer) present is refused: each cause has its own code. */
export function standingError(standing: Exclude<PlayerStanding, 'present'>): DiceryError {
  switch (standing) {
    case 'kicked':
      return playerRemoved();
    case 'expired':
      return seatExpired();
    case 'replaced':
      return seatReplaced();
    default:
      return notMember('You are no longer in this room.');
  }
}

function noCredential(): DiceryError {
  return new GatehouseError(
    'UNAUTHENTICATED',
    'Join the room first: send its room cookie or a room token as a Bearer token (POST /rooms/{code}/join).',
    { challenge: { scheme: 'Bearer' } },
  );
}

/**
 * Installs `request.room` and returns the room guards. Call once per app, before the room routes.
 *
 * Membership is checked on every request (issue #5: "left or kicked players' tokens stop working
 * on their next request") with `RoomService.isPresent`, two primary-key reads. Room routes read
 * or write the room anyway, so this costs one extra round trip rather than turning a
 * database-free request into one, and it holds across instances without relying on pub/sub
 * delivery (Redis pub/sub is at-most-once). Only the signature check is cached (see
 * `createRoomTokens`).
 */
export function installRoomAuth(app: FastifyInstance, dicery: Dicery): RoomGuards {
  const { rooms, roomTokens } = dicery;
  if (!app.hasRequestDecorator('room')) app.decorateRequest('room', null);

  const codeOf = (request: FastifyRequest): string => {
    // A guard runs before (and for routes beside) the typed handler: read the param, don't assume it.
    const params: unknown = request.params;
    const raw = typeof params === 'object' && params !== null && 'code' in params ? params.code : undefined;
    const code = typeof raw === 'string' ? normalizeRoomCode(raw) : undefined;
    // Same answer as the service gives for unknown and closed rooms.
    if (code === undefined) throw roomNotFound();
    return code;
  };

  /**
   * The room credential of the request: an `Authorization: Bearer` room token, else the room's
   * cookie. `account: true` when the bearer token is not a room token (an account token).
   */
  const findRoomCredential = async (
    request: FastifyRequest,
    reply: FastifyReply,
    code: string,
  ): Promise<RoomCredential | { account: true } | { spectator: true } | null> => {
    const bearer = readBearerToken(request);
    if (bearer !== undefined) {
      if (looksLikeRoomToken(bearer)) return { token: bearer, transport: 'bearer' };
      return looksLikeSpectatorToken(bearer) ? { spectator: true } : { account: true };
    }
    const cookie = await readRoomCookie({
      request,
      reply,
      cookies: app.cookiePolicy,
      name: roomCookieName(app.cookiePolicy, code),
      code,
      // Signed by this server for this room; an expired one may still be the caller's own.
      couldBeOurs: async (value) => {
        const check = await roomTokens.verify(value);
        return check.ok ? check.roomCode === code : check.reason === 'expired';
      },
    });
    return cookie === undefined ? null : { token: cookie, transport: 'cookie' };
  };

  const checkPlayer = async (
    request: FastifyRequest,
    code: string,
    credential: RoomCredential,
  ): Promise<RoomPlayerAuth> => {
    const check = await roomTokens.verify(credential.token);
    // An expired token has its own code, so clients renew it from their seat (or say "your seat
    // expired") and never mistake it for a kick (issue 14).
    if (!check.ok)
      throw check.reason === 'expired' ? roomTokenExpired() : invalidToken('The room token is invalid.');
    if (check.roomCode !== code) throw notMember('This room token is for another room.');
    // Cookies ride along on cross-site requests; bearer tokens never do (same rule as account calls).
    if (credential.transport === 'cookie' && !SAFE_METHODS.has(request.method)) {
      app.csrf.verify(request, await currentCsrfBinding(request));
    }
    const standing = await rooms.standing(code, check.playerId, check.seatGeneration);
    if (standing !== 'present') {
      // Closed (or deleted) rooms answer ROOM_NOT_FOUND, as they do for everyone.
      await rooms.getRoom(code);
      throw standingError(standing);
    }
    return {
      id: check.playerId,
      tokenExpiresAt: check.expiresAt,
      tokenIssuedAt: check.issuedAt,
      seatGeneration: check.seatGeneration,
      transport: credential.transport,
    };
  };

  /** The host by account credential; null when the request carries no account credential. */
  const checkHost = async (request: FastifyRequest, code: string): Promise<RoomHostAuth | null> => {
    // Read before the credential is checked: a cut-off learned after this may not have reached it.
    const cutoffSeen = app.gatehouse.sessions.revocationCutoff();
    // identify() checks a cookie's CSRF token on unsafe methods, as a guard does.
    const auth = await app.auth.identify(request);
    if (auth === null) return null;
    const room = await rooms.getRoom(code);
    if (room.hostUserId !== auth.user.id || !auth.scopes.includes(HOST_SCOPE)) {
      // Someone else's room answers exactly like a missing one: a signed-in account must not be
      // able to test codes (the join limit is what makes guessing them hopeless).
      throw roomNotFound();
    }
    return {
      userId: auth.user.id,
      sessionId: auth.sessionId,
      transport: auth.transport,
      expiresAt: auth.expiresAt,
      cutoffSeen,
    };
  };

  const attempt = async <T>(run: () => Promise<T | null>): Promise<Check<T>> => {
    try {
      const value = await run();
      return value === null ? { ok: false, error: null } : { ok: true, value };
    } catch (error) {
      if (error instanceof GatehouseError) return { ok: false, error };
      throw error;
    }
  };

  /**
   * The spectator credential of the request: a spectator bearer token (`Authorization`), else the
   * watch cookie; undefined when it carries neither.
   */
  const watchCredentialOf = async (
    request: FastifyRequest,
    reply: FastifyReply,
    code: string,
  ): Promise<{ secret: string; transport: RoomSpectatorAuth['transport'] } | undefined> => {
    const bearer = readBearerToken(request);
    if (bearer !== undefined && looksLikeSpectatorToken(bearer))
      return { secret: bearer, transport: 'bearer' };
    const value = await readRoomCookie({
      request,
      reply,
      cookies: app.cookiePolicy,
      name: watchCookieName(app.cookiePolicy, code),
      code,
      // Opaque secrets: only their shape can be judged without the database's current state.
      couldBeOurs: looksLikeSpectatorToken,
    });
    return value === undefined ? undefined : { secret: value, transport: 'cookie' };
  };

  /**
   * The spectator a credential proves. A credential that proves none answers the same whether the
   * room is open, closed or was never made: anyone can send a made-up watch cookie, so telling
   * them apart (it answered 404 for no room) let a client test room codes as fast as the server
   * answers, past `ROOM_JOINS_PER_MINUTE`, which is what keeps a code's 40 bits unguessable.
   */
  const checkSpectator = async (
    code: string,
    credential: { secret: string; transport: RoomSpectatorAuth['transport'] },
  ): Promise<RoomSpectatorAuth> => {
    const identity = await dicery.spectators.check(code, credential.secret);
    if (identity === undefined) throw spectatorLinkInvalid();
    return { sessionId: identity.sessionId, linkId: identity.linkId, transport: credential.transport };
  };

  const player: preHandlerAsyncHookHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const code = codeOf(request);
    const credential = await findRoomCredential(request, reply, code);
    if (credential === null || 'spectator' in credential) {
      // Watching is read-only: a spectator gets a refusal that says so, not "join first".
      const watch = await watchCredentialOf(request, reply, code);
      if (watch !== undefined) {
        await checkSpectator(code, watch);
        throw spectatorReadOnly();
      }
      throw noCredential();
    }
    if ('account' in credential) {
      throw invalidToken('This route takes a room token (POST /rooms/{code}/join), not an account token.');
    }
    request.room = { code, player: await checkPlayer(request, code, credential), host: null };
  };

  const admitMember = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const code = codeOf(request);
    const credential = await findRoomCredential(request, reply, code);
    if (credential !== null && 'spectator' in credential) throw spectatorLinkInvalid();
    const asPlayer: Check<RoomPlayerAuth> =
      credential === null || 'account' in credential
        ? { ok: false, error: null }
        : await attempt(() => checkPlayer(request, code, credential));
    // A room bearer token occupies the Authorization header, so only cookies can prove the host
    // then. A host who also joined as a player in this browser is both.
    const canBeHost = credential === null || 'account' in credential || credential.transport === 'cookie';
    const asHost: Check<RoomHostAuth> = canBeHost
      ? await attempt(() => checkHost(request, code))
      : { ok: false, error: null };
    if (!asPlayer.ok && !asHost.ok) throw asPlayer.error ?? asHost.error ?? noCredential();
    request.room = {
      code,
      player: asPlayer.ok ? asPlayer.value : null,
      host: asHost.ok ? asHost.value : null,
    };
  };

  const member: preHandlerAsyncHookHandler = async (request: FastifyRequest, reply: FastifyReply) =>
    admitMember(request, reply);

  const viewer: preHandlerAsyncHookHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const code = codeOf(request);
    const watch = await watchCredentialOf(request, reply, code);
    if (watch === undefined) return admitMember(request, reply);
    // A spectator bearer token fills the Authorization header: it is what the caller is.
    if (watch.transport === 'cookie') {
      // A member (player or host) holding a watch cookie too is let in as what they are.
      const asMember = await attempt(async () => {
        await admitMember(request, reply);
        return request.room;
      });
      if (asMember.ok) return;
    }
    request.room = { code, player: null, host: null, spectator: await checkSpectator(code, watch) };
  };

  return { player, member, viewer };
}

/** The room guard sets `request.room`; a route behind one can rely on it. */
export function roomOf(request: FastifyRequest): RoomAuthContext {
  if (request.room === null) throw noCredential();
  return request.room;
}

/** The calling player, on routes behind {@link RoomGuards.player}. */
export function playerOf(request: FastifyRequest): RoomPlayerAuth & { code: string } {
  const room = roomOf(request);
  if (room.player === null) throw noCredential();
  return { ...room.player, code: room.code };
}

import type { FastifyInstance } from 'fastify';
import type { SignedIn } from './accounts.js';

/** A room as `POST /rooms` answers it. */
export interface CreatedRoom {
  code: string;
  name: string;
  state: string;
  created_at: string;
}

/** A player joined with bearer transport: ids plus the headers that authenticate as them. */
export interface JoinedPlayer {
  id: string;
  name: string;
  token: string;
  headers: { authorization: string };
}

/** `POST /rooms` as `host`; fails the test unless it answers 201. */
export async function createRoom(
  app: FastifyInstance,
  host: SignedIn,
  name = 'Game night',
): Promise<CreatedRoom> {
  const response = await app.inject({
    method: 'POST',
    url: '/rooms',
    headers: host.headers,
    payload: { name },
  });
  if (response.statusCode !== 201)
    throw new Error(`room creation failed: ${response.statusCode} ${response.body}`);
  return response.json();
}

/** Joins `code` with bearer transport (no cookie); fails the test unless it answers 201. */
export async function joinAsBot(app: FastifyInstance, code: string, player: string): Promise<JoinedPlayer> {
  const response = await app.inject({
    method: 'POST',
    url: `/rooms/${code}/join`,
    payload: { player, transport: 'bearer' },
  });
  if (response.statusCode !== 201) throw new Error(`join failed: ${response.statusCode} ${response.body}`);
  const body = response.json() as { player: { id: string; name: string }; access_token: string };
  return {
    ...body.player,
    token: body.access_token,
    headers: { authorization: `Bearer ${body.access_token}` },
  };
}

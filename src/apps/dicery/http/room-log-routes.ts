import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { errorResponses, problemRef, userAuthOf } from '../../../http/index.js';
import {
  addressBucket,
  type ConcurrencyCap,
  createConcurrencyCaps,
  GatehouseError,
  type ScheduledTimer,
} from '../../../index.js';
import type { DiceryErrorCode } from '../core/errors.js';
import { rollCsvHeader, rollCsvLine } from '../core/roll-export.js';
import { ROLL_HISTORY_MAX_PAGE } from '../core/room-history.js';
import { ROOM_LOG_MAX_PAGE } from '../core/room-log.js';
import { RollRevealedDataSchema, RollViewSchema } from '../shared/wire.js';
import type { DiceryContext } from './dicery-context.js';
import { type RoomGuards, roomOf, VIEWER_SECURITY } from './room-auth.js';
import { RoomCodeParam } from './room-code-param.js';
import { createRoomReadLimits, READ_LIMITS_DESCRIPTION } from './room-read-limits.js';

const CodeParams = Type.Object({ code: RoomCodeParam });

const Sequence = (description: string) =>
  Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description });

const LogKeySchema = Type.Object({
  kid: Type.String(),
  alg: Type.Literal('Ed25519'),
  public_key: Type.String({ description: 'The raw 32-byte Ed25519 public key, base64url' }),
  created_at: Type.String({ format: 'date-time' }),
  retired_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const LogDocumentSchema = Type.Object({
  format: Type.Literal('dicery-room-log/1'),
  room: Type.String(),
  keys: Type.Array(LogKeySchema, { description: 'The keys the entries of this page cite' }),
  entries: Type.Array(
    Type.Object({
      seq: Type.Integer({ description: "The roll's event id in the room" }),
      hash: Type.String({ description: 'SHA-256 (hex) of `entry`' }),
      signature: Type.String({
        description: 'Ed25519 signature (base64url) of "dicery-room-log-v1:" + hash',
      }),
      kid: Type.String(),
      entry: Type.String({ description: 'The exact JSON text that was hashed and signed' }),
      reveal: Type.Optional(
        Type.Object({ salt: Type.String(), content: Type.String(), revealed_seq: Type.Integer() }),
      ),
    }),
  ),
  next_after: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Pass as `after` for the next page; null on the last',
  }),
});

const LOG_DESCRIPTION = `The room's roll log: every roll as an entry of a hash chain, each entry naming the hash of the
one before it and signed with the server's Ed25519 room-log key (\`GET /rooms/log-keys\`), never with a token-signing key.
A secret roll's entry holds only SHA-256(salt ‖ content) with a 128-bit salt; once the host reveals it, \`reveal\`
discloses the salt and content here. Pages of up to ${ROOM_LOG_MAX_PAGE} entries and 128 KiB in sequence order (\`after\`,
\`next_after\`: a page of large rolls holds fewer); join the pages' \`entries\` (and \`keys\`) into one document to verify it with
\`gatehouse verify-room-log FILE\` or the web UI's verify page. For the room's players, its host and its spectators
(watch links): everyone gets the same entries, since a secret roll's entry holds only its commitment until revealed. What a
verification proves, and what it does not (it says nothing about the server's random numbers), is in the README.`;

/**
 * Exports the players and spectators of every network together may hold at once: three quarters of
 * `MAX_EXPORTS_TOTAL` (at least one), the rest kept for host accounts.
 */
export function anonymousShare(maxExportsTotal: number): number {
  return Math.max(1, Math.floor((maxExportsTotal * 3) / 4));
}

/**
 * The history, export, reveal and log routes (issue 14, items 4, 5 and 7). Registered by
 * `registerRoomRoutes`, which owns the room guards.
 */
export function registerRoomLogRoutes(
  parent: FastifyInstance,
  context: DiceryContext,
  guards: RoomGuards,
): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { rooms, history, log, settings } = context.dicery;
  const host = app.auth.require({ scopes: ['rooms:host'] });
  const { clock, scheduler } = context.gatehouse;

  const limitReads = createRoomReadLimits(context);

  // Exports held open at once (per instance). The per-minute limits above bound how often an export
  // starts, not how many run: a client that reads slowly keeps each one open, with a page of rolls
  // and a socket's buffers, up to the time bounds below. So: per caller, per network for the
  // credentials anyone can mint, and for the whole instance.
  const exportSlots = createConcurrencyCaps();
  type ExportCap = ConcurrencyCap & { per: string };

  /**
   * Takes an export slot for this request, or throws 429 `TOO_MANY_EXPORTS` (a caller or network
   * cap) / 503 `SERVICE_UNAVAILABLE` (the instance's), with `Retry-After`. The slot is released
   * when the response closes, which Node signals once whether the body was sent in full, the
   * client went away, or the body's stream failed (Fastify destroys the response then).
   */
  const holdExportSlot = (request: Parameters<typeof roomOf>[0], raw: ServerResponse): void => {
    const caller = roomOf(request);
    const spectator = caller.spectator ?? null;
    const callerCap: ExportCap =
      caller.player !== null
        ? { key: `player:${caller.player.id}`, max: settings.maxExportsPerCaller, per: 'player' }
        : spectator !== null
          ? { key: `spectator:${spectator.sessionId}`, max: settings.maxExportsPerCaller, per: 'spectator' }
          : {
              key: `account:${caller.host?.userId ?? ''}`,
              max: settings.maxExportsPerCaller,
              per: 'account',
            };
    // Players and spectators are free to mint (a join, a watch-link exchange), so one network
    // must not multiply its share by minting more; an IPv6 site routes a /48 (RFC 6177 §3), as the
    // event streams count it. A host account is not counted per network: a stranger on the same
    // network (CGNAT, a campus) could otherwise take every slot and refuse the host its exports.
    // Accounts cost a registration (rate limited per address), and the instance's cap bounds all.
    // Players and spectators together get at most three quarters of the instance's exports, so a
    // flood of them from many networks (each network within its cap) still leaves hosts a quarter.
    const anonymousCaps: ExportCap[] =
      caller.player !== null || spectator !== null
        ? [
            {
              key: `net:${addressBucket(request.ip, 48)}`,
              max: settings.maxExportsPerNetwork,
              per: 'client network',
            },
            { key: 'anonymous', max: anonymousShare(settings.maxExportsTotal), per: 'instance' },
          ]
        : [];
    const totalCap: ExportCap = { key: 'total', max: settings.maxExportsTotal, per: 'instance' };
    const slot = exportSlots.tryAcquire([callerCap, ...anonymousCaps, totalCap]);
    if (!slot.ok) {
      // The instance's share is a capacity limit, not the caller's fault (as for event streams).
      if (slot.cap.per === 'instance') {
        throw new GatehouseError(
          'SERVICE_UNAVAILABLE',
          'This server has as many exports running as it may; try again shortly.',
          { retryAfterSeconds: 10 },
        );
      }
      throw new GatehouseError<DiceryErrorCode>(
        'TOO_MANY_EXPORTS',
        `At most ${slot.cap.max} exports per ${slot.cap.per} at once; wait for one to finish.`,
        { retryAfterSeconds: 5 },
      );
    }
    raw.once('close', slot.release);
    // The client may have gone before the slot was taken: 'close' has then been emitted already.
    if (raw.destroyed) slot.release();
  };

  const stallMs = settings.roomExportStallTimeout * 1000;
  const maxDurationMs = settings.roomExportMaxDuration * 1000;

  /**
   * Bounds how long an export holds its slot (red-team G5): the caps above say how many run, not
   * for how long. A client that stops reading (or drains its socket too slowly for the body's
   * generator to be asked for another roll) is cut after `ROOM_EXPORT_STALL_TIMEOUT`, and any export
   * after `ROOM_EXPORT_MAX_DURATION`, however steadily it reads (a client trickling one byte a
   * minute defeats any inactivity timeout). Destroying the response closes it, which frees the slot
   * and ends the generator. Here rather than only in `gatehouse serve`'s socket timeout, so an
   * application embedding the plugin is bounded too. One timer per export, on the core's scheduler
   * (a test clock drives it), re-armed for whichever bound falls due first and cancelled on close.
   * Returns what the body calls each time it hands out a chunk: that is progress.
   */
  const boundExportTime = (request: { log: FastifyBaseLogger }, raw: ServerResponse): (() => void) => {
    const started = clock();
    let progressed = started;
    let timer: ScheduledTimer | undefined;
    const check = (): void => {
      const now = clock();
      const left = Math.min(progressed + stallMs - now, started + maxDurationMs - now);
      if (left > 0) {
        timer = scheduler.setTimeout(check, left);
        return;
      }
      request.log.info(
        { stalledMs: now - progressed, runningMs: now - started },
        'room export cut short: stalled or past ROOM_EXPORT_MAX_DURATION',
      );
      raw.destroy();
    };
    timer = scheduler.setTimeout(check, Math.min(stallMs, maxDurationMs));
    raw.once('close', () => timer?.cancel());
    if (raw.destroyed) timer.cancel();
    return () => {
      progressed = clock();
    };
  };

  const viewerOf = (request: Parameters<typeof roomOf>[0]) => {
    const caller = roomOf(request);
    return { code: caller.code, viewer: { playerId: caller.player?.id ?? null, host: caller.host !== null } };
  };

  app.get(
    '/rooms/:code/rolls',
    {
      preValidation: guards.viewer,
      schema: {
        tags: ['rooms'],
        summary: 'Roll history',
        description:
          'Every roll of the room, newest first, a page at a time: `before` is an event id (the `next_before` ' +
          `of the previous page; omit it for the newest rolls), \`limit\` at most ${ROLL_HISTORY_MAX_PAGE}; a page also ` +
          'holds at most 128 KiB of rolls, so a page of large rolls holds fewer (follow `next_before` while it is not ' +
          'null). ' +
          'Each roll carries its date (`rolled_at`). Secret rolls appear in full to the host, their roller, and ' +
          'everyone once revealed; to other players and spectators as `{ hidden: true }` placeholders (who and ' +
          'when only). ' +
          READ_LIMITS_DESCRIPTION,
        params: CodeParams,
        querystring: Type.Object(
          {
            before: Type.Optional(Sequence('Only rolls with an id below this')),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: ROLL_HISTORY_MAX_PAGE, default: 50 })),
          },
          { additionalProperties: false },
        ),
        security: VIEWER_SECURITY,
        response: {
          200: Type.Object({
            items: Type.Array(RollViewSchema),
            next_before: Type.Union([Type.Integer(), Type.Null()], {
              description: 'Pass as `before` for older rolls; null when this page reached the first',
            }),
          }),
          ...errorResponses,
          404: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      await limitReads(request, 'page');
      const { code, viewer } = viewerOf(request);
      reply.header('cache-control', 'no-store');
      return history.page(code, viewer, request.query.before, request.query.limit ?? 50);
    },
  );

  app.get(
    '/rooms/:code/rolls/export',
    {
      preValidation: guards.viewer,
      schema: {
        tags: ['rooms'],
        summary: 'Export the roll history',
        description:
          'Every roll of the room up to now, oldest first, as JSON (`format=json`: an array of rolls) or CSV ' +
          '(`format=csv`: id, rolled_at, player, visibility, label, notation, dice, total, hash). Secret rolls are ' +
          'exported as the history shows them to you. CSV cells that a spreadsheet would run as a formula (starting ' +
          "with `=`, `+`, `-`, `@`, tab or CR) are prefixed with `'` (OWASP CSV injection). Streamed page by page; " +
          'a database failure midway cuts the download short (the client sees an incomplete body); memory per ' +
          'download is one page whatever the room holds. Each export reads the whole log, so it is limited per ' +
          'caller (`ROOM_EXPORTS_PER_MINUTE`; each spectator on their own), per client IP ' +
          '(`ROOM_EXPORTS_PER_MINUTE_PER_IP`) and per watch link (`ROOM_EXPORTS_PER_MINUTE_PER_WATCH_LINK`, its ' +
          'spectators together): beyond any, 429 `TOO_MANY_REQUESTS` with `Retry-After`. Exports running at once ' +
          'are capped per caller (`MAX_EXPORTS_PER_CALLER`: a player, a spectator, or a host account across its ' +
          'rooms) and, for players and spectators, per client network (`MAX_EXPORTS_PER_NETWORK`: an IPv4 address ' +
          'or IPv6 /48): beyond either, 429 `TOO_MANY_EXPORTS` with `Retry-After`; and per server instance ' +
          '(`MAX_EXPORTS_TOTAL`, of which players and spectators together get three quarters): beyond it, 503 ' +
          '`SERVICE_UNAVAILABLE` with `Retry-After`. A slot is freed when ' +
          'the download ends, whether it completed, the client went away or it failed; a download whose client ' +
          'takes no data for `ROOM_EXPORT_STALL_TIMEOUT`, or still running after `ROOM_EXPORT_MAX_DURATION`, is ' +
          'cut short (an incomplete body) and its slot freed.',
        params: CodeParams,
        querystring: Type.Object(
          {
            format: Type.Optional(
              Type.Union([Type.Literal('json'), Type.Literal('csv')], { default: 'json' }),
            ),
          },
          { additionalProperties: false },
        ),
        security: VIEWER_SECURITY,
        response: {
          200: {
            description: 'The export',
            content: {
              'application/json': { schema: Type.Array(RollViewSchema) },
              'text/csv': { schema: Type.String() },
            },
          },
          ...errorResponses,
          404: problemRef,
          429: problemRef,
          503: problemRef,
        },
      },
    },
    async (request, reply) => {
      // The slot first: answered from memory, so a refusal costs no counter round trip and spends
      // none of the caller's per-minute exports. Whatever ends the response releases it.
      holdExportSlot(request, reply.raw);
      await limitReads(request, 'export');
      const { code, viewer } = viewerOf(request);
      const csv = request.query.format === 'csv';
      const rolls = history.all(code, viewer);
      const progress = boundExportTime(request, reply.raw);
      async function* body(): AsyncGenerator<string> {
        if (csv) yield rollCsvHeader();
        else yield '[';
        let first = true;
        for await (const roll of rolls) {
          progress();
          yield csv ? rollCsvLine(roll) : `${first ? '' : ','}${JSON.stringify(roll)}`;
          first = false;
        }
        if (!csv) yield ']';
      }
      reply
        .header('cache-control', 'no-store')
        .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="dicery-${code}-rolls.${csv ? 'csv' : 'json'}"`);
      return reply.send(Readable.from(body()));
    },
  );

  app.post(
    '/rooms/:code/rolls/:id/reveal',
    {
      preValidation: host,
      schema: {
        tags: ['rooms'],
        summary: 'Reveal a secret roll (host)',
        description:
          'Shows a secret roll to the whole room: a `roll_revealed` event with the roll, its salt and the committed ' +
          'content, which must hash to the commitment in its log entry. From now on the history shows it in full. ' +
          '404 `ROLL_NOT_FOUND` for an id that is not a secret roll of this room; 409 `ROLL_ALREADY_REVEALED`.',
        params: Type.Object({ ...CodeParams.properties, id: Sequence('The secret roll’s id') }),
        response: {
          201: Type.Object({ id: Type.Integer(), ...RollRevealedDataSchema.properties }),
          ...errorResponses,
          404: problemRef,
          409: problemRef,
        },
      },
    },
    async (request, reply) => {
      // The host guard admits Gatehouse users only; userAuthOf narrows request.auth (401 otherwise).
      const { user } = userAuthOf(request);
      const event = await rooms.reveal(request.params.code, user.id, request.params.id);
      return reply.code(201).send({ id: event.id, ...event.data });
    },
  );

  app.get(
    '/rooms/:code/log',
    {
      preValidation: guards.viewer,
      schema: {
        tags: ['rooms'],
        summary: 'Signed roll log',
        description: `${LOG_DESCRIPTION} ${READ_LIMITS_DESCRIPTION}`,
        params: CodeParams,
        querystring: Type.Object(
          {
            after: Type.Optional(Sequence('Only entries with a seq above this (0 for the first page)')),
            limit: Type.Optional(
              Type.Integer({ minimum: 1, maximum: ROOM_LOG_MAX_PAGE, default: ROOM_LOG_MAX_PAGE }),
            ),
          },
          { additionalProperties: false },
        ),
        security: VIEWER_SECURITY,
        response: { 200: LogDocumentSchema, ...errorResponses, 404: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      await limitReads(request, 'page');
      const { code } = roomOf(request);
      reply.header('cache-control', 'no-store');
      return log.page(code, request.query.after ?? 0, request.query.limit ?? ROOM_LOG_MAX_PAGE);
    },
  );

  app.get(
    '/rooms/log-keys',
    {
      schema: {
        tags: ['rooms'],
        summary: 'Room-log signing keys',
        description:
          'The Ed25519 public keys that sign room logs, current and retired: every key that ever signed an entry ' +
          'stays here. Public, so anyone can check a log they were given against the keys this server publishes.',
        response: { 200: Type.Object({ keys: Type.Array(LogKeySchema) }) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return { keys: await log.keys() };
    },
  );
}

/**
 * Checking a room's signed roll log in the browser (issue 14, item 7): fetch the log page by page
 * and the server's published log keys, then run the server's own verifier
 * (`src/apps/dicery/shared/room-log.ts`, through `shared.ts`: WebCrypto SHA-256 and Ed25519). No
 * DOM here; the page (`page-verify-room.ts`) shows the verdict.
 */
import { api } from './api.js';
import { problemMessage } from './problem.js';
import {
  ROOM_LOG_FORMAT,
  type RoomLogDocument,
  type RoomLogKey,
  type RoomLogVerdict,
  verifyRoomLog,
} from './shared.js';

/**
 * Most log pages (of up to 200 entries and 128 KiB, `ROOM_LOG_MAX_PAGE`, `ROOM_PAGE_MAX_BYTES`)
 * fetched for one check: 10 000 ordinary rolls, far above a real evening's log, but only ≈ 550 of
 * the largest (300 dice each, ≈ 11 entries a page); it bounds what one check holds in memory
 * (≈ 6 MiB), and stays under the server's 120 page reads a minute per member, so "Check again" is
 * not refused at once. A longer log is saved as a file and checked with `gatehouse verify-room-log`.
 */
export const MAX_LOG_PAGES = 50;

/** Largest log file the page reads (the CLI, with the whole heap, takes 64 MiB). */
export const MAX_LOG_FILE_BYTES = 16 * 1024 * 1024;

/** An expected failure, told to the person as it is. */
export type CheckFailure = { ok: false; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `GET /rooms/log-keys`: the keys this server publishes, the ones a log must be signed with. */
export async function fetchPublishedKeys(): Promise<{ ok: true; keys: RoomLogKey[] } | CheckFailure> {
  const result = await api<unknown>('GET', '/rooms/log-keys');
  if (!result.ok)
    return { ok: false, message: `Could not load the server's log keys: ${problemMessage(result.problem)}` };
  const keys = isRecord(result.data) ? result.data.keys : undefined;
  if (!Array.isArray(keys)) return { ok: false, message: 'The server sent no list of log keys.' };
  return { ok: true, keys: keys as RoomLogKey[] };
}

/**
 * The room's whole log as one document (`GET /rooms/{code}/log`, pages joined in order, their keys
 * merged by `kid`), ready for {@link verifyRoomLog} and for saving as a file the CLI checks.
 */
export async function fetchRoomLog(
  code: string,
  signal?: AbortSignal,
): Promise<{ ok: true; document: RoomLogDocument } | CheckFailure> {
  const keys = new Map<string, RoomLogKey>();
  const entries: RoomLogDocument['entries'] = [];
  let room = code;
  let after = 0;
  for (let page = 0; page < MAX_LOG_PAGES; page++) {
    const result = await api<unknown>('GET', `/rooms/${encodeURIComponent(code)}/log?after=${after}`);
    if (signal?.aborted) return { ok: false, message: 'Stopped.' };
    if (!result.ok) return { ok: false, message: problemMessage(result.problem) };
    const data = result.data;
    if (
      !isRecord(data) ||
      data.format !== ROOM_LOG_FORMAT ||
      !Array.isArray(data.entries) ||
      !Array.isArray(data.keys)
    )
      return { ok: false, message: 'The server sent something that is not a room log.' };
    if (typeof data.room === 'string') room = data.room;
    for (const key of data.keys)
      if (isRecord(key) && typeof key.kid === 'string') keys.set(key.kid, key as unknown as RoomLogKey);
    entries.push(...(data.entries as RoomLogDocument['entries']));
    const next = data.next_after;
    if (next === null || next === undefined) {
      return { ok: true, document: { format: ROOM_LOG_FORMAT, room, keys: [...keys.values()], entries } };
    }
    // A page that does not move forward would loop: the server's answer is not a log.
    if (typeof next !== 'number' || !Number.isSafeInteger(next) || next <= after)
      return { ok: false, message: 'The server sent a log page that does not move forward.' };
    after = next;
  }
  return {
    ok: false,
    message: `This log is longer than ${MAX_LOG_PAGES} pages; check it with gatehouse verify-room-log instead.`,
  };
}

/** Reads an uploaded log file; a huge or non-JSON file is a failure, not an exception. */
export async function readLogFile(file: Blob): Promise<{ ok: true; document: unknown } | CheckFailure> {
  if (file.size > MAX_LOG_FILE_BYTES)
    return {
      ok: false,
      message: `The file is larger than ${MAX_LOG_FILE_BYTES / 1024 / 1024} MiB: not a room log.`,
    };
  let text: string;
  try {
    text = await file.text();
  } catch {
    return { ok: false, message: 'The file could not be read.' };
  }
  try {
    return { ok: true, document: JSON.parse(text) };
  } catch {
    return { ok: false, message: 'The file is not JSON.' };
  }
}

/**
 * Verifies `document` against `keys` (the server's published keys), or against the keys inside
 * the document when `keys` is undefined (which shows the log is consistent, not whose it is).
 */
export function checkRoomLog(
  document: unknown,
  keys: readonly RoomLogKey[] | undefined,
): Promise<RoomLogVerdict> {
  return verifyRoomLog(document, keys === undefined ? {} : { trustedKeys: keys });
}

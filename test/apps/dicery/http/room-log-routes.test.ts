import { request } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  type MockInstance,
  vi,
} from 'vitest';
import { ROOM_PAGE_MAX_BYTES } from '../../../../src/apps/dicery/core/page-budget.js';
import { ROOM_LOG_KEYS_MAX_AGE_MS } from '../../../../src/apps/dicery/core/room-log.js';
import { type RoomLogDocument, verifyRoomLog } from '../../../../src/apps/dicery/shared/room-log.js';
import type { RoomLogStore } from '../../../../src/apps/dicery/storage/room-log-store.js';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { buildTestServer, createTestClock, type TestClock } from '../../../../src/testing.js';
import { type SignedIn, signIn } from '../../../support/accounts.js';
import { listenOnLoopback } from '../../../support/listen.js';
import { createRoom, type JoinedPlayer, joinAsBot } from '../../../support/rooms.js';

const NO_ROOM_LIMITS = {
  roomJoinsPerMinute: 10_000,
  roomRollsPerMinute: 10_000,
  roomRollsPerMinutePerIp: 10_000,
  roomsPerHourPerAccount: 10_000,
  roomsPerHourPerIp: 10_000,
  maxOpenRoomsPerHost: 10_000,
  maxStreamsPerAccount: 10_000,
  maxStreamsPerIp: 10_000,
} as const;

/** A stream read as raw bytes (no parsing), so a test can search everything the server sent. */
interface RawStream {
  text(): string;
  /** Resolves once the bytes received contain `marker`. */
  until(marker: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

function openRaw(url: string, headers: Record<string, string>): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
    req.on('error', reject);
    req.on('response', (response) => {
      if (response.statusCode !== 200) {
        reject(new Error(`stream refused: ${response.statusCode}`));
        return;
      }
      let received = '';
      const waiters = new Set<() => void>();
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        received += chunk;
        for (const waiter of waiters) waiter();
      });
      resolve({
        text: () => received,
        until: (marker, timeoutMs = 5000) =>
          new Promise<void>((done, fail) => {
            const timer = setTimeout(() => fail(new Error(`no ${marker} in: ${received}`)), timeoutMs);
            const check = () => {
              if (!received.includes(marker)) return;
              clearTimeout(timer);
              waiters.delete(check);
              done();
            };
            waiters.add(check);
            check();
          }),
        close: () => req.destroy(),
      });
    });
    req.end();
  });
}

describe('Dicery secret rolls, history, exports and the signed log (issue 14, items 4–7)', () => {
  let app: FastifyInstance;
  let base: string;
  let host: SignedIn;
  const open: RawStream[] = [];

  beforeAll(async () => {
    app = await buildTestServer(NO_ROOM_LIMITS);
    base = await listenOnLoopback(app);
    host = await signIn(app);
  });
  afterAll(async () => {
    for (const stream of open) stream.close();
    await app.close();
  });

  async function table() {
    const room = await createRoom(app, host);
    const pat = await joinAsBot(app, room.code, 'Pat');
    const sam = await joinAsBot(app, room.code, 'Sam');
    return { code: room.code, pat, sam };
  }

  const roll = async (
    code: string,
    player: JoinedPlayer,
    body: { notation: string; label?: string; visibility?: 'room' | 'host' },
  ) => {
    const response = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: player.headers,
      payload: body,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as Record<string, unknown> & { id: number; total: number; hash: string };
  };
  const get = (url: string, headers: Record<string, string>) => app.inject({ method: 'GET', url, headers });
  const follow = async (code: string, headers: Record<string, string>, query = '') => {
    const stream = await openRaw(`${base}/rooms/${code}/events${query}`, headers);
    open.push(stream);
    return stream;
  };
  const logOf = async (code: string, headers: Record<string, string>) => {
    const response = await get(`/rooms/${code}/log`, headers);
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as RoomLogDocument & { next_after: number | null };
  };

  it('no byte of a secret roll reaches another player: stream, replay, snapshot, history, exports', async () => {
    const { code, pat, sam } = await table();
    const samLive = await follow(code, sam.headers);
    const hostLive = await follow(code, host.headers);
    await samLive.until('retry:');
    await hostLive.until('retry:');
    const notation = '3D7 + 99991';
    const label = 'Sense motive ZQXJ';
    const secret = await roll(code, pat, { notation, label, visibility: 'host' });
    expect(secret).toMatchObject({ visibility: 'host', hidden: false, notation, label });
    // A public roll after it, so both streams have certainly passed the secret one.
    const after = await roll(code, pat, { notation: '1d4' });
    await samLive.until(`id: ${after.id}\n`);
    await hostLive.until(`id: ${after.id}\n`);

    const total = String(secret.total);
    const terms = JSON.stringify(secret.terms);
    const forbidden = [notation, label, total, terms, '"notation":"3D7'];
    const samBytes = samLive.text();
    for (const needle of forbidden) expect(samBytes).not.toContain(needle);
    // Sam gets the placeholder, with exactly these fields.
    const frame = samBytes.split('\n\n').find((f) => f.startsWith(`id: ${secret.id}\n`));
    const data = JSON.parse(frame?.split('\ndata: ')[1] ?? '{}');
    expect(Object.keys(data).sort()).toEqual([
      'at',
      'hash',
      'hidden',
      'id',
      'player',
      'rolled_at',
      'visibility',
    ]);
    expect(data).toMatchObject({
      hidden: true,
      visibility: 'host',
      player: { name: 'Pat' },
      hash: secret.hash,
    });
    // The host's stream has it in full.
    expect(hostLive.text()).toContain(label);
    expect(hostLive.text()).toContain(`"total":${total}`);

    // Last-Event-ID replay from the start: still the placeholder.
    const replay = await follow(code, { ...sam.headers, 'last-event-id': '0' });
    await replay.until(`id: ${after.id}\n`);
    for (const needle of forbidden) expect(replay.text()).not.toContain(needle);

    // Snapshot, history and both exports as Sam: placeholder only. As Pat (the roller) and the host: in full.
    const samViews = [
      (await get(`/rooms/${code}`, sam.headers)).body,
      (await get(`/rooms/${code}/rolls`, sam.headers)).body,
      (await get(`/rooms/${code}/rolls/export?format=json`, sam.headers)).body,
      (await get(`/rooms/${code}/rolls/export?format=csv`, sam.headers)).body,
      (await get(`/rooms/${code}/log`, sam.headers)).body,
    ];
    for (const body of samViews) {
      expect(body).toContain('Pat');
      for (const needle of forbidden) expect(body).not.toContain(needle);
    }
    const history = (await get(`/rooms/${code}/rolls`, sam.headers)).json();
    expect(history.items.find((r: { id: number }) => r.id === secret.id)).toMatchObject({ hidden: true });
    for (const viewer of [pat, host]) {
      const items = (await get(`/rooms/${code}/rolls`, viewer.headers)).json().items;
      expect(items.find((r: { id: number }) => r.id === secret.id)).toMatchObject({
        notation,
        label,
        total: secret.total,
      });
    }
  });

  it('the host reveals a secret roll: an event for everyone, the history in full, the commitment checks out', async () => {
    const { code, pat, sam } = await table();
    const samLive = await follow(code, sam.headers);
    await samLive.until('retry:');
    const secret = await roll(code, pat, { notation: '2d6', label: 'Hidden ZQXK', visibility: 'host' });
    const publicRoll = await roll(code, pat, { notation: '1d6' });
    const beforeReveal = (await logOf(code, sam.headers)).entries;
    expect(beforeReveal.map((e) => e.reveal)).toEqual([undefined, undefined]);

    const reveal = (by: Record<string, string>, id = secret.id) =>
      app.inject({ method: 'POST', url: `/rooms/${code}/rolls/${id}/reveal`, headers: by });
    // Only the host; players and strangers get the same answer as for no room.
    expect((await reveal(pat.headers)).statusCode).toBe(401);
    const stranger = await signIn(app);
    expect((await reveal(stranger.headers)).json().code).toBe('ROOM_NOT_FOUND');
    expect((await reveal(host.headers, publicRoll.id)).json().code).toBe('ROLL_NOT_FOUND');
    const revealed = await reveal(host.headers);
    expect(revealed.statusCode, revealed.body).toBe(201);
    expect(revealed.json()).toMatchObject({
      roll_id: secret.id,
      roll: { label: 'Hidden ZQXK', total: secret.total },
    });
    expect((await reveal(host.headers)).json().code).toBe('ROLL_ALREADY_REVEALED');

    await samLive.until('event: roll_revealed');
    expect(samLive.text()).toContain('Hidden ZQXK');
    const items = (await get(`/rooms/${code}/rolls`, sam.headers)).json().items;
    expect(items.find((r: { id: number }) => r.id === secret.id)).toMatchObject({
      hidden: false,
      total: secret.total,
    });

    const log = await logOf(code, sam.headers);
    expect(log.entries[0]?.reveal?.salt).toMatch(/^[0-9a-f]{32}$/);
    // The salt was never sent before the reveal.
    expect(samLive.text().split('event: roll_revealed')[0]).not.toContain(log.entries[0]?.reveal?.salt);
    expect(await verifyRoomLog(log)).toMatchObject({
      ok: true,
      entries: 2,
      fromGenesis: true,
      revealed: 1,
      secret: 0,
    });
    // The commitment was in the log before the reveal, unchanged: the reveal checks against it.
    expect(log.entries[0]?.entry).toBe(beforeReveal[0]?.entry);
    const forged = structuredClone(log);
    const first = forged.entries[0];
    if (first?.reveal === undefined) throw new Error('no reveal');
    first.reveal.content = first.reveal.content.replace(/"total":\d+/, '"total":999');
    expect(await verifyRoomLog(forged)).toMatchObject({
      ok: false,
      problems: [{ reason: 'reveal_mismatch' }],
    });
  });

  it('the log verifies, and detects a changed, removed or reordered entry and a forged signature', async () => {
    const { code, pat, sam } = await table();
    const rolled = [];
    for (const notation of ['1d20', '4dF', '1d20adv [init]', '6d10>=8', '8d6!'])
      rolled.push(await roll(code, pat, { notation }));
    const log = await logOf(code, sam.headers);
    expect(log.entries.map((e) => e.seq)).toEqual(rolled.map((r) => r.id));
    // Live roll answers (and events) carry their chain hash.
    expect(log.entries.map((e) => e.hash)).toEqual(rolled.map((r) => r.hash));
    const keys = (await get('/rooms/log-keys', {})).json().keys;
    expect(keys.map((k: { kid: string }) => k.kid)).toContain(log.entries[0]?.kid);
    expect(await verifyRoomLog(log)).toMatchObject({ ok: true, entries: 5, fromGenesis: true });
    expect(await verifyRoomLog(log, { trustedKeys: keys })).toMatchObject({ ok: true });

    const changed = structuredClone(log);
    const second = changed.entries[1];
    if (second === undefined) throw new Error('missing');
    // 99: a total 4dF cannot roll (−4…4), so the entry really changed (4 was a 1-in-81 no-op).
    const tampered = second.entry.replace(/"total":-?\d+/, '"total":99');
    expect(tampered).not.toBe(second.entry);
    second.entry = tampered;
    expect(await verifyRoomLog(changed)).toMatchObject({
      ok: false,
      problems: [{ index: 1, reason: 'hash_mismatch' }],
    });

    const removed = structuredClone(log);
    removed.entries.splice(2, 1);
    expect(await verifyRoomLog(removed)).toMatchObject({
      ok: false,
      problems: [{ index: 2, reason: 'broken_chain' }],
    });

    const reordered = structuredClone(log);
    const [a, b] = [reordered.entries[1], reordered.entries[2]];
    if (a === undefined || b === undefined) throw new Error('missing');
    reordered.entries[1] = b;
    reordered.entries[2] = a;
    const verdict = await verifyRoomLog(reordered);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.problems.map((p) => p.reason)).toContain('broken_chain');

    // A rewritten entry with a recomputed hash still fails: the signature covers the hash.
    const resigned = structuredClone(log);
    const last = resigned.entries[4];
    if (last === undefined) throw new Error('missing');
    // −1: no total 8d6! can roll (it was 48 once in CI, a no-op that then verified).
    const rewritten = last.entry.replace(/"total":-?\d+/, '"total":-1');
    expect(rewritten).not.toBe(last.entry);
    last.entry = rewritten;
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(last.entry));
    last.hash = Buffer.from(digest).toString('hex');
    expect(await verifyRoomLog(resigned)).toMatchObject({
      ok: false,
      problems: [{ reason: 'bad_signature' }],
    });

    // Dropping the first entries is visible too: the log no longer starts at the room's first roll.
    expect(await verifyRoomLog({ ...log, entries: log.entries.slice(1) })).toMatchObject({
      ok: true,
      fromGenesis: false,
    });
    // Garbage is a verdict, never an exception.
    expect(await verifyRoomLog({ nope: 1 })).toMatchObject({
      ok: false,
      problems: [{ reason: 'malformed' }],
    });
  });

  it('concurrent rolls never fork the chain', async () => {
    const { code, pat, sam } = await table();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        roll(code, i % 2 === 0 ? pat : sam, { notation: '1d6', visibility: i % 3 === 0 ? 'host' : 'room' }),
      ),
    );
    const log = await logOf(code, host.headers);
    expect(log.entries).toHaveLength(12);
    expect(await verifyRoomLog(log)).toMatchObject({ ok: true, entries: 12, fromGenesis: true, secret: 4 });
  });

  it('pages the history by event id, newest first, with dates; the log and history are for members only', async () => {
    const { code, pat, sam } = await table();
    const ids = [];
    for (let i = 0; i < 5; i++)
      ids.push((await roll(code, i % 2 ? sam : pat, { notation: `${i + 1}d4` })).id);
    const first = (await get(`/rooms/${code}/rolls?limit=2`, sam.headers)).json();
    expect(first.items.map((r: { id: number }) => r.id)).toEqual([ids[4], ids[3]]);
    expect(first.items[0].rolled_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const second = (
      await get(`/rooms/${code}/rolls?limit=2&before=${first.next_before}`, sam.headers)
    ).json();
    expect(second.items.map((r: { id: number }) => r.id)).toEqual([ids[2], ids[1]]);
    const third = (
      await get(`/rooms/${code}/rolls?limit=2&before=${second.next_before}`, sam.headers)
    ).json();
    expect(third).toEqual({ items: [expect.objectContaining({ id: ids[0] })], next_before: null });
    expect((await get(`/rooms/${code}/rolls?limit=201`, sam.headers)).statusCode).toBe(400);
    expect((await get(`/rooms/${code}/rolls?before=-1`, sam.headers)).statusCode).toBe(400);

    const other = await table();
    for (const url of [`/rooms/${code}/rolls`, `/rooms/${code}/log`, `/rooms/${code}/rolls/export`]) {
      expect((await get(url, {})).statusCode).toBe(401);
      expect((await get(url, other.pat.headers)).statusCode).toBe(403);
    }
  });

  it('D1: pages of the largest rolls are cut by size, and following next_before / next_after still reads every roll once', async () => {
    // Counted by rolls alone, a page of 200 rolls of 300 dice was ≈ 2.2 MB and ≈ 110 ms of the event
    // loop: one address within its read limit took the whole core (red-team 2026-12g D1).
    const { code, pat } = await table();
    const ids: number[] = [];
    for (let i = 0; i < 30; i++)
      ids.push((await roll(code, pat, { notation: '100d2ro1!kh99', label: 'x'.repeat(64) })).id);
    const secret = await roll(code, pat, { notation: '100d2ro1!kh99', visibility: 'host' });
    ids.push(secret.id);
    const revealed = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls/${secret.id}/reveal`,
      headers: host.headers,
    });
    expect(revealed.statusCode).toBe(201);

    const history: number[] = [];
    let before: number | null = Number.MAX_SAFE_INTEGER;
    let pages = 0;
    while (before !== null) {
      const page = await get(`/rooms/${code}/rolls?limit=200&before=${before}`, pat.headers);
      expect(page.statusCode).toBe(200);
      expect(page.body.length).toBeLessThan(ROOM_PAGE_MAX_BYTES * 1.25);
      const body = page.json() as { items: { id: number }[]; next_before: number | null };
      history.push(...body.items.map((item) => item.id));
      before = body.next_before;
      pages += 1;
    }
    expect(pages).toBeGreaterThan(1);
    expect(history).toEqual([...ids].reverse());

    const entries: RoomLogDocument['entries'] = [];
    const keys = new Map<string, RoomLogDocument['keys'][number]>();
    let after: number | null = 0;
    pages = 0;
    while (after !== null) {
      const page = await get(`/rooms/${code}/log?limit=200&after=${after}`, pat.headers);
      expect(page.statusCode).toBe(200);
      expect(page.body.length).toBeLessThan(ROOM_PAGE_MAX_BYTES * 1.25);
      const body = page.json() as RoomLogDocument & { next_after: number | null };
      entries.push(...body.entries);
      for (const key of body.keys) keys.set(key.kid, key);
      after = body.next_after;
      pages += 1;
    }
    expect(pages).toBeGreaterThan(1);
    expect(entries.map((entry) => entry.seq)).toEqual(ids);
    expect(entries.at(-1)?.reveal).toBeDefined();
    const document = {
      format: 'dicery-room-log/1',
      room: code,
      keys: [...keys.values()],
      entries,
    } as RoomLogDocument;
    expect(await verifyRoomLog(document)).toMatchObject({ ok: true, entries: ids.length, fromGenesis: true });
  });

  it('exports JSON and CSV, neutralising formula cells (OWASP CSV injection)', async () => {
    const room = await createRoom(app, host);
    const mallory = await joinAsBot(app, room.code, '=HYPERLINK("http://x")');
    await roll(room.code, mallory, { notation: '-1+1d4', label: '@SUM(A1)' });
    await roll(room.code, mallory, { notation: '1d4', label: 'say "hi", all' });
    const json = await get(`/rooms/${room.code}/rolls/export?format=json`, host.headers);
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    expect(json.headers['content-disposition']).toContain('attachment');
    const rolls = json.json();
    expect(rolls.map((r: { label: string }) => r.label)).toEqual(['@SUM(A1)', 'say "hi", all']);

    const csv = await get(`/rooms/${room.code}/rolls/export?format=csv`, host.headers);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.split('\r\n');
    expect(lines[0]).toBe('id,rolled_at,player,visibility,label,notation,dice,total,hash');
    expect(lines[1]).toContain(`"'=HYPERLINK(""http://x"")"`);
    expect(lines[1]).toContain(`"'@SUM(A1)"`);
    expect(lines[1]).toContain(`"'-1+1d4"`);
    expect(lines[2]).toContain('"say ""hi"", all"');
    // No cell begins with a formula character once unquoted.
    for (const line of lines.slice(1, 3)) {
      for (const cell of line.match(/"(?:[^"]|"")*"|[^,]+/g) ?? []) {
        expect(cell.replace(/^"/, '')).not.toMatch(/^[=+@\t\r]/);
      }
    }
  });

  it('rolls the richer notation over HTTP and points at errors in it', async () => {
    const { code, pat } = await table();
    const fate = await roll(code, pat, { notation: '4dF + 1 [skill]' });
    expect(fate.terms).toMatchObject([
      { kind: 'dice', fate: true, count: 4 },
      { kind: 'constant', label: 'skill' },
    ]);
    const bad = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: pat.headers,
      payload: { notation: '1d6r>=1' },
    });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ code: 'INVALID_DICE_NOTATION', position: 4 });
    const badVisibility = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: pat.headers,
      payload: { notation: '1d6', visibility: 'everyone' },
    });
    expect(badVisibility.statusCode).toBe(400);
  });
});

describe('GET /rooms/log-keys answers from memory (public route, no database read per request)', () => {
  let app: FastifyInstance;
  let clock: TestClock;
  let host: SignedIn;
  let listKeys: MockInstance<RoomLogStore['listKeys']>;

  // A server per test: what one test's reads left in memory must not answer another's.
  beforeEach(async () => {
    clock = createTestClock();
    app = await buildTestServer(NO_ROOM_LIMITS, { clock, scheduler: clock });
    host = await signIn(app);
    // The store the plugin's roll log reads its keys through.
    listKeys = vi.spyOn(app.dicery.roomStore.log, 'listKeys');
  });
  afterEach(async () => app.close());

  const keysOf = async () => {
    const response = await app.inject({ method: 'GET', url: '/rooms/log-keys' });
    expect(response.statusCode, response.body).toBe(200);
    return (response.json() as { keys: { kid: string }[] }).keys.map((key) => key.kid);
  };

  it('shows a key this instance creates at once, even while an earlier answer is fresh', async () => {
    expect(await keysOf()).toEqual([]);
    const room = await createRoom(app, host);
    const pat = await joinAsBot(app, room.code, 'Pat');
    // The first roll creates the signing key.
    const rolled = await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/rolls`,
      headers: pat.headers,
      payload: { notation: '1d6' },
    });
    expect(rolled.statusCode, rolled.body).toBe(201);
    const created = await app.dicery.roomStore.log.currentKey();
    expect(await keysOf()).toEqual([created?.keyId]);
  });

  it('serves 20 concurrent requests with one read, and reads again only once the answer is stale', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => app.inject({ method: 'GET', url: '/rooms/log-keys' })),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual(answers.map(() => 200));
    expect(new Set(answers.map((answer) => answer.body)).size).toBe(1);
    expect(listKeys).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 5; i++) await keysOf();
    clock.advance(ROOM_LOG_KEYS_MAX_AGE_MS - 1);
    await keysOf();
    expect(listKeys).toHaveBeenCalledTimes(1);
    clock.advance(1);
    await keysOf();
    expect(listKeys).toHaveBeenCalledTimes(2);
  });

  it('answers a failed read 503 problem+json to everyone waiting on it, and remembers nothing of it', async () => {
    await app.dicery.log.ready(); // creates the signing key
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    listKeys.mockRejectedValueOnce(refused);
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => app.inject({ method: 'GET', url: '/rooms/log-keys' })),
    );
    expect(listKeys).toHaveBeenCalledTimes(1);
    for (const answer of answers) {
      expect(answer.statusCode).toBe(503);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.json().code).toBe('DATABASE_UNAVAILABLE');
    }
    // Not cached as "no keys": the next request reads again, and finds the key.
    expect(await keysOf()).toHaveLength(1);
    expect(listKeys).toHaveBeenCalledTimes(2);
  });
});

describe('Dicery room reads are rate-limited per caller and per address', () => {
  let app: FastifyInstance;
  let clock: TestClock;
  let host: SignedIn;
  // The settings (not their defaults): what the routes enforce is what the server was given.
  const ROOM_PAGE_READS_PER_MINUTE = 10;
  const ROOM_EXPORTS_PER_MINUTE = 3;
  const ROOM_EXPORTS_PER_MINUTE_PER_IP = 7;

  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer(
      {
        ...NO_ROOM_LIMITS,
        roomReadsPerMinute: ROOM_PAGE_READS_PER_MINUTE,
        roomExportsPerMinute: ROOM_EXPORTS_PER_MINUTE,
        roomExportsPerMinutePerIp: ROOM_EXPORTS_PER_MINUTE_PER_IP,
      },
      { clock, scheduler: clock },
    );
    host = await signIn(app);
  });
  afterAll(async () => app.close());

  const get = (url: string, headers: Record<string, string>) => app.inject({ method: 'GET', url, headers });
  const expectLimited = (response: Awaited<ReturnType<typeof get>>) => {
    expect(response.statusCode).toBe(429);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json().code).toBe('TOO_MANY_REQUESTS');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  };

  it('snapshot, history and log pages: a member looping over them is stopped; other members are not', async () => {
    const room = await createRoom(app, host);
    const pat = await joinAsBot(app, room.code, 'Pat');
    const sam = await joinAsBot(app, room.code, 'Sam');
    for (let i = 0; i < ROOM_PAGE_READS_PER_MINUTE; i++) {
      const url = [`/rooms/${room.code}/rolls`, `/rooms/${room.code}/log`, `/rooms/${room.code}`][i % 3];
      expect((await get(String(url), pat.headers)).statusCode).toBe(200);
    }
    // The snapshot is a page read too (a viewer looping it read the database without end).
    expectLimited(await get(`/rooms/${room.code}`, pat.headers));
    expectLimited(await get(`/rooms/${room.code}/log`, pat.headers));
    expectLimited(await get(`/rooms/${room.code}/rolls`, pat.headers));
    expect((await get(`/rooms/${room.code}/rolls`, sam.headers)).statusCode).toBe(200);
    expect((await get(`/rooms/${room.code}/log`, host.headers)).statusCode).toBe(200);
    clock.advance(60_000);
    expect((await get(`/rooms/${room.code}/rolls`, pat.headers)).statusCode).toBe(200);
  });

  it('exports: per caller, and per address however many players it joins', async () => {
    clock.advance(60_000);
    const room = await createRoom(app, host);
    for (let i = 0; i < ROOM_EXPORTS_PER_MINUTE; i++) {
      expect((await get(`/rooms/${room.code}/rolls/export`, host.headers)).statusCode).toBe(200);
    }
    expectLimited(await get(`/rooms/${room.code}/rolls/export?format=csv`, host.headers));
    // Every join is a new player with an allowance of its own; the address's limit still holds.
    // The refused export counted at the address too: it is a request from there.
    let exported = ROOM_EXPORTS_PER_MINUTE + 1;
    for (let i = 0; exported < ROOM_EXPORTS_PER_MINUTE_PER_IP; i++) {
      const player = await joinAsBot(app, room.code, `Bot ${i}`);
      for (let j = 0; j < ROOM_EXPORTS_PER_MINUTE && exported < ROOM_EXPORTS_PER_MINUTE_PER_IP; j++) {
        expect((await get(`/rooms/${room.code}/rolls/export`, player.headers)).statusCode).toBe(200);
        exported++;
      }
    }
    const fresh = await joinAsBot(app, room.code, 'Fresh');
    expectLimited(await get(`/rooms/${room.code}/rolls/export`, fresh.headers));
  });
});

describe('Dicery page reads are counted per IPv6 /48 too (red-team 2026-12g D1)', () => {
  let app: FastifyInstance;
  const PER_IP = 2;
  beforeAll(async () => {
    app = await buildTestServer({
      ...NO_ROOM_LIMITS,
      roomReadsPerMinute: 1000,
      roomReadsPerMinutePerIp: PER_IP,
    });
  });
  afterAll(async () => app.close());

  it("one /48 gets four addresses' reads, however many /64s it reads from", async () => {
    const room = await createRoom(app, await signIn(app));
    const pat = await joinAsBot(app, room.code, 'Pat');
    const read = (remoteAddress: string) =>
      app.inject({ method: 'GET', url: `/rooms/${room.code}/rolls`, headers: pat.headers, remoteAddress });
    const answers: number[] = [];
    for (let subnet = 1; subnet <= 12; subnet += 1)
      answers.push((await read(`2001:db8:feed:${subnet}::1`)).statusCode);
    expect(answers.filter((status) => status === 200)).toHaveLength(PER_IP * 4);
    expect(answers.slice(PER_IP * 4).every((status) => status === 429)).toBe(true);
    expect((await read('2001:db8:beef:1::1')).statusCode).toBe(200);
  });
});

describe('Dicery exports running at once are capped per caller, per network and per instance', () => {
  let app: FastifyInstance;
  let base: string;
  let host: SignedIn;
  let big: { code: string; players: JoinedPlayer[] };
  let small: string;
  const MAX_EXPORTS_PER_CALLER = 1;
  const MAX_EXPORTS_PER_NETWORK = 2;
  const MAX_EXPORTS_TOTAL = 4;
  // ≈ 600 bytes of JSON each: ≈ 24 MB, far more than loopback's socket buffers hold, so an export
  // whose client stops reading stays open until the test ends it.
  const COPIES = 40_000;
  const STALL_MS = 60_000;
  const MAX_DURATION_MS = 90_000;
  const READ_ON = 12_000_000;
  const held: ReturnType<typeof request>[] = [];
  // The export's time bounds run on the core's scheduler: time moves only when a test advances it.
  const clock = createTestClock();

  beforeAll(async () => {
    app = await buildTestServer(
      {
        ...NO_ROOM_LIMITS,
        roomExportsPerMinute: 10_000,
        roomExportsPerMinutePerIp: 10_000,
        maxExportsPerCaller: MAX_EXPORTS_PER_CALLER,
        maxExportsPerNetwork: MAX_EXPORTS_PER_NETWORK,
        maxExportsTotal: MAX_EXPORTS_TOTAL,
        roomExportStallTimeout: STALL_MS / 1000,
        roomExportMaxDuration: MAX_DURATION_MS / 1000,
        // Each request says which address it comes from (X-Forwarded-For), over real sockets.
        trustProxy: ['127.0.0.1'],
      },
      { clock, scheduler: clock },
    );
    base = await listenOnLoopback(app);
    host = await signIn(app);
    small = (await createRoom(app, host, 'Small')).code;
    const room = await createRoom(app, host, 'Big');
    const players = [];
    for (const name of ['Pat', 'Sam', 'Kim', 'Lou']) players.push(await joinAsBot(app, room.code, name));
    const rolled = await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/rolls`,
      headers: players[0]?.headers,
      payload: { notation: '100d1000', label: 'x'.repeat(60) },
    });
    expect(rolled.statusCode, rolled.body).toBe(201);
    // Copies of that roll written straight to the log: rolling 40 000 times over HTTP would only be slower.
    const db = app.gatehouse.appDatabase<DiceryTables>();
    const roll = await db
      .selectFrom('room_events')
      .selectAll()
      .where('room_code', '=', room.code)
      .where('type', '=', 'roll')
      .executeTakeFirstOrThrow();
    for (let from = 1; from <= COPIES; from += 500) {
      const rows = [];
      for (let i = from; i < from + 500 && i <= COPIES; i++) {
        rows.push({
          room_code: room.code,
          seq: roll.seq + i,
          type: 'roll',
          data: roll.data,
          created_at: roll.created_at,
        });
      }
      await db.insertInto('room_events').values(rows).execute();
    }
    await db
      .updateTable('rooms')
      .set({ last_event_seq: roll.seq + COPIES })
      .where('code', '=', room.code)
      .execute();
    big = { code: room.code, players };
  }, 60_000);
  afterAll(async () => {
    for (const req of held) req.destroy();
    await app.close();
  });
  // Each test starts with every slot free (tests run in a shuffled order): the server has seen every
  // connection of the test go, and a response's 'close' (which frees its slot) comes with its socket's.
  afterEach(async () => {
    for (const req of held.splice(0)) req.destroy();
    const openConnections = () =>
      new Promise<number>((resolve, reject) =>
        app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      );
    for (const deadline = Date.now() + 5000; (await openConnections()) > 0; ) {
      if (Date.now() > deadline) throw new Error('connections of the test still open after 5 s');
      app.server.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setImmediate(resolve));
  });

  interface HeldExport {
    req: ReturnType<typeof request>;
    /** Reads on to the end of the body: 'end' when it was whole, 'cut' when the server cut it short. */
    resume: () => Promise<'end' | 'cut'>;
    /** Reads `bytes` more of the body, then stops reading again. */
    read: (bytes: number) => Promise<void>;
  }

  /** Starts an export over a real socket and stops reading once its first bytes arrived. */
  function holdExport(code: string, headers: Record<string, string>, from: string) {
    return new Promise<HeldExport>((resolve, reject) => {
      const req = request(`${base}/rooms/${code}/rolls/export`, {
        headers: { ...headers, 'x-forwarded-for': from },
        agent: false,
      });
      held.push(req);
      req.on('error', () => {});
      req.on('response', (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`export refused: ${response.statusCode}`));
          return;
        }
        const ended = new Promise<'end' | 'cut'>((done) => {
          response.on('end', () => done('end'));
          response.on('aborted', () => done('cut'));
          response.on('error', () => done('cut'));
        });
        response.once('data', () => {
          response.pause();
          resolve({
            req,
            resume: () => {
              response.resume();
              return ended;
            },
            read: (bytes) =>
              new Promise<void>((done, fail) => {
                let left = bytes;
                const onData = (chunk: Buffer) => {
                  left -= chunk.length;
                  if (left > 0) return;
                  response.pause();
                  response.off('data', onData);
                  done();
                };
                response.on('data', onData);
                void ended.then(() => fail(new Error(`the export ended with ${left} bytes left to read`)));
                response.resume();
              }),
          });
        });
      });
      req.end();
    });
  }

  const exportOf = (code: string, headers: Record<string, string>, from: string) =>
    fetch(`${base}/rooms/${code}/rolls/export`, { headers: { ...headers, 'x-forwarded-for': from } });

  async function expectRefused(response: Response, status: number, code: string) {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await response.json()) as { code: string }).code).toBe(code);
  }

  /** The host's next small export, once the server has seen the held one end (bounded wait). */
  async function hostExportsAgain(from: string) {
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      const response = await exportOf(small, host.headers, from);
      if (response.status === 200) return response.json();
      await response.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('the export slot never came back');
  }

  it('a finished export gives its slot back', async () => {
    for (let i = 0; i < 3; i++) {
      const response = await exportOf(small, host.headers, '192.0.2.1');
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual([]);
    }
  });

  it('a client that goes away mid-export gives its slot back', async () => {
    const first = await holdExport(big.code, host.headers, '192.0.2.1');
    await expectRefused(await exportOf(small, host.headers, '192.0.2.1'), 429, 'TOO_MANY_EXPORTS');
    first.req.destroy();
    expect(await hostExportsAgain('192.0.2.1')).toEqual([]);
  });

  it('an export whose client stops reading is cut after ROOM_EXPORT_STALL_TIMEOUT, freeing its slot (red-team G5)', async () => {
    const first = await holdExport(big.code, host.headers, '192.0.2.1');
    await expectRefused(await exportOf(small, host.headers, '192.0.2.1'), 429, 'TOO_MANY_EXPORTS');
    // Whatever the server wrote before its socket filled up, it wrote before time moved.
    clock.advance(STALL_MS);
    expect(await first.resume()).toBe('cut');
    expect(await hostExportsAgain('192.0.2.1')).toEqual([]);
  });

  it('a client that keeps reading is not cut as stalled, but is at ROOM_EXPORT_MAX_DURATION (a trickle holds no slot for good)', async () => {
    const first = await holdExport(big.code, host.headers, '192.0.2.1');
    clock.advance(50_000);
    // More than the socket buffers between them held when the client stopped reading: the server
    // must hand out rolls again, now, 50 s in.
    await first.read(READ_ON);
    clock.advance(20_000);
    // 70 s after it started and 20 s after its last progress: the stall bound (60 s) has not cut it.
    await expectRefused(await exportOf(small, host.headers, '192.0.2.1'), 429, 'TOO_MANY_EXPORTS');
    clock.advance(MAX_DURATION_MS - 70_000);
    expect(await first.resume()).toBe('cut');
    expect(await hostExportsAgain('192.0.2.1')).toEqual([]);
  });

  it('an export that fails midway gives its slot back', async () => {
    const first = await holdExport(big.code, host.headers, '192.0.2.1');
    await expectRefused(await exportOf(small, host.headers, '192.0.2.1'), 429, 'TOO_MANY_EXPORTS');
    const db = app.gatehouse.appDatabase<DiceryTables>();
    // The log's next page cannot be read: the body's stream fails after its headers went out.
    await sql`ALTER TABLE room_events RENAME TO room_events_away`.execute(db);
    try {
      expect(await first.resume()).toBe('cut');
    } finally {
      await sql`ALTER TABLE room_events_away RENAME TO room_events`.execute(db);
    }
    expect(await hostExportsAgain('192.0.2.1')).toEqual([]);
  });

  it('each spectator has a slot of their own: one viewer of a shared watch link cannot spend another’s', async () => {
    const link = await app.inject({
      method: 'POST',
      url: `/rooms/${big.code}/spectator-links`,
      headers: host.headers,
    });
    expect(link.statusCode, link.body).toBe(201);
    const watcher = async () => {
      const exchanged = await app.inject({
        method: 'POST',
        url: `/rooms/${big.code}/watch`,
        payload: { token: (link.json() as { token: string }).token, transport: 'bearer' },
      });
      expect(exchanged.statusCode, exchanged.body).toBe(200);
      return { authorization: `Bearer ${(exchanged.json() as { access_token: string }).access_token}` };
    };
    const [ana, ben] = [await watcher(), await watcher()];
    const held = await holdExport(big.code, ana, '198.51.100.20');
    await expectRefused(await exportOf(big.code, ana, '198.51.100.21'), 429, 'TOO_MANY_EXPORTS');
    // Ben, on the same link, is served (holdExport fails the test on anything but 200).
    await holdExport(big.code, ben, '198.51.100.22');
    expect(held.req.destroyed).toBe(false);
  });

  it('players of one network share its cap; strangers there cannot take the host’s; the instance has its own', async () => {
    const [pat, sam, kim, lou] = big.players;
    if (pat === undefined || sam === undefined || kim === undefined || lou === undefined)
      throw new Error('players');
    // Two /64s of one /48: one network.
    const patExport = await holdExport(big.code, pat.headers, '2001:db8:1:1::1');
    await expectRefused(await exportOf(big.code, pat.headers, '198.51.100.7'), 429, 'TOO_MANY_EXPORTS');
    const samExport = await holdExport(big.code, sam.headers, '2001:db8:1:2::1');
    await expectRefused(await exportOf(big.code, kim.headers, '2001:db8:1:ffff::9'), 429, 'TOO_MANY_EXPORTS');
    // The network is full of anonymous exports, yet the host's account, on that same network, is not
    // counted there: the room's players (whoever they are) cannot use up the host's exports.
    expect(await (await exportOf(small, host.headers, '2001:db8:1:3::1')).json()).toEqual([]);
    // Kim from elsewhere takes the players' and spectators' last slot (three quarters of 4): Lou,
    // from a third network, waits with 503 although the instance has a slot left…
    const kimExport = await holdExport(big.code, kim.headers, '2001:db8:2::1');
    await expectRefused(await exportOf(big.code, lou.headers, '2001:db8:3::1'), 503, 'SERVICE_UNAVAILABLE');
    // …which a host account takes: anonymous exports from many networks never refuse every host.
    const hostExport = await holdExport(big.code, host.headers, '2001:db8:1:3::1');
    // Now the instance is full for everyone, hosts included.
    const otherHost = await signIn(app);
    const otherRoom = await createRoom(app, otherHost, 'Other');
    await expectRefused(
      await exportOf(otherRoom.code, otherHost.headers, '203.0.113.5'),
      503,
      'SERVICE_UNAVAILABLE',
    );
    for (const held of [patExport, samExport, kimExport, hostExport]) held.req.destroy();
    expect(await hostExportsAgain('203.0.113.5')).toEqual([]);
    // Lou, refused before, is served now (holdExport fails the test on anything but 200).
    await holdExport(big.code, lou.headers, '2001:db8:1:4::1');
  });
});

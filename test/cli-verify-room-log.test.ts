import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../src/testing.js';
import { signIn } from './support/accounts.js';
import { createRoom, joinAsBot } from './support/rooms.js';
import { run } from './support/run-cli.js';
import { useTempDirs } from './support/temp-dirs.js';

const tempDir = useTempDirs();

/** `gatehouse verify-room-log FILE [--keys KEYS]` on logs a real server wrote (issue 14, item 7). */
describe('gatehouse verify-room-log', () => {
  let app: FastifyInstance;
  let dir: string;
  let log: { entries: { entry: string; reveal?: unknown }[] } & Record<string, unknown>;
  let keys: unknown;

  beforeAll(async () => {
    app = await buildTestServer({ roomRollsPerMinute: 1000, roomRollsPerMinutePerIp: 1000 });
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const pat = await joinAsBot(app, room.code, 'Pat');
    const rolls = [];
    for (const [notation, visibility] of [
      ['1d20', 'room'],
      ['2d6', 'host'],
      ['4dF', 'room'],
    ]) {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/rolls`,
        headers: pat.headers,
        payload: { notation, visibility },
      });
      rolls.push(response.json());
    }
    await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/rolls/${rolls[1].id}/reveal`,
      headers: host.headers,
    });
    log = (await app.inject({ method: 'GET', url: `/rooms/${room.code}/log`, headers: host.headers })).json();
    keys = (await app.inject({ method: 'GET', url: '/rooms/log-keys' })).json();
    dir = tempDir('gh-room-log-');
  });
  afterAll(async () => app.close());

  const write = (name: string, value: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };

  it('verifies an untouched log, with its revealed secret roll, against the published keys', async () => {
    const result = await run(
      ['verify-room-log', write('log.json', log), '--keys', write('keys.json', keys)],
      {},
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('verified 3 entries');
    expect(result.stdout).toContain("the first is the room's first roll");
    expect(result.stdout).toContain(
      '1 revealed secret rolls match their commitments; 0 secret rolls still hidden',
    );
  });

  it('exits 65 with one line per problem for a tampered log, and for a key that did not sign it', async () => {
    const tampered = structuredClone(log);
    const [, , third] = tampered.entries;
    if (third === undefined) throw new Error('missing');
    third.entry = third.entry.replace('"name":"Pat"', '"name":"Sam"');
    const changed = await run(['verify-room-log', write('tampered.json', tampered)], {});
    expect(changed.code).toBe(65);
    expect(changed.stderr).toMatch(/NOT VERIFIED: entry 2 \(roll \d+\): hash_mismatch/);

    const otherKeys = { keys: [{ kid: 'rlk-other', alg: 'Ed25519', public_key: 'A'.repeat(43) }] };
    const wrongKey = await run(
      ['verify-room-log', write('log2.json', log), '--keys', write('other.json', otherKeys)],
      {},
    );
    expect(wrongKey.code).toBe(65);
    expect(wrongKey.stderr).toContain('unknown_key');
  });

  it('answers a missing file, a non-JSON file and a missing argument with their own codes', async () => {
    expect((await run(['verify-room-log', join(dir, 'nope.json')], {})).code).toBe(66);
    expect((await run(['verify-room-log', write('bad.json', 'not json')], {})).code).toBe(65);
    expect((await run(['verify-room-log', write('empty.json', {})], {})).code).toBe(65);
    expect((await run(['verify-room-log'], {})).code).toBe(64);
  });
});

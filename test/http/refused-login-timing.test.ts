import { hash as bcryptHash } from '@node-rs/bcrypt';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ImportRecord } from '../../src/accounts/user-import.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { MAX_REFUSAL_FLOOR_MS } from '../../src/passwords/refusal-floor.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, postToken, uniqueEmail } from '../support/accounts.js';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/**
 * Red-team 2026-12k P1: a wrong password for an imported account that has not signed in since is
 * checked against its old hash. bcrypt at cost 9 takes about three times our argon2id, so without a
 * floor on refusals one timed request told an imported address from an unknown one (and from an
 * account of ours). These are the requests an attacker would time, interleaved, over HTTP.
 */
describe('refused sign-ins after an import', () => {
  let app: FastifyInstance;
  let imported: string;
  let native: string;
  let unverified: { email: string; password: string };
  let disabled: { email: string; password: string };

  beforeAll(async () => {
    app = await buildTestServer({
      loginMaxFailuresPerAccount: 1000,
      loginMaxFailuresPerIp: 100_000,
      requireVerifiedEmail: true,
    });
    imported = uniqueEmail('imported');
    const legacy = await bcryptHash('the old password', 9);
    async function* rows(): AsyncGenerator<ImportRecord> {
      yield { line: 2, fields: { email: imported, hashed_password: legacy } };
    }
    expect((await gatehouseCore(app.gatehouse).userImport.importUsers(rows())).imported).toBe(1);
    native = (await createUser(app, { verified: true })).email;
    unverified = await createUser(app);
    const toDisable = await createUser(app, { verified: true });
    await gatehouseCore(app.gatehouse).users.updateUser(toDisable.id, { isActive: false }, Date.now());
    disabled = toDisable;
  });
  afterAll(async () => {
    await app?.close();
  });

  const timed = async (email: string, password: string) => {
    const started = performance.now();
    const response = await postToken(app, { grant_type: 'password', username: email, password });
    const ms = performance.now() - started;
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_grant' });
    return ms;
  };

  /** Per kind, the median of its times over the imported account's: each within a third of 1. */
  const expectAlike = (times: Record<string, number[]>, label: string) => {
    const reference = median(times.imported ?? []);
    for (const [kind, values] of Object.entries(times)) {
      const ratio = median(values) / reference;
      const why = `${kind} / imported (${label}): ${JSON.stringify(times)}`;
      expect(ratio, why).toBeGreaterThan(0.75);
      expect(ratio, why).toBeLessThan(1.33);
    }
  };

  it('take as long for an unknown address, an account of ours, or a right password that signs in nothing, as for an imported account', async () => {
    // The first refusal reads the stored classes and times them once.
    await timed(uniqueEmail('warm-up'), 'a wrong password');
    // What gatehouse_login_refusal_floor_seconds reports: above one bcrypt-9 verification (> 5 ms).
    expect(gatehouseCore(app.gatehouse).refusalFloor.current()).toBeGreaterThan(5);
    const wrong = 'a wrong password';
    const times: Record<string, number[]> = {
      imported: [],
      unknown: [],
      native: [],
      unverified: [],
      disabled: [],
    };
    // Interleaved rounds, medians: load slows every kind alike. Without the floor the others'
    // medians are about a third of the imported one.
    for (let round = 0; round < 7; round += 1) {
      times.imported?.push(await timed(imported, wrong));
      times.unknown?.push(await timed(uniqueEmail('unknown'), wrong));
      times.native?.push(await timed(native, wrong));
      // REQUIRE_VERIFIED_EMAIL: a stranger who chose this password at sign-up must not learn
      // from a quicker refusal that it was the account's own (so that no account existed).
      times.unverified?.push(await timed(unverified.email, unverified.password));
      times.disabled?.push(await timed(disabled.email, disabled.password));
    }
    expectAlike(times, 'a wrong password');
  });

  it('take as long when NFKC changes the password, which an imported hash is tried with twice', async () => {
    await timed(uniqueEmail('warm-up'), 'a wrong password');
    const wrong = 'a ﬁne wrong password';
    const times: Record<string, number[]> = { imported: [], unknown: [], native: [] };
    for (let round = 0; round < 7; round += 1) {
      times.imported?.push(await timed(imported, wrong));
      times.unknown?.push(await timed(uniqueEmail('unknown'), wrong));
      times.native?.push(await timed(native, wrong));
    }
    expectAlike(times, 'NFKC changes it');
  });
});

describe('an import into a running server', () => {
  it('is padded from the next refusal on: the longest floor while its class is timed, then the timed one', async () => {
    const app = await buildTestServer({ loginMaxFailuresPerAccount: 1000, loginMaxFailuresPerIp: 100_000 });
    try {
      const refuse = async () => {
        const started = performance.now();
        const response = await postToken(app, {
          grant_type: 'password',
          username: uniqueEmail('unknown'),
          password: 'a wrong password',
        });
        expect(response.statusCode).toBe(400);
        return performance.now() - started;
      };
      // Read at this first refusal: nothing imported, nothing padded.
      await refuse();
      const core = gatehouseCore(app.gatehouse);
      expect(core.refusalFloor.current()).toBe(0);
      const legacy = await bcryptHash('the old password', 9);
      async function* rows(): AsyncGenerator<ImportRecord> {
        yield { line: 2, fields: { email: uniqueEmail('imported'), hashed_password: legacy } };
      }
      expect((await core.userImport.importUsers(rows())).imported).toBe(1);
      // Read again at once (not within the 10 s re-read): fail closed while bcrypt 9 is timed.
      expect(await refuse()).toBeGreaterThanOrEqual(MAX_REFUSAL_FLOOR_MS - 20);
      const floor = core.refusalFloor.current();
      expect(floor).toBeGreaterThan(5);
      expect(floor).toBeLessThan(MAX_REFUSAL_FLOOR_MS);
    } finally {
      await app.close();
    }
  });
});

describe("a refusal's wait", () => {
  /** A server whose refusals wait 1.5 s (a floor as an import would set), and an account on it. */
  const withFloor = async (overrides: Parameters<typeof buildTestServer>[0]) => {
    const app = await buildTestServer(overrides);
    const owner = await createUser(app, { verified: true });
    vi.spyOn(gatehouseCore(app.gatehouse).refusalFloor, 'get').mockResolvedValue(1500);
    const grant = async (password: string) => {
      const started = performance.now();
      const response = await postToken(app, { grant_type: 'password', username: owner.email, password });
      return { status: response.statusCode, ms: performance.now() - started };
    };
    return { app, owner, grant };
  };
  const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("does not hold the account's gate: the owner signs in while a stranger's refusal waits", async () => {
    const { app, owner, grant } = await withFloor({});
    try {
      const stranger = grant('a wrong password');
      await later(300);
      const own = await grant(owner.password);
      expect(own.status).toBe(200);
      expect(own.ms).toBeLessThan(1000);
      expect(await stranger).toMatchObject({ status: 400 });
      expect((await stranger).ms).toBeGreaterThanOrEqual(1450);
    } finally {
      await app.close();
    }
  });

  it('comes after the failure is counted: a second guess during the wait already meets the limit', async () => {
    const { app, grant } = await withFloor({ loginMaxFailuresPerAccount: 1 });
    try {
      const first = grant('a wrong password');
      await later(300);
      expect((await grant('another wrong password')).status).toBe(429);
      expect((await first).status).toBe(400);
    } finally {
      await app.close();
    }
  });
});

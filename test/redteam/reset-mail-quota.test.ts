/**
 * Red team, finding F2 (FINDINGS.md): a stranger spends a victim's ACCOUNT_MAILS_PER_HOUR with
 * anonymous `POST /auth/forgot-password` requests, so the victim's own reset request an instant later
 * sends nothing (the answer is 202 either way, so the victim cannot even tell). Fails on main.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../src/mail/outbox.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, uniqueEmail } from '../support/accounts.js';

async function resetMailsTo(app: FastifyInstance, to: string): Promise<number> {
  await gatehouseCore(app.gatehouse).lifecycle.idle();
  const all = await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000);
  return all.filter((message) => message.to === to && message.subject === 'Reset your password').length;
}

describe('red team F2: reset-mail quota aimed at someone else', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer({ accountMailsPerHour: 3, forgotPasswordPerIpPerHour: 1000 });
  });
  afterAll(async () => app.close());

  it("a stranger's requests do not use up the owner's password-reset mails", async () => {
    const victim = await createUser(app, { email: uniqueEmail('victim') });
    for (let i = 0; i < 5; i += 1) {
      const spam = await app.inject({
        method: 'POST',
        url: '/auth/forgot-password',
        payload: { email: victim.email },
        remoteAddress: '203.0.113.66',
      });
      expect(spam.statusCode).toBe(202);
    }
    const before = await resetMailsTo(app, victim.email);
    const own = await app.inject({
      method: 'POST',
      url: '/auth/forgot-password',
      payload: { email: victim.email },
      remoteAddress: '198.51.100.7',
    });
    expect(own.statusCode).toBe(202);
    // The owner's request, from their own address, must still produce a usable reset mail.
    expect(await resetMailsTo(app, victim.email)).toBeGreaterThan(before);
  });
});

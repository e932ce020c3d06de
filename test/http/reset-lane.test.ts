import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../src/mail/outbox.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, uniqueEmail } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

/**
 * Red-team 2026-12-06 RTL4: a forgot-password request is in the owner's mail lane when it carries
 * the account's device token, or comes from an address the account has a live session from; both
 * counted on one share per client network. A neighbour behind the owner's NAT, knowing only the
 * address, was promoted to the owner's lane by the owner's session and spent that share: the
 * owner's own request an hour later, device cookie and all, sent nothing.
 */
describe('forgot-password from a browser holding the device cookie', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
  });
  afterAll(async () => app.close());

  it("has a share of its own: a NAT neighbour's requests do not spend it", async () => {
    const owner = await createUser(app, { email: uniqueEmail('natlane') });
    // The owner's browser, behind the office NAT (127.0.0.1, as for every injected request).
    const browser = new Browser(app);
    expect((await browser.login(owner.email)).statusCode).toBe(204);
    const resetMails = async () => {
      await gatehouseCore(app.gatehouse).lifecycle.idle();
      const mails = await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000);
      return mails.filter((mail) => mail.to === owner.email && /reset/i.test(mail.subject)).length;
    };
    const limit = app.gatehouse.config.accountMailsPerHour;
    for (let i = 0; i < limit; i += 1) {
      const asked = await app.inject({
        method: 'POST',
        url: '/auth/forgot-password',
        payload: { email: owner.email },
      });
      expect(asked.statusCode).toBe(202);
    }
    expect(await resetMails()).toBe(limit);
    const own = await browser.request('POST', '/auth/forgot-password', { payload: { email: owner.email } });
    expect(own.statusCode).toBe(202);
    expect(await resetMails()).toBe(limit + 1);
  });
});

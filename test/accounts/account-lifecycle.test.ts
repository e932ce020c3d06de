import { describe, expect, it } from 'vitest';
import { callerSource } from '../../src/accounts/account-lifecycle.js';

const caller = (ip: string) => ({ client: { ip, userAgent: null }, onAuditLost: () => {} });

describe('callerSource', () => {
  // Red-team 2026-12d I8: per /64, one /48 was 65 536 sources of the fair mail and reset queues.
  it('counts the /64s of one IPv6 /48 as one source, and other /48s apart', () => {
    const site = callerSource(caller('2001:db8:5eed:1::1'));
    expect(callerSource(caller('2001:db8:5eed:ffff::2'))).toBe(site);
    expect(callerSource(caller('2001:db8:5eef:1::1'))).not.toBe(site);
  });

  it('keeps one source per IPv4 address', () => {
    expect(callerSource(caller('203.0.113.5'))).not.toBe(callerSource(caller('203.0.113.6')));
    expect(callerSource(caller('203.0.113.5'))).toBe(callerSource(caller('::ffff:203.0.113.5')));
  });
});

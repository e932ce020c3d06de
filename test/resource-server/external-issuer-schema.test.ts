import { describe, expect, it } from 'vitest';
import { isInternalHost } from '../../src/resource-server/external-issuer-schema.js';

describe('isInternalHost on the addresses a resolver can answer', () => {
  it('calls internal every special-purpose range and every IPv6 form that carries an internal IPv4 address', () => {
    for (const address of [
      '192.0.0.8',
      '198.18.0.1',
      '198.19.255.255',
      '224.0.0.1',
      '239.255.255.250',
      '240.0.0.1',
      '255.255.255.255',
      'ff02::1',
      '64:ff9b:1::a9fe:a9fe',
      // 6to4 (RFC 3056) of 127.0.0.1, 169.254.169.254 and 10.1.2.3.
      '2002:7f00:1::1',
      '2002:a9fe:a9fe::',
      '2002:a01:203::1',
      // Teredo (RFC 4380).
      '2001:0:4136:e378:8000:63bf:80ff:fffe',
      // Already covered, as a resolver writes them.
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '0:0:0:0:0:ffff:7f00:1',
      '::',
      '0.0.0.0',
    ]) {
      expect(isInternalHost(address), address).toBe(true);
    }
  });

  it('leaves public addresses alone', () => {
    for (const address of [
      '8.8.8.8',
      '198.20.0.1',
      '223.255.255.255',
      '2606:4700::1111',
      '2002:808:808::1',
    ]) {
      expect(isInternalHost(address), address).toBe(false);
    }
  });
});

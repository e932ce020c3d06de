import { describe, expect, it } from 'vitest';
import { addressBucket } from '../../src/lib/address-bucket.js';

describe('addressBucket', () => {
  it('keeps IPv4 addresses as they are', () => {
    expect(addressBucket('192.0.2.7')).toBe('192.0.2.7');
  });

  it('puts every address of one IPv6 /64 in one bucket, however it is spelled', () => {
    const bucket = addressBucket('2001:db8:1:2::1');
    expect(bucket).toBe('2001:db8:1:2::/64');
    for (const other of [
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0db8:0001:0002:0000:0000:0000:0002',
      '2001:DB8:1:2::abcd',
      '2001:db8:1:2::1%eth0',
      '2001:db8:1:2:0:0:192.0.2.1',
    ])
      expect(addressBucket(other)).toBe(bucket);
    expect(addressBucket('2001:db8:1:3::1')).not.toBe(bucket);
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
    expect(addressBucket('2001:db8::')).toBe('2001:db8:0:0::/64');
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(addressBucket('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressBucket('::ffff:c000:207')).toBe('192.0.2.7');
  });

  it('returns anything that is not an IP address unchanged', () => {
    expect(addressBucket('')).toBe('');
    expect(addressBucket('not-an-ip')).toBe('not-an-ip');
  });
});

describe('addressBucket with a /48 prefix', () => {
  it('groups every /64 of one site, and leaves IPv4 as it is', () => {
    expect(addressBucket('2001:db8:7:1::1', 48)).toBe('2001:db8:7::/48');
    expect(addressBucket('2001:db8:7:ffff::9', 48)).toBe('2001:db8:7::/48');
    expect(addressBucket('2001:db8:8::1', 48)).not.toBe(addressBucket('2001:db8:7::1', 48));
    expect(addressBucket('192.0.2.1', 48)).toBe('192.0.2.1');
    expect(addressBucket('::ffff:192.0.2.1', 48)).toBe('192.0.2.1');
  });
});

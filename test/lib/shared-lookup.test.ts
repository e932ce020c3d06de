import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { describe, expect, it } from 'vitest';
import { shareLookups } from '../../src/lib/shared-lookup.js';

type Callback = Parameters<LookupFunction>[2];

/** A resolver the test answers by hand: each call waits until the test settles it. */
function manualResolver() {
  const calls: Array<{ hostname: string; family: unknown; callback: Callback }> = [];
  const lookup: LookupFunction = (hostname, options, callback) => {
    calls.push({ hostname, family: options.family, callback });
  };
  return { lookup, calls };
}

const ADDRESSES: LookupAddress[] = [{ address: '192.0.2.7', family: 4 }];

/** Calls `lookup` and records what its callback receives. */
function ask(lookup: LookupFunction, hostname: string, options: LookupOptions = { all: true, family: 0 }) {
  const answers: unknown[][] = [];
  lookup(hostname, options, (...result) => answers.push(result));
  return answers;
}

describe('shareLookups', () => {
  it('runs one look-up for concurrent callers of the same name and gives each its answer', () => {
    const resolver = manualResolver();
    const lookup = shareLookups(resolver.lookup);
    const first = ask(lookup, 'db.example');
    const second = ask(lookup, 'db.example');
    expect(resolver.calls).toHaveLength(1);
    resolver.calls[0]?.callback(null, ADDRESSES);
    expect(first).toEqual([[null, ADDRESSES]]);
    expect(second).toEqual([[null, ADDRESSES]]);
  });

  it('shares a failure the same way, and asks again once the look-up has answered (no cache)', () => {
    const resolver = manualResolver();
    const lookup = shareLookups(resolver.lookup);
    const failure = Object.assign(new Error('getaddrinfo EAI_AGAIN db.example'), { code: 'EAI_AGAIN' });
    const first = ask(lookup, 'db.example');
    const second = ask(lookup, 'db.example');
    resolver.calls[0]?.callback(failure, []);
    expect(first).toEqual([[failure, []]]);
    expect(second).toEqual([[failure, []]]);
    const third = ask(lookup, 'db.example');
    expect(resolver.calls).toHaveLength(2);
    resolver.calls[1]?.callback(null, ADDRESSES);
    expect(third).toEqual([[null, ADDRESSES]]);
  });

  it('keeps names and answer-changing options apart', () => {
    const resolver = manualResolver();
    const lookup = shareLookups(resolver.lookup);
    ask(lookup, 'db.example');
    ask(lookup, 'redis.example');
    ask(lookup, 'db.example', { all: true, family: 4 });
    const single = ask(lookup, 'db.example', { family: 0 });
    expect(resolver.calls.map((call) => [call.hostname, call.family])).toEqual([
      ['db.example', 0],
      ['redis.example', 0],
      ['db.example', 4],
      ['db.example', 0],
    ]);
    resolver.calls[3]?.callback(null, '192.0.2.7', 4);
    expect(single).toEqual([[null, '192.0.2.7', 4]]);
  });
});

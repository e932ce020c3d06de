import { describe, expect, it } from 'vitest';
import { createSourceTally } from '../../src/lib/source-tally.js';

describe('source tally', () => {
  it('counts per source and forgets a source at zero', () => {
    const tally = createSourceTally();
    tally.add('a');
    tally.add('a');
    tally.add('b');
    expect([tally.count('a'), tally.count('b'), tally.count('c')]).toEqual([2, 1, 0]);
    tally.remove('b');
    tally.remove('b');
    expect(tally.count('b')).toBe(0);
    expect(tally.evictionCandidate('b')).toBe('a');
  });

  it('names the heaviest source only when it holds more than the newcomer', () => {
    const tally = createSourceTally();
    for (let i = 0; i < 5; i += 1) tally.add('flood');
    tally.add('victim');
    expect(tally.evictionCandidate('victim')).toBe('flood');
    expect(tally.evictionCandidate('someone-new')).toBe('flood');
    // The flooder itself never evicts anyone: its own newest request is the one dropped.
    expect(tally.evictionCandidate('flood')).toBeUndefined();
    // Many sources with one each (a distributed flood): a source with nothing queued still gets in.
    const spread = createSourceTally();
    for (let i = 0; i < 10; i += 1) spread.add(`ip${i}`);
    expect(spread.evictionCandidate('victim')).toBe('ip0');
    expect(spread.evictionCandidate('ip3')).toBeUndefined();
  });

  it('with a margin of 2, a source gives way only to one holding at least two fewer', () => {
    const tally = createSourceTally();
    for (const source of ['a', 'a', 'b', 'c']) tally.add(source);
    expect(tally.evictionCandidate('new', 2)).toBe('a');
    expect(tally.evictionCandidate('b', 2)).toBeUndefined();
    tally.remove('a');
    // Every source holds one: a fresh one changes places with none of them.
    expect(tally.evictionCandidate('new', 2)).toBeUndefined();
    expect(tally.evictionCandidate('new')).toBe('a');
  });
});

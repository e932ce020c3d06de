import { describe, expect, it } from 'vitest';
import { cspSourceOf } from '../../src/http/oauth-pages.js';

describe('cspSourceOf', () => {
  it.each([
    ['https://app.example/cb?x=1', 'https://app.example'],
    ['https://app.example:8443/cb', 'https://app.example:8443'],
    ['http://[::1]:5173/cb', 'http://[::1]:5173'],
    ['https://bücher.example/', 'https://xn--bcher-kva.example'],
    ['com.example.app:/oauth', 'com.example.app:'],
  ])('gives %s the source %s', (uri, source) => expect(cspSourceOf(uri)).toBe(source));

  // Red-team F10: a stored redirect URI from before the host rule must not write into the policy.
  it.each([
    'https://x.example;frame-ancestors/cb',
    'https://x.example,evil/cb',
    'https://a_b.example/cb',
    'not a url',
  ])('refuses %s', (uri) => expect(cspSourceOf(uri)).toBeUndefined());
});

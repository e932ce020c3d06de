import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createFormTokens, cspSourceOf } from '../../src/http/oauth-pages.js';

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

// Red-team (Medium): in a rolling SECRET_KEY rotation, a consent form an instance still on the old
// secret served was refused (CSRF_TOKEN_INVALID) when posted to one on the new secret.
describe('createFormTokens through a SECRET_KEY rotation', () => {
  const oldKey = new Uint8Array(randomBytes(32));
  const newKey = new Uint8Array(randomBytes(32));
  const fields = ['client-1', 'https://app.example/cb', undefined];

  it('verifies a token made under SECRET_KEY_PREVIOUS, and issues under SECRET_KEY alone', () => {
    const token = createFormTokens(oldKey).issue('consent', 'session-1', fields);
    expect(createFormTokens(newKey, oldKey).verify(token, 'consent', 'session-1', fields)).toBe(true);
    // Still bound to its purpose, session and fields.
    expect(createFormTokens(newKey, oldKey).verify(token, 'logout', 'session-1', fields)).toBe(false);
    expect(createFormTokens(newKey, oldKey).verify(token, 'consent', 'session-2', fields)).toBe(false);
    expect(createFormTokens(newKey).verify(token, 'consent', 'session-1', fields)).toBe(false);
    const issued = createFormTokens(newKey, oldKey).issue('consent', 'session-1', fields);
    expect(createFormTokens(newKey).verify(issued, 'consent', 'session-1', fields)).toBe(true);
    expect(createFormTokens(oldKey).verify(issued, 'consent', 'session-1', fields)).toBe(false);
    expect(createFormTokens(newKey, oldKey).verify(undefined, 'consent', 'session-1', fields)).toBe(false);
  });
});

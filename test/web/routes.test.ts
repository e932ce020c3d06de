import { describe, expect, it } from 'vitest';
import { loadMailTemplates } from '../../src/mail/mail-templates.js';
import { createMailer } from '../../src/mail/mailer.js';
import { createTestClock } from '../../src/testing.js';
import {
  adminHash,
  canonicalRoomCode,
  joinHash,
  loginHash,
  parseRoute,
  roomHash,
  verifyHash,
  watchHash,
} from '../../web/src/routes.js';

describe('parseRoute', () => {
  it.each([
    ['', { name: 'home' }],
    ['#/', { name: 'home' }],
    ['#/login', { name: 'login' }],
    ['#/signup', { name: 'signup' }],
    ['#/account/security', { name: 'security' }],
    ['#/rooms/new', { name: 'create-room' }],
    ['#/join', { name: 'join' }],
    ['#/join/abcd-2345', { name: 'join', code: 'ABCD2345' }],
    ['#/rooms/abcd2345', { name: 'room', code: 'ABCD2345' }],
    ['#/rooms/ABCD2345/', { name: 'room', code: 'ABCD2345' }],
    ['#/rooms', { name: 'my-rooms' }],
    ['#/watch/abcd-2345?token=Ab_9-x', { name: 'watch', code: 'ABCD2345', token: 'Ab_9-x' }],
    ['#/watch/ABCD2345', { name: 'watch', code: 'ABCD2345', token: undefined }],
    ['#/watch', { name: 'not-found' }],
    ['#/rooms/ABCD2345/extra', { name: 'not-found' }],
    ['#/rooms/abcd2345/verify', { name: 'verify-room', code: 'ABCD2345' }],
    ['#/rooms/new/verify', { name: 'not-found' }],
    ['#/rooms/ABCD2345/verify/more', { name: 'not-found' }],
    ['#/rooms/%E0%A4%A', { name: 'not-found' }],
    ['#main', { name: 'not-found' }],
    ['#/forgot-password', { name: 'forgot-password' }],
    ['#/reset-password?token=abc_-1', { name: 'reset-password', token: 'abc_-1' }],
    ['#/reset-password', { name: 'reset-password', token: undefined }],
    ['#/verify-email?token=', { name: 'verify-email', token: undefined }],
    ['#/confirm-email?token=t', { name: 'confirm-email', token: 't' }],
    ['#/account', { name: 'account' }],
    ['#/admin', { name: 'admin', section: 'users' }],
    ['#/admin/audit', { name: 'admin', section: 'audit' }],
    ['#/admin/clothes', { name: 'admin', section: 'clothes' }],
    ['#/admin/keys', { name: 'not-found' }],
  ])('%s', (hash, route) => {
    expect(parseRoute(hash)).toEqual(route);
  });

  it('returns to the OAuth provider pages only, as same-origin paths (no open redirect)', () => {
    const back = '/authorize?client_id=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=x';
    expect(parseRoute(`#/login?return_to=${encodeURIComponent(back)}`)).toEqual({
      name: 'login',
      returnTo: back,
    });
    expect(parseRoute(`#/login?return_to=${encodeURIComponent('/oauth/logout')}`)).toEqual({
      name: 'login',
      returnTo: '/oauth/logout',
    });
    // prompt=login / max_age: the provider asks for the form even when signed in.
    expect(parseRoute(`#/login?reauthenticate=1&return_to=${encodeURIComponent(back)}`)).toEqual({
      name: 'login',
      returnTo: back,
      reauthenticate: true,
    });
    expect(parseRoute(`#/login?reauthenticate=yes&return_to=${encodeURIComponent(back)}`)).toEqual({
      name: 'login',
      returnTo: back,
    });
    for (const evil of [
      '//evil.example/authorize',
      '/\\evil.example',
      'https://evil.example/authorize?x',
      '/authorize/../../evil',
      '/authorizex',
      '/authorize?a=\\b',
      '/users/me',
      'javascript:alert(1)',
    ]) {
      expect(parseRoute(`#/login?return_to=${encodeURIComponent(evil)}`), evil).toEqual({ name: 'login' });
    }
  });

  it('follows only in-app `next` targets after login', () => {
    expect(parseRoute(loginHash('/rooms/new'))).toEqual({ name: 'login', next: '/rooms/new' });
    expect(parseRoute('#/login?next=//evil.example')).toEqual({ name: 'login' });
    expect(parseRoute('#/login?next=https%3A%2F%2Fevil.example')).toEqual({ name: 'login' });
    expect(parseRoute('#/login?next=%2Flogin')).toEqual({ name: 'login' });
  });

  it('opens the page each mailed link points at, with its token', () => {
    const mailer = createMailer({
      transport: { kind: 'outbox', check: async () => {}, send: async () => {}, close() {} },
      templates: loadMailTemplates(undefined),
      publicUrl: 'https://auth.example.com/',
      maxQueued: 1,
      scheduler: createTestClock(),
      warn() {},
    });
    for (const page of ['reset-password', 'verify-email', 'confirm-email'] as const) {
      const link = new URL(mailer.link(page, 'Tok_en-123'));
      expect(parseRoute(link.hash)).toEqual({ name: page, token: 'Tok_en-123' });
    }
    expect(parseRoute(new URL(mailer.link('forgot-password')).hash)).toEqual({ name: 'forgot-password' });
    mailer.close();
  });

  it('round-trips the hashes it builds', () => {
    expect(parseRoute(adminHash('audit'))).toEqual({ name: 'admin', section: 'audit' });
    expect(parseRoute(roomHash('ABCD2345'))).toEqual({ name: 'room', code: 'ABCD2345' });
    expect(parseRoute(joinHash('ABCD2345'))).toEqual({ name: 'join', code: 'ABCD2345' });
    expect(parseRoute(verifyHash('ABCD2345'))).toEqual({ name: 'verify-room', code: 'ABCD2345' });
  });
});

describe('canonicalRoomCode', () => {
  it('drops spaces and dashes and upper-cases ASCII letters only', () => {
    expect(canonicalRoomCode(' ab cd-23 45 ')).toBe('ABCD2345');
    // Non-ASCII stays as typed, so odd input cannot turn into a valid code (ﬀ would become FF).
    expect(canonicalRoomCode('ﬀ')).toBe('ﬀ');
  });
});

describe('watchHash', () => {
  it('puts the capability in the fragment, encoded, and parses back to it', () => {
    const hash = watchHash('ABCD2345', 'a+b/c=');
    expect(hash).toBe('#/watch/ABCD2345?token=a%2Bb%2Fc%3D');
    expect(parseRoute(hash)).toEqual({ name: 'watch', code: 'ABCD2345', token: 'a+b/c=' });
  });
});

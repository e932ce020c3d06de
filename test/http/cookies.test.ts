import { describe, expect, it } from 'vitest';
import { appCookieName, createCookiePolicy } from '../../src/http/cookies.js';
import { appCookieName as publicAppCookieName } from '../../src/http/index.js';

describe('appCookieName (RFC 6265bis §4.1.3 cookie prefixes for apps)', () => {
  it('gives __Host- to a Secure cookie on Path=/, __Secure- to one on a narrower path', () => {
    expect(appCookieName('widgets_pref', { secure: true, path: '/' })).toBe('__Host-widgets_pref');
    // __Host- demands Path=/, so a room's own path can only have __Secure-.
    expect(appCookieName('dicery_room_ABC234', { secure: true, path: '/rooms/ABC234' })).toBe(
      '__Secure-dicery_room_ABC234',
    );
  });

  it('drops the prefix without Secure (browsers refuse prefixed cookies sent over plain HTTP)', () => {
    expect(appCookieName('widgets_pref', { secure: false, path: '/' })).toBe('widgets_pref');
    expect(appCookieName('dicery_room_ABC234', { secure: false, path: '/rooms/ABC234' })).toBe(
      'dicery_room_ABC234',
    );
  });

  it('refuses a name that is no cookie-name token, one that fakes a prefix, and a relative path', () => {
    for (const name of ['', 'a b', 'a;b', 'a=b', '__Host-x', '__x', 'é', 'x'.repeat(201)]) {
      expect(() => appCookieName(name, { secure: true, path: '/' }), name).toThrow(TypeError);
    }
    expect(() => appCookieName('ok', { secure: true, path: 'rooms' })).toThrow(/must start with "\/"/);
  });

  it("is bound to the policy's Secure setting on the cookie policy, and public in gatehouse/fastify", () => {
    expect(createCookiePolicy(true).appCookieName('x', { path: '/a' })).toBe('__Secure-x');
    expect(createCookiePolicy(true).appCookieName('x', { path: '/' })).toBe('__Host-x');
    expect(createCookiePolicy(false).appCookieName('x', { path: '/' })).toBe('x');
    expect(publicAppCookieName).toBe(appCookieName);
  });

  it('keeps the core cookies under __Host- (the app helper changed none of them)', () => {
    const policy = createCookiePolicy(true);
    expect([policy.sessionName, policy.csrfSecretName, policy.csrfTokenName, policy.deviceName]).toEqual([
      '__Host-gatehouse_session',
      '__Host-gatehouse_csrf_secret',
      '__Host-gatehouse_csrf',
      '__Host-gatehouse_device',
    ]);
  });
});

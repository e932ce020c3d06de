import { describe, expect, it } from 'vitest';
import { createScopePolicy, grantScopes, ROLE_SCOPES, SCOPES } from '../../src/accounts/scopes.js';

const apps = {
  'rooms:host': { description: 'Host rooms', roles: ['user', 'admin'] },
  'clothes:write': { description: 'Edit clothes', roles: ['admin'] },
} as const;

describe('createScopePolicy', () => {
  it('adds the apps’ scopes after the core’s, to the roles they name and always to super admins', () => {
    const policy = createScopePolicy(apps);
    expect(Object.keys(policy.descriptions)).toEqual([...Object.keys(SCOPES), 'rooms:host', 'clothes:write']);
    expect(policy.forRole('user')).toEqual(['me', 'rooms:host']);
    expect(policy.forRole('admin')).toEqual([...ROLE_SCOPES.admin, 'rooms:host', 'clothes:write']);
    expect(policy.forRole('super_admin')).toEqual([
      ...ROLE_SCOPES.super_admin,
      'rooms:host',
      'clothes:write',
    ]);
    expect(policy.isKnown('rooms:host')).toBe(true);
    expect(policy.isKnown('toString')).toBe(false);
  });

  it('grants what the role allows, the role’s set when nothing is asked, and names what it refuses', () => {
    const policy = createScopePolicy(apps);
    expect(policy.grant('user', [])).toEqual({ ok: true, scopes: ['me', 'rooms:host'] });
    expect(policy.grant('user', ['rooms:host', 'rooms:host'])).toEqual({ ok: true, scopes: ['rooms:host'] });
    expect(policy.grant('user', ['me', 'clothes:write', 'made:up'])).toEqual({
      ok: false,
      rejected: ['clothes:write', 'made:up'],
    });
  });

  it('leaves the core alone: without apps, grants are the core’s', () => {
    expect(createScopePolicy().forRole('user')).toEqual(['me']);
    expect(grantScopes('user', ['rooms:host'])).toEqual({ ok: false, rejected: ['rooms:host'] });
  });

  it.each([
    [{ 'bad scope': { description: 'x', roles: ['user'] } }, /not an RFC 6749 scope token/],
    [{ 'q"uote': { description: 'x', roles: ['user'] } }, /not an RFC 6749 scope token/],
    [{ me: { description: 'x', roles: ['user'] } }, /one of Gatehouse's own/],
    [{ 'a:b': { description: ' ', roles: ['user'] } }, /needs a description/],
    [{ 'a:b': { description: 'x', roles: ['owner'] } }, /unknown roles: owner/],
  ])('refuses a misdeclared scope at start-up, naming it (%j)', (definitions, message) => {
    expect(() => createScopePolicy(definitions as never)).toThrow(message);
  });
});

import type { ScopeDefinitions } from '../../index.js';

/**
 * The clothes catalogue's OAuth scopes, registered with
 * `createGatehouse(config, { scopes: clothesScopes })`: everyone signed in browses, admins edit.
 */
export const clothesScopes = {
  'clothes:read': { description: 'Browse the clothes catalogue', roles: ['user', 'admin'] },
  'clothes:write': { description: 'Create, change and delete clothes (admins)', roles: ['admin'] },
} as const satisfies ScopeDefinitions;

import type { ScopeDefinitions } from '../../index.js';

/**
 * Dicery's OAuth scope, registered with `createGatehouse(config, { scopes: diceryScopes })`:
 * hosting rooms. Players need none (they hold room tokens, not account tokens).
 */
export const diceryScopes = {
  'rooms:host': { description: 'Create and host Dicery rooms', roles: ['user', 'admin'] },
} as const satisfies ScopeDefinitions;

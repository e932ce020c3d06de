import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { ROLES } from '../../src/accounts/roles.js';
import { COLORS, SIZES } from '../../src/apps/clothes/core/clothing-attributes.js';
import { DICE_LIMITS as serverDiceLimits } from '../../src/apps/dicery/core/dice.js';
import { PLAYER_NAME_MAX_LENGTH as serverPlayerNameMax } from '../../src/apps/dicery/core/player-name.js';
import { ROLL_LABEL_MAX_LENGTH, ROOM_NAME_MAX_LENGTH } from '../../src/apps/dicery/core/room-service.js';
import * as shared from '../../web/src/shared.js';

describe('web/src/shared.ts', () => {
  it('hands the web the very limits the server enforces', () => {
    expect(shared.DICE_LIMITS).toBe(serverDiceLimits);
    expect(shared.PLAYER_NAME_MAX_LENGTH).toBe(serverPlayerNameMax);
    expect(shared.ROOM_NAME_MAX_LENGTH).toBe(ROOM_NAME_MAX_LENGTH);
    expect(shared.ROLL_LABEL_MAX_LENGTH).toBe(ROLL_LABEL_MAX_LENGTH);
    expect(shared.SIZES).toBe(SIZES);
    expect(shared.COLORS).toBe(COLORS);
    expect(shared.ROLES).toBe(ROLES);
  });

  it('bundles for the browser with the shared rules and without TypeBox (wire types are types only)', async () => {
    const result = await build({
      entryPoints: ['web/src/main.ts'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toContain('src/apps/dicery/shared/room-code.ts');
    expect(inputs).toContain('src/apps/dicery/shared/limits.ts');
    expect(inputs.filter((path) => path.includes('node_modules/typebox'))).toEqual([]);
    // Only browser-safe server modules: the Dicery shared folder, the display-text rule and the
    // clothes catalogue's sizes and colours and the account roles (the admin console's choices).
    const allowed = (path: string) =>
      path.startsWith('src/apps/dicery/shared/') ||
      path === 'src/text/display-text.ts' ||
      path === 'src/apps/clothes/core/clothing-attributes.ts' ||
      path === 'src/accounts/roles.ts';
    expect(inputs.filter((path) => path.startsWith('src/') && !allowed(path))).toEqual([]);
  });
});

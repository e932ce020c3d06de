import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import {
  type AppSettings,
  collectAppDeclarations,
  defineAppSettings,
  findRegistrationProblems,
  pickAppSettings,
} from '../../src/config/app-settings.js';
import { defaultConfig } from '../../src/config/config.js';
import { loadConfig } from '../../src/config/load-config.js';
import { integerSetting, secondsSetting, textSetting } from '../../src/config/setting.js';
import { findConfigProblems } from '../../src/config/validate-config.js';
import { ConfigError } from '../../src/errors.js';

/** An app with two settings and both declarations, as an embedder would write it. */
const widgets = defineAppSettings({
  app: 'widgets',
  title: 'Widgets',
  schema: Type.Object({
    widgetsPerHour: integerSetting({
      env: 'WIDGETS_PER_HOUR',
      minimum: 1,
      maximum: 99,
      default: 7,
      description: 'widgets made per hour',
    }),
    widgetTokenTtl: secondsSetting({
      env: 'WIDGET_TOKEN_TTL',
      maximum: 12 * 3600,
      default: 3600,
      description: 'widget token lifetime',
    }),
  }),
  tokenLifetime: (settings) => settings.widgetTokenTtl,
  revocationCheckInterval: () => 20,
});

const valid = () => ({
  ...defaultConfig,
  databaseUrl: 'sqlite::memory:',
  secretKey: new Uint8Array(32).map((_, i) => (i * 7 + 1) % 256),
});

const problemsOf = (run: () => unknown): string[] => {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('defineAppSettings', () => {
  it('returns the definition, frozen, with its schema typed', () => {
    expect(Object.isFrozen(widgets)).toBe(true);
    expect(Object.keys(widgets.schema.properties)).toEqual(['widgetsPerHour', 'widgetTokenTtl']);
  });

  it('refuses a bad app name, a property that is no setting and a default outside its bounds', () => {
    expect(
      problemsOf(() =>
        defineAppSettings({
          app: 'Bad Name',
          title: 'x',
          schema: Type.Object({
            plain: Type.Integer() as never,
            tooMany: integerSetting({
              env: 'TOO_MANY',
              minimum: 1,
              maximum: 5,
              default: 9,
              description: 'x',
            }),
          }),
        }),
      ),
    ).toEqual([
      'app settings "Bad Name": the app name must match ^[a-z][a-z0-9-]{0,39}$',
      'Bad Name: plain is not a setting (build it with secondsSetting, integerSetting, …)',
      'Bad Name: the default of tooMany (TOO_MANY) is outside its own bounds',
    ]);
  });
});

describe('registering app settings together', () => {
  const clash = (schema: Parameters<typeof defineAppSettings>[0]['schema'], app = 'other') =>
    defineAppSettings({ app, title: app, schema });

  it('accepts distinct apps', () => {
    expect(findRegistrationProblems([widgets])).toEqual([]);
    expect(findRegistrationProblems([])).toEqual([]);
  });

  it("refuses an app twice, a property or a variable that is already the core's or another app's", () => {
    const core = clash(
      Type.Object({
        accessTokenTtl: secondsSetting({ env: 'OTHER_TTL', maximum: 60, default: 60, description: 'x' }),
        otherPort: integerSetting({ env: 'PORT', minimum: 1, maximum: 9, default: 1, description: 'x' }),
      }),
    );
    const sibling = clash(
      Type.Object({
        widgetsPerHour: integerSetting({
          env: 'OTHER_PER_HOUR',
          minimum: 1,
          maximum: 9,
          default: 1,
          description: 'x',
        }),
        otherName: textSetting({ env: 'WIDGET_TOKEN_TTL', default: 'x', description: 'x' }),
      }),
      'sibling',
    );
    expect(findRegistrationProblems([widgets, widgets])).toEqual([
      'app settings "widgets" are registered twice',
    ]);
    expect(findRegistrationProblems([core])).toEqual([
      "other: setting accessTokenTtl is already the core's",
      "other: variable PORT is already the core's",
    ]);
    expect(findRegistrationProblems([widgets, sibling])).toEqual([
      'sibling: setting widgetsPerHour is already app "widgets"\'s',
      'sibling: variable WIDGET_TOKEN_TTL is already app "widgets"\'s',
    ]);
    // Both paths refuse them, before reading a value.
    expect(problemsOf(() => loadConfig({}, { settings: [core] }))).toHaveLength(2);
    expect(findConfigProblems(valid(), [widgets, widgets])).toEqual([
      'app settings "widgets" are registered twice',
    ]);
  });
});

describe('app settings from the environment and from code: one schema, the same refusals', () => {
  it('reads the variables beside the core settings, with their defaults', () => {
    expect(loadConfig({}, { settings: [widgets] })).toMatchObject({
      widgetsPerHour: 7,
      widgetTokenTtl: 3600,
    });
    expect(
      loadConfig({ WIDGETS_PER_HOUR: '12', WIDGET_TOKEN_TTL: '2h', PORT: '9000' }, { settings: [widgets] }),
    ).toMatchObject({ widgetsPerHour: 12, widgetTokenTtl: 7200, port: 9000 });
    // Without the registration the variable is not a setting at all.
    expect(loadConfig({ WIDGETS_PER_HOUR: '12' })).not.toHaveProperty('widgetsPerHour');
  });

  it('names the variable and what it accepts, with the core problems, all at once', () => {
    expect(
      problemsOf(() =>
        loadConfig({ WIDGETS_PER_HOUR: '0', WIDGET_TOKEN_TTL: '13h', PORT: 'x' }, { settings: [widgets] }),
      ),
    ).toEqual([
      'PORT="x": expected an integer from 0 to 65535',
      'WIDGETS_PER_HOUR="0": expected an integer from 1 to 99',
      'WIDGET_TOKEN_TTL="13h": expected a duration such as 900, 15m, 12h or 7d (1s to 12h)',
    ]);
  });

  it('checks values passed in code by the same schema, naming the option and its variable', () => {
    expect(findConfigProblems({ ...valid(), widgetsPerHour: 12 }, [widgets])).toEqual([]);
    expect(findConfigProblems({ ...valid(), widgetsPerHour: 0, widgetTokenTtl: 'long' }, [widgets])).toEqual([
      'widgetsPerHour: got 0; expected an integer from 1 to 99 (env WIDGETS_PER_HOUR)',
      'widgetTokenTtl: got "long"; expected a number of seconds from 1 to 43200 (env WIDGET_TOKEN_TTL)',
    ]);
  });

  it('refuses an unknown option, saying which apps are registered (a typo never falls back to a default)', () => {
    expect(findConfigProblems({ ...valid(), widgetsPerHuor: 3 }, [widgets])).toEqual([
      'widgetsPerHuor: not a Gatehouse setting or of the registered apps (widgets)',
    ]);
    // An app's setting passed without registering the app is unknown too.
    expect(findConfigProblems({ ...valid(), widgetsPerHour: 3 })).toEqual([
      'widgetsPerHour: not a Gatehouse setting',
    ]);
  });

  it('fills the defaults of app settings left out in code', () => {
    expect(pickAppSettings({ ...valid(), widgetTokenTtl: 60 }, widgets)).toEqual({
      widgetsPerHour: 7,
      widgetTokenTtl: 60,
    });
    expect(Object.isFrozen(pickAppSettings(valid(), widgets))).toBe(true);
  });
});

describe('collectAppDeclarations', () => {
  let apps = 0;
  const declaring = (tokenLifetime: number, recheck: number): AppSettings =>
    defineAppSettings({
      app: `declares-${++apps}`,
      title: 'x',
      schema: Type.Object({}),
      tokenLifetime: () => tokenLifetime,
      revocationCheckInterval: () => recheck,
    });

  it('takes the longest of the declarations; zero when nobody declares', () => {
    const settingsOf = (app: AppSettings) => pickAppSettings({}, app);
    expect(collectAppDeclarations([], settingsOf)).toEqual({
      tokenLifetimeSeconds: 0,
      revocationCheckIntervalSeconds: 0,
    });
    expect(collectAppDeclarations([declaring(600, 30), declaring(60, 90)], settingsOf)).toEqual({
      tokenLifetimeSeconds: 600,
      revocationCheckIntervalSeconds: 90,
    });
    // The declaration reads the app's own settings.
    expect(
      collectAppDeclarations([widgets], (app) => pickAppSettings({ widgetTokenTtl: 5400 }, app)),
    ).toEqual({
      tokenLifetimeSeconds: 5400,
      revocationCheckIntervalSeconds: 20,
    });
  });

  it('refuses a declaration the retention rules cannot honour', () => {
    const settingsOf = (app: AppSettings) => pickAppSettings({}, app);
    expect(problemsOf(() => collectAppDeclarations([declaring(12 * 3600 + 1, 0)], settingsOf))).toEqual([
      expect.stringMatching(/tokenLifetime gave 43201; it must be a number of seconds from 0 to 43200/),
      expect.stringMatching(/revocationCheckInterval gave 0; it must be a number of seconds above 0/),
    ]);
    expect(
      problemsOf(() => collectAppDeclarations([declaring(Number.NaN, Infinity)], settingsOf)),
    ).toHaveLength(2);
  });
});

import type { Static, TObject } from 'typebox';
import { Check } from 'typebox/schema';
import { ConfigError } from '../errors.js';
import { APP_TOKEN_MAX_TTL } from '../tokens/app-tokens.js';
import { gatehouseConfigSchema } from './config-schema.js';
import { SETTING, type SettingSchema } from './setting.js';

/** The settings of one app, by `GatehouseConfig`-style property: each built with a setting builder. */
export type AppSettingProperties = Record<string, SettingSchema>;

/**
 * The values of the settings apps register, beside the core's in one flat settings object (the
 * environment is flat too: `SCORES_PER_MINUTE` sits beside `ACCESS_TOKEN_TTL`). Each app reads its
 * own, typed, with `gatehouse.appSettings(definition)`.
 */
export type AppSettingValues = { readonly [setting: string]: unknown };

/**
 * An app's settings, declared once with {@link defineAppSettings} and registered with
 * `createGatehouse(config, { settings: [definition] })` (and `resolveConfig(env, { settings })` for
 * the environment). The one schema reads the environment, checks options passed in code and writes
 * the app's section of the README's settings table.
 */
export interface AppSettings<P extends AppSettingProperties = AppSettingProperties> {
  /** The app's name, as in `migrations` (`dicery`): lower-case letters, digits and `-`. */
  readonly app: string;
  /** The heading of the app's section in the settings table: `Dicery (reference app)`. */
  readonly title: string;
  /**
   * The settings: a `Type.Object` of setting builders (`secondsSetting`, `integerSetting`, …). Their
   * properties and variables must differ from the core's and every other registered app's.
   */
  readonly schema: TObject<P>;
  /**
   * The longest lifetime, in seconds, of the tokens the app signs with `gatehouse.appTokens`
   * (at most `APP_TOKEN_MAX_TTL`). The core keeps a retired signing key published for the longest
   * of the access-token lifetime and every app's declaration (plus a margin), and refuses to sign
   * an app token that would outlive that. Omit it when the app signs no tokens.
   */
  tokenLifetime?(settings: Static<TObject<P>>): number;
  /**
   * How often, in seconds, the app re-checks long-lived responses (event streams) against
   * `gatehouse.sessions.isRevoked`, which answers from the in-memory revocation list. The core keeps
   * each revocation in the list for at least two of these intervals (one check may be skipped while
   * the previous one still runs), so no open stream outlives its revoked session. Omit it when the
   * app keeps no response open.
   */
  revocationCheckInterval?(settings: Static<TObject<P>>): number;
}

/** The static type of an app's settings: `AppSettingsOf<typeof dicerySettings>`. */
export type AppSettingsOf<D> = D extends AppSettings<infer P> ? Static<TObject<P>> : never;

const APP_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/**
 * Declares an app's settings (see {@link AppSettings}). Checks the declaration itself: a valid app
 * name, a setting builder behind every property, every default inside its own bounds. Throws a
 * `ConfigError` naming the app and the property otherwise. Returns the definition, frozen.
 */
export function defineAppSettings<P extends AppSettingProperties>(
  definition: AppSettings<P>,
): AppSettings<P> {
  const problems: string[] = [];
  if (!APP_NAME.test(definition.app)) {
    problems.push(
      `app settings ${JSON.stringify(definition.app)}: the app name must match ${APP_NAME.source}`,
    );
  }
  for (const [property, schema] of Object.entries(definition.schema.properties)) {
    const info = (schema as Partial<SettingSchema>)[SETTING];
    if (info === undefined) {
      problems.push(
        `${definition.app}: ${property} is not a setting (build it with secondsSetting, integerSetting, …)`,
      );
      continue;
    }
    if (info.default !== undefined && !Check(schema, info.default.value)) {
      problems.push(`${definition.app}: the default of ${property} (${info.env}) is outside its own bounds`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({ ...definition });
}

/**
 * Problems with registering `apps` together: an app registered twice, a property or variable that
 * is already the core's or another app's. A clash would make one value feed two settings, so it is
 * refused rather than resolved by order.
 */
export function findRegistrationProblems(apps: readonly AppSettings[]): string[] {
  const problems: string[] = [];
  const owners = new Map<string, string>();
  const envOwners = new Map<string, string>();
  for (const [property, schema] of Object.entries(gatehouseConfigSchema.properties)) {
    owners.set(property, 'the core');
    envOwners.set(schema[SETTING].env, 'the core');
  }
  const names = new Set<string>();
  for (const app of apps) {
    if (names.has(app.app)) {
      problems.push(`app settings "${app.app}" are registered twice`);
      continue;
    }
    names.add(app.app);
    for (const [property, schema] of Object.entries(app.schema.properties)) {
      const env = schema[SETTING].env;
      const owner = owners.get(property);
      if (owner !== undefined) problems.push(`${app.app}: setting ${property} is already ${owner}'s`);
      else owners.set(property, `app "${app.app}"`);
      const envOwner = envOwners.get(env);
      if (envOwner !== undefined) problems.push(`${app.app}: variable ${env} is already ${envOwner}'s`);
      else envOwners.set(env, `app "${app.app}"`);
    }
  }
  return problems;
}

/** Throws a `ConfigError` listing {@link findRegistrationProblems}, if any. */
export function assertRegistrable(apps: readonly AppSettings[]): void {
  const problems = findRegistrationProblems(apps);
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * One app's values out of the flat settings object: each property given, or its default. Call on
 * settings that passed validation (`assertValidConfig(config, apps)`).
 */
export function pickAppSettings<P extends AppSettingProperties>(
  config: AppSettingValues,
  app: AppSettings<P>,
): Static<TObject<P>> {
  const values: Record<string, unknown> = {};
  for (const [property, schema] of Object.entries(app.schema.properties)) {
    values[property] = Object.hasOwn(config, property) ? config[property] : schema[SETTING].default?.value;
  }
  if (!Check(app.schema, values)) {
    // assertValidConfig checked every value; reaching this is a bug in the caller.
    throw new Error(`${app.app}: settings do not pass the app's schema; validate them first`);
  }
  Object.freeze(values);
  return values;
}

/** What the core must know of the registered apps, from their declarations. */
export interface AppDeclarations {
  /** The longest app token lifetime in seconds; 0 when no app signs tokens. */
  tokenLifetimeSeconds: number;
  /** The longest revocation re-check interval in seconds; 0 when no app keeps responses open. */
  revocationCheckIntervalSeconds: number;
}

/**
 * The longest of the apps' declarations ({@link AppSettings.tokenLifetime},
 * {@link AppSettings.revocationCheckInterval}) for their settings. A declaration that is not a
 * finite number of seconds, or a token lifetime beyond `APP_TOKEN_MAX_TTL`, is a `ConfigError`
 * naming the app: the core's retention rules would otherwise be silently wrong.
 */
export function collectAppDeclarations(
  apps: readonly AppSettings[],
  settingsOf: (app: AppSettings) => Static<TObject<AppSettingProperties>>,
): AppDeclarations {
  const problems: string[] = [];
  let tokenLifetimeSeconds = 0;
  let revocationCheckIntervalSeconds = 0;
  for (const app of apps) {
    const settings = settingsOf(app);
    if (app.tokenLifetime !== undefined) {
      const seconds = app.tokenLifetime(settings);
      if (!Number.isFinite(seconds) || seconds < 0 || seconds > APP_TOKEN_MAX_TTL) {
        problems.push(
          `${app.app}: tokenLifetime gave ${seconds}; it must be a number of seconds from 0 to ${APP_TOKEN_MAX_TTL} (APP_TOKEN_MAX_TTL)`,
        );
      } else tokenLifetimeSeconds = Math.max(tokenLifetimeSeconds, seconds);
    }
    if (app.revocationCheckInterval !== undefined) {
      const seconds = app.revocationCheckInterval(settings);
      // A day: far beyond any heartbeat, and it keeps a mistaken declaration from pinning revocations for ever.
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86400) {
        problems.push(
          `${app.app}: revocationCheckInterval gave ${seconds}; it must be a number of seconds above 0, at most 86400`,
        );
      } else revocationCheckIntervalSeconds = Math.max(revocationCheckIntervalSeconds, seconds);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { tokenLifetimeSeconds, revocationCheckIntervalSeconds };
}

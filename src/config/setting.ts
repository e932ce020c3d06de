import { type Static, type TEnum, type TSchema, Type } from 'typebox';

/**
 * How a setting's environment variable is written. Each syntax only turns the string into a value;
 * bounds and formats are checked afterwards by the setting's schema, the same check that
 * `createGatehouse` runs on options passed in code.
 */
export type EnvSyntax =
  /** The string as it is. */
  | 'text'
  /** Decimal digits. */
  | 'integer'
  /** Seconds: `900`, `15m`, `12h`, `7d`. */
  | 'seconds'
  /** Milliseconds: `5s`, `750ms`, or bare seconds. */
  | 'milliseconds'
  /** `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`. */
  | 'boolean'
  /** Comma-separated items, blanks dropped. */
  | 'list'
  /** An origin; one trailing `/` is dropped. */
  | 'origin'
  /** `true`/`false`, a hop count, or comma-separated proxy addresses. */
  | 'trust-proxy'
  /** The UTF-8 bytes of the string. */
  | 'bytes'
  /** A JSON document (structured settings such as `EXTERNAL_ISSUERS`). */
  | 'json';

/** The key under which a setting's schema carries its {@link SettingInfo}. */
export const SETTING = 'x-setting';

/** What the settings schema says about one setting beyond its type and bounds. */
export interface SettingInfo {
  /** The environment variable, e.g. `ACCESS_TOKEN_TTL`. */
  readonly env: string;
  /** How the variable's string is read. */
  readonly syntax: EnvSyntax;
  /** What the setting does (the README's "meaning" column). */
  readonly description: string;
  /** The default value; absent when there is none or it derives from other settings. */
  readonly default: { readonly value: unknown } | undefined;
  /** The default as the README shows it. */
  readonly defaultText: string;
  /** What is accepted: as the variable is written, and as the option is passed in code. */
  readonly accepts: { readonly env: string; readonly code: string };
  /** Never echo the value in messages (a secret, or a URL that may hold a password). */
  readonly sensitive: boolean;
}

/** A TypeBox schema that carries its {@link SettingInfo}. */
export type SettingSchema<S extends TSchema = TSchema> = S & { readonly [SETTING]: SettingInfo };

/** The common fields of every setting builder. */
interface BaseInput<T> {
  /** The environment variable. */
  env: string;
  /** What the setting does. */
  description: string;
  /** The default value (`undefined` is a value: the setting is off). Omit when it is derived. */
  default?: T;
  /** README text of the default, when the plain value would mislead (derived, generated, off). */
  defaultText?: string;
  /** Never echo the value in messages. @default false */
  sensitive?: boolean;
}

/**
 * Attaches `info` to `schema`. The builders below are the usual way in; use this one directly for a
 * setting with a syntax of its own.
 */
export function setting<S extends TSchema>(
  schema: S,
  input: BaseInput<Static<S>> & { syntax: EnvSyntax; accepts: { env: string; code: string } },
): SettingSchema<S> {
  const hasDefault = 'default' in input;
  const info: SettingInfo = {
    env: input.env,
    syntax: input.syntax,
    description: input.description,
    default: hasDefault ? { value: input.default } : undefined,
    defaultText: input.defaultText ?? (hasDefault ? formatDefault(input.default, input.syntax) : '_(none)_'),
    accepts: input.accepts,
    sensitive: input.sensitive ?? false,
  };
  return Object.assign(schema, { [SETTING]: info });
}

/** A non-empty string, optionally matching `pattern` (then `accepts` says what it means). */
export function textSetting(
  input: BaseInput<string> & { pattern?: string; accepts?: string },
): SettingSchema<ReturnType<typeof Type.String>> {
  const accepts = input.accepts ?? 'a non-empty string';
  return setting(Type.String({ minLength: 1, ...(input.pattern ? { pattern: input.pattern } : {}) }), {
    ...input,
    syntax: 'text',
    accepts: { env: accepts, code: accepts },
  });
}

/** An integer from `minimum` to `maximum`. */
export function integerSetting(
  input: BaseInput<number> & { minimum: number; maximum: number },
): SettingSchema<ReturnType<typeof Type.Integer>> {
  const accepts = `an integer from ${input.minimum} to ${input.maximum}`;
  return setting(Type.Integer({ minimum: input.minimum, maximum: input.maximum }), {
    ...input,
    syntax: 'integer',
    accepts: { env: accepts, code: accepts },
  });
}

/**
 * A duration in seconds. The variable is written `900`, `15m`, `12h` or `7d`; in code it is a
 * number of seconds, fractions allowed (tests use sub-second heartbeats). `minimum` defaults to 1.
 */
export function secondsSetting(
  input: BaseInput<number> & { minimum?: number; maximum: number },
): SettingSchema<ReturnType<typeof Type.Number>> {
  const minimum = input.minimum ?? 1;
  // The variable's syntax only writes whole seconds, so its smallest value is the next whole one.
  const envMinimum = Math.ceil(minimum);
  return setting(Type.Number({ minimum, maximum: input.maximum }), {
    ...input,
    syntax: 'seconds',
    accepts: {
      env: `a duration such as 900, 15m, 12h or 7d (${formatSeconds(envMinimum)} to ${formatSeconds(input.maximum)})`,
      code: `a number of seconds from ${minimum} to ${input.maximum}`,
    },
  });
}

/**
 * A timeout in milliseconds, from 100 ms to 10 min: below that a healthy database or client would
 * trip it, above it a caller may as well have no timeout. Written `5s`, `750ms` or `5` (seconds).
 */
export function millisecondsSetting(
  input: BaseInput<number>,
): SettingSchema<ReturnType<typeof Type.Integer>> {
  return setting(Type.Integer({ minimum: 100, maximum: 600_000 }), {
    ...input,
    syntax: 'milliseconds',
    accepts: {
      env: 'a timeout such as 5s or 750ms (100ms to 10m)',
      code: 'an integer number of milliseconds from 100 to 600000',
    },
  });
}

/** A boolean. */
export function flagSetting(input: BaseInput<boolean>): SettingSchema<ReturnType<typeof Type.Boolean>> {
  return setting(Type.Boolean(), {
    ...input,
    syntax: 'boolean',
    accepts: { env: 'true or false', code: 'true or false' },
  });
}

/** One of a fixed list of strings. */
export function choiceSetting<const Values extends string[]>(
  input: BaseInput<Values[number]> & { values: readonly [...Values] },
): SettingSchema<TEnum<Values>> {
  const accepts = `one of ${input.values.join(', ')}`;
  return setting(Type.Enum(input.values), {
    ...input,
    syntax: 'text',
    accepts: { env: accepts, code: accepts },
  });
}

/** `value` seconds in the largest unit that divides it exactly: `15m`, `7d`, `5s`. */
export function formatSeconds(value: number): string {
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (value >= size && value % size === 0) return `${value / size}${unit}`;
  }
  return `${value}s`;
}

function formatMilliseconds(value: number): string {
  return value % 1000 === 0 ? formatSeconds(value / 1000) : `${value}ms`;
}

function formatDefault(value: unknown, syntax: EnvSyntax): string {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return '_(none)_';
  if (typeof value === 'number' && syntax === 'seconds') return `\`${formatSeconds(value)}\``;
  if (typeof value === 'number' && syntax === 'milliseconds') return `\`${formatMilliseconds(value)}\``;
  return `\`${Array.isArray(value) ? value.join(',') : String(value)}\``;
}

import type { AppSettingValues } from './app-settings.js';
import { bootstrapSecret } from './bootstrap-secret.js';
import type { GatehouseConfig } from './config.js';
import { estimatedEntropyBits, MIN_SECRET_ENTROPY_BITS } from './config-schema.js';
import { describeLooseFileMode, findLooseFileModes } from './file-modes.js';
import { type LoadConfigOptions, loadConfig, readEnvironment } from './load-config.js';

/** A note for the operator produced while resolving settings. */
export interface ConfigNotice {
  level: 'info' | 'warn';
  message: string;
}

/**
 * Reads settings from the environment (and `.env`), those of the apps in `options.settings`
 * included (see {@link loadConfig}), generating and keeping the secret in
 * `DATA_DIR` when `SECRET_KEY` is unset. Returns notices to log (the generated secret, insecure
 * cookies, files whose mode lets others read them) so start-up says what it decided.
 */
export function resolveConfig(
  env: Record<string, string | undefined> = readEnvironment(),
  options: LoadConfigOptions = {},
): {
  config: GatehouseConfig & AppSettingValues;
  notices: ConfigNotice[];
} {
  const loaded = loadConfig(env, options);
  const notices: ConfigNotice[] = [];
  let secretKey = loaded.secretKey;
  if (secretKey === undefined) {
    const secret = bootstrapSecret(loaded.dataDir);
    secretKey = secret.key;
    notices.push({
      level: 'info',
      message: secret.created
        ? `SECRET_KEY is not set: generated 256 random bits and saved them to ${secret.path} (mode 0600)`
        : `SECRET_KEY is not set: using the secret kept in ${secret.path}`,
    });
  }
  if (
    loaded.secretKeyPrevious !== undefined &&
    estimatedEntropyBits(loaded.secretKeyPrevious) < MIN_SECRET_ENTROPY_BITS
  ) {
    // Accepted, so a weak key can be rotated away; but HS256 tokens it signed verify until they
    // expire, and anyone who guesses it can forge them meanwhile (the review of red-team 2026-12j E5).
    notices.push({
      level: 'warn',
      message:
        'SECRET_KEY_PREVIOUS is plainly not random: tokens it signed (and any forged with it) verify until ' +
        'ACCESS_TOKEN_TTL passes; remove it as soon as those have expired',
    });
  }
  if (!loaded.cookieSecure) {
    notices.push({
      level: 'warn',
      message: 'COOKIE_SECURE=false: cookies are sent over plain HTTP. Use this only for local development.',
    });
  }
  if (env.PUBLIC_URL === undefined || env.PUBLIC_URL === '') {
    notices.push({
      level: 'info',
      message:
        `PUBLIC_URL is not set: using ${loaded.publicUrl} as the external origin (issuer, OpenAPI servers, ` +
        'metadata links); set it to the URL clients use',
    });
  }
  if (loaded.corsOrigins.length > 0) {
    // An upgrade note (red-team 2026-12e J6): a deployment that listed its own front end here lost
    // its cookie session and should move it to CORS_CREDENTIALED_ORIGINS, never an app's origin.
    notices.push({
      level: 'info',
      message:
        'CORS_ORIGINS answers cross-origin reads without credentials (bearer tokens only): a front end that ' +
        "must act as the web UI with the person's cookie session belongs in CORS_CREDENTIALED_ORIGINS",
    });
  }
  for (const loose of findLooseFileModes(loaded.dataDir, loaded.databaseUrl)) {
    notices.push({ level: 'warn', message: describeLooseFileMode(loose) });
  }
  return { config: { ...loaded, secretKey }, notices };
}

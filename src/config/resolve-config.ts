import { ConfigError } from '../errors.js';
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
    // A generated secret lives in this instance's DATA_DIR alone. With PostgreSQL other instances
    // may share the database, and each one generating its own refuses the others' HS256 tokens,
    // CSRF, mfa and device tokens, and TOTP secrets (red-team 2026-12q Q2). Unset may be a single
    // instance on a kept volume, so it is a warning; set but empty is a template's unexpanded
    // `${SECRET_KEY}`, never a choice, so it is refused before anything is generated.
    const shared = /^postgres(ql)?:/.test(loaded.databaseUrl);
    if (shared && env.SECRET_KEY === '') {
      throw new ConfigError([
        'SECRET_KEY is set but empty: with PostgreSQL every instance must share one secret, and one generated ' +
          "here would be this instance's alone; set the same SECRET_KEY on every instance (generate one with: " +
          "node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\")",
      ]);
    }
    const secret = bootstrapSecret(loaded.dataDir);
    secretKey = secret.key;
    const where = secret.created
      ? `generated 256 random bits and saved them to ${secret.path} (mode 0600)`
      : `using the secret kept in ${secret.path}`;
    notices.push(
      shared
        ? {
            level: 'warn',
            message:
              `SECRET_KEY is not set: ${where}; every other instance on this PostgreSQL database must use the same ` +
              'secret (set SECRET_KEY to it everywhere), or each refuses the tokens the others issue',
          }
        : { level: 'info', message: `SECRET_KEY is not set: ${where}` },
    );
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
    // Listening beyond this machine with the default origin (newcomer review 2026-12-06): a browser
    // elsewhere opens another address, where the Secure cookies of plain HTTP are dropped and the
    // web UI answered every sign-in with "The CSRF token is invalid", naming no cause.
    notices.push(
      isLoopbackHost(loaded.host)
        ? {
            level: 'info',
            message:
              `PUBLIC_URL is not set: using ${loaded.publicUrl} as the external origin (issuer, OpenAPI servers, ` +
              'metadata links); set it to the URL clients use',
          }
        : {
            level: 'warn',
            message:
              `HOST=${loaded.host} listens beyond this machine, but PUBLIC_URL is not set (${loaded.publicUrl}): ` +
              'browsers elsewhere open another address, where the web UI cannot keep its session or CSRF cookies ' +
              'and tokens name the wrong issuer; set PUBLIC_URL to the https:// address they use',
          },
    );
  } else if (loaded.cookieSecure && plainHttpElsewhere(loaded.publicUrl)) {
    // Browsers keep Secure cookies only from secure contexts, and plain http counts as one only
    // on this machine (localhost, loopback): the web UI's session and CSRF cookies never stick.
    notices.push({
      level: 'warn',
      message:
        `PUBLIC_URL=${loaded.publicUrl} is plain http away from this machine, and cookies are Secure: browsers ` +
        'drop them, so the web UI cannot sign in (its CSRF check fails). Serve it over https (e.g. a ' +
        'TLS-terminating proxy, with TRUST_PROXY), or set COOKIE_SECURE=false on a network you trust',
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

/**
 * True for an address only this machine reaches (`HOST`): loopback, or `localhost`, in any case
 * (host names are), and an IPv4 loopback mapped into IPv6 (`::ffff:127.0.0.1`): red-team 2026-12u
 * found both warned about as listening beyond this machine.
 */
function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase();
  return name === 'localhost' || name === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(name);
}

/**
 * True when `origin` is plain `http:` on a host other than localhost or a loopback address: not a
 * secure context (W3C Secure Contexts §3.1), so browsers refuse its `Secure` cookies.
 */
function plainHttpElsewhere(origin: string): boolean {
  const { protocol, hostname } = new URL(origin);
  if (protocol !== 'http:') return false;
  return !(
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    hostname === '[::1]' ||
    isLoopbackHost(hostname)
  );
}

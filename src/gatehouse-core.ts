/**
 * The core's internals behind the public {@link Gatehouse} facade: the database handle, the stores,
 * the caches, the keyring, the event bus and the services the Fastify adapter's own routes call.
 *
 * An embedding app never reaches these: writing the `users` table or the session store directly
 * would skip the cache evictions and cross-instance broadcasts the services keep (issue 16). So
 * no public entry (`src/index.ts`, `src/http/index.ts`, `src/server-entry.ts`, `src/testing.ts`)
 * re-exports this module; the adapter, the reference server and the CLI import it by path, and
 * the import rule (`.dependency-cruiser.cjs`, `core-internals`) keeps everyone else out. A facade
 * is mapped to its core through a module-private `WeakMap`, so the facade object carries no
 * property that leads to the internals (not even a symbol-keyed one `Object.getOwnPropertySymbols`
 * would find), and a dropped facade frees its core with it.
 *
 * @module
 */
import type { AccountDeletion } from './accounts/account-deletion.js';
import type { AccountLifecycle } from './accounts/account-lifecycle.js';
import type { AccountService } from './accounts/account-service.js';
import type { CounterStore } from './accounts/counter-store.js';
import type { LoginThrottle } from './accounts/login-throttle.js';
import type { ScopePolicy } from './accounts/scopes.js';
import type { SelfService } from './accounts/self-service.js';
import type { UserAdminService } from './accounts/user-admin-service.js';
import type { UserCache } from './accounts/user-cache.js';
import type { UserImport } from './accounts/user-import.js';
import type { AuditLog } from './audit/audit-log.js';
import type { GatehouseConfig } from './config/config.js';
import type { EventBus } from './events/event-bus.js';
import type { RedisState, RedisStats } from './events/redis-connections.js';
import type { Gatehouse } from './gatehouse.js';
import type { Mailer } from './mail/mailer.js';
import type { SecurityNotices } from './mail/security-notices.js';
import type { MfaAdministration } from './mfa/mfa-administration.js';
import type { MfaService } from './mfa/mfa-service.js';
import type { PasskeyService } from './mfa/passkeys.js';
import type { AuthorizationServer } from './oauth/authorization-server.js';
import type { ClientCredentials } from './oauth/client-credentials.js';
import type { ClientEndpointLimits } from './oauth/client-endpoint-limits.js';
import type { LiveClients } from './oauth/live-clients.js';
import type { OAuthClients } from './oauth/oauth-clients.js';
import type { RpInitiatedLogout } from './oauth/rp-initiated-logout.js';
import type { TokenIntrospection } from './oauth/token-introspection.js';
import type { PasswordHasher } from './passwords/password-hasher.js';
import type { RefusalFloor } from './passwords/refusal-floor.js';
import type { ExternalTokenVerifier } from './resource-server/external-token-verifier.js';
import type { Reauthentication } from './sessions/reauthentication.js';
import type { RevocationList } from './sessions/revocation-list.js';
import type { SessionManager } from './sessions/session-manager.js';
import type { StepUpPolicy } from './sessions/step-up.js';
import type { TokenGrants } from './sessions/token-grants.js';
import type { AuditRetentionStore } from './storage/audit-retention-store.js';
import type { Database } from './storage/open-database.js';
import type { SessionStore } from './storage/session-store.js';
import type { UserStore } from './storage/user-store.js';
import type { IdTokenKeys } from './tokens/id-token-keys.js';
import type { Keyring } from './tokens/keyring.js';

/**
 * Everything one Gatehouse instance is built from (see `createGatehouseCore`): what the adapter's
 * routes, the metrics, the readiness probe and the CLI use. Internal: apps get {@link Gatehouse}.
 */
export interface GatehouseCore {
  /** The server's OAuth scopes: the core's and those its apps registered (`createGatehouse`'s `scopes`). */
  readonly scopes: ScopePolicy;
  /** The settings, secrets included (CSRF and device tokens are keyed by `secretKey`). */
  readonly config: GatehouseConfig;
  readonly clock: () => number;
  readonly database: Database;
  readonly users: UserStore;
  readonly sessionStore: SessionStore;
  readonly userCache: UserCache;
  readonly hasher: PasswordHasher;
  /** How long refused sign-ins last at least, once legacy hashes were imported (metrics). */
  readonly refusalFloor: RefusalFloor;
  readonly keyring: Keyring;
  /**
   * How long a retired signing key stays published: the longest of the access-token lifetime and
   * the registered apps' `tokenLifetime`, plus a margin (`rotate-keys` deletes keys older than that).
   */
  readonly keyRetentionSeconds: number;
  readonly bus: EventBus;
  readonly revocations: RevocationList;
  readonly sessions: SessionManager;
  readonly accounts: AccountService;
  /** The token endpoint's grants (`password`, `refresh_token`): scopes, login rules, audit. */
  readonly tokenGrants: TokenGrants;
  /** Register, browser sign-in and sign-out, profile changes and one's own sessions. */
  readonly selfService: SelfService;
  /** Administration of other people's accounts (roles, disabling, deletion). */
  readonly userAdmin: UserAdminService;
  /**
   * The one account deletion routine, behind both `DELETE /users/me` and `DELETE /users/{id}`: its
   * hooks are the apps' (`Gatehouse.onAccountDeleting`).
   */
  readonly accountDeletion: AccountDeletion;
  /**
   * Email verification, password reset, email change and account deletion (issue 12): mailed,
   * single-use, expiring links; self-service deletion (through {@link GatehouseCore.accountDeletion}).
   */
  readonly lifecycle: AccountLifecycle;
  /**
   * Outgoing mail: SMTP (`SMTP_URL`) or the file outbox (`DATA_DIR/outbox`), queued and retried in
   * the background.
   */
  readonly mailer: Mailer;
  /**
   * Security notices (a password or address changed, a second factor added, removed or locked, an
   * account deleted): stored with the change they report, mailed after its commit, so a crash
   * between the two does not lose them (`pending_notices`).
   */
  readonly securityNotices: SecurityNotices;
  /** Second factors: TOTP enrolment, recovery codes, the second step of a login. */
  readonly mfa: MfaService;
  /** Passkeys (WebAuthn): registration, passwordless sign-in, re-authentication. */
  readonly passkeys: PasskeyService;
  /** Admins' view and reset of other accounts' second factors. */
  readonly mfaAdministration: MfaAdministration;
  /**
   * Step-up for sensitive changes: `await core.stepUp.requireRecentAuthentication(sessionId)`
   * throws STEP_UP_REQUIRED (401 `insufficient_user_authentication`, RFC 9470) unless the session
   * authenticated within STEP_UP_MAX_AGE. The core's services call it before a sensitive change.
   */
  readonly stepUp: StepUpPolicy;
  /** `POST /auth/reauthenticate`: proves the account's factors again and refreshes `auth_time`. */
  readonly reauthentication: Reauthentication;
  /** Accounts imported from another application with their legacy hashes (`import-users`). */
  readonly userImport: UserImport;
  /** Registered OAuth clients: registration by admins, look-up, client authentication (issue 15). */
  readonly oauthClients: OAuthClients;
  /**
   * Registered clients as guards need them on every use, cached (at most 30 s stale; a removal or
   * disable evicts them on every instance through the bus).
   */
  readonly liveClients: LiveClients;
  /**
   * Resource-server mode (issue 15): access tokens of the `EXTERNAL_ISSUERS`, verified against
   * their fetched keys; accepted only by guards that opt in (`allow: ['external']`).
   */
  readonly externalTokens: ExternalTokenVerifier;
  /** The OAuth 2.1 / OpenID Connect provider: authorization requests, consent, codes, ID tokens (issue 15). */
  readonly authorizationServer: AuthorizationServer;
  /** RP-initiated logout: `id_token_hint`, `post_logout_redirect_uri`, which sessions end. */
  readonly rpLogout: RpInitiatedLogout;
  /**
   * The `client_credentials` grant and its tokens (issue 15): issuing, and checking on every use
   * that the client still exists; the `client` principal of `request.auth`.
   */
  readonly clientCredentials: ClientCredentials;
  /** RFC 7662 introspection: what an authenticated confidential client may learn about a token. */
  readonly tokenIntrospection: TokenIntrospection;
  /** The introspection endpoint's limits (per authenticated client; failed authentications per address). */
  readonly introspectionLimits: ClientEndpointLimits;
  /** The revocation endpoint's limits, on counters of their own (same shape as introspection's). */
  readonly revocationLimits: ClientEndpointLimits;
  /**
   * The keyrings that sign ID tokens, whose keys `/.well-known/jwks.json` publishes: the
   * access-token keyring when JWT_ALG is asymmetric, else an ES256 one, plus an RS256 one for the
   * clients that choose it (OpenID Connect Core §15.1); those are created on first use.
   */
  readonly idTokenKeys: IdTokenKeys;
  readonly throttle: LoginThrottle;
  /** Expiring counters (route and registration limits, apps' counters); in Redis when configured. */
  readonly counters: CounterStore;
  /**
   * Expiring counters of the sign-in, second-factor and passkey lock-outs and the per-address mail
   * caps: a store of their own, so that no flood of route-limit keys (one per client address)
   * evicts them from memory (red-team 2026-12l N1). In Redis when configured.
   */
  readonly securityCounters: CounterStore;
  readonly audit: AuditLog;
  /** Failed-login tallies (one row per account and hour) and the AUDIT_RETENTION sweep. */
  readonly auditRetention: AuditRetentionStore;
  /** Redis as readiness reports it (see {@link Gatehouse.redisState}). */
  redisState(): RedisState;
  /** Redis reconnections and cross-instance message lag since start; undefined without Redis. */
  redisStats(): RedisStats | undefined;
  /**
   * Like {@link redisState}, but when Redis looks up it is asked (PING) within `timeoutMs`, so a
   * frozen Redis shows as `down` even before a request ran into it. For readiness probes.
   */
  checkRedis(timeoutMs: number): Promise<RedisState>;
  /**
   * True once `gatehouse revoke-all` replaced the `SECRET_KEY` this instance runs with (the
   * database's fingerprint is neither its `SECRET_KEY`'s nor `SECRET_KEY_PREVIOUS`'s, found when the
   * cut-off rose): from then on it refuses every token checked against the cut-off and is not
   * ready, until restarted with the new secret.
   */
  secretSuperseded(): boolean;
  /** The public facade over this core: what the plugin decorates `app.gatehouse` with. */
  readonly facade: Gatehouse;
  /** Closes connections and timers (the facade's `close`). */
  close(): Promise<void>;
}

// Module-private: holding a facade is not enough to reach its core without importing this module.
const cores = new WeakMap<Gatehouse, GatehouseCore>();

/** Records `core` as the internals of its facade (called once, by `createGatehouseCore`). */
export function bindGatehouseCore(core: GatehouseCore): void {
  cores.set(core.facade, core);
}

/**
 * The internals behind a facade made by `createGatehouse`. Throws for any other object (a
 * hand-made stand-in has no core for the adapter to run on), naming the fix.
 */
export function gatehouseCore(gatehouse: Gatehouse): GatehouseCore {
  const core = cores.get(gatehouse);
  if (core === undefined) {
    throw new TypeError('not a Gatehouse instance: create it with createGatehouse(config, options)');
  }
  return core;
}

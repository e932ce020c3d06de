import type { Generated } from 'kysely';

/**
 * Table shapes as Kysely sees them. Timestamps are epoch milliseconds in `bigint` columns and
 * booleans are 0/1 integers, so one query layer behaves the same on SQLite and PostgreSQL.
 */
export interface UsersTable {
  id: string;
  email: string;
  /** Lower-cased NFKC form of `email`; unique, so two spellings can never be two accounts. */
  email_key: string;
  full_name: string | null;
  password_hash: string;
  role: string;
  is_active: number;
  /** 1 once the owner followed a verification (or reset, or email-change) link mailed to `email`. */
  email_verified: Generated<number>;
  created_at: number;
  updated_at: number;
  /**
   * Moved by everything that ends all of the account's sessions (migration `023a`); a sign-in
   * writes its session only while it still holds the value it was decided on (red-team 2026-12d I3).
   */
  credentials_version: Generated<number>;
}

/**
 * Single-use links mailed to an address (migration 010), stored only as SHA-256 hashes; one per
 * account and purpose.
 */
export interface AccountTokensTable {
  token_hash: string;
  user_id: string;
  purpose: string;
  email_key: string;
  email: string;
  created_at: number;
  expires_at: number;
  /** The session that asked for an email change (migration `022a`); null for other purposes. */
  session_id: string | null;
}

/** A login: every token (access, refresh, cookie) is a view of one session row. */
export interface SessionsTable {
  id: string;
  user_id: string;
  transport: string;
  scope: string;
  created_at: number;
  last_used_at: number;
  expires_at: number;
  revoked_at: number | null;
  user_agent: string | null;
  ip: string | null;
  /** SHA-256 of the browser session cookie, for cookie sessions. */
  cookie_token_hash: string | null;
  /** When the user last authenticated in this session (migration 012b); null: `created_at`. */
  auth_time: number | null;
  /** RFC 8176 methods of that authentication, space-separated (migration 012b); null: `pwd`. */
  amr: string | null;
  /** The client the session was started for (migration 024a); `gatehouse` for first-party ones. */
  client_id: string;
}

/** Refresh tokens, stored only as hashes; `spent_at` marks a rotated-away token. */
export interface RefreshTokensTable {
  token_hash: string;
  session_id: string;
  created_at: number;
  expires_at: number;
  spent_at: number | null;
  /**
   * The successor refresh token, AES-256-GCM encrypted (never plain), kept while a retry of this
   * spent token may still get it back (refresh grace, migration 007).
   */
  successor: string | null;
  /** RFC 9068 `client_id` of the client that obtained the token (migration 009); null before it. */
  client_id: string | null;
  /**
   * 1 when the token names its session under a MAC (`tokens/refresh-token.ts`), 0 for the earlier
   * random-only layout (migration 025a): only tagged spent rows are pruned by a rotation.
   */
  tagged: Generated<number>;
}

/** Opaque access tokens for `TOKEN_STRATEGY=database`, stored only as hashes. */
export interface AccessTokensTable {
  token_hash: string;
  session_id: string;
  scope: string;
  created_at: number;
  expires_at: number;
  /** RFC 9068 `client_id` of the client the token was issued to (migration 009); null before it. */
  client_id: string | null;
}

/**
 * Asymmetric signing keys (migration 009). State comes from the timestamps: see
 * `src/tokens/signing-key-set.ts`.
 */
export interface SigningKeysTable {
  kid: string;
  alg: string;
  /** Rotation number per algorithm, unique: the activated key with the highest one signs. */
  generation: number;
  /** The public JWK as JSON (no private member). */
  public_jwk: string;
  /** The private JWK as JSON, AES-256-GCM sealed under a key derived from SECRET_KEY. */
  private_key: string;
  created_at: number;
  /** When the key starts signing (after the JWKS publication delay). */
  activates_at: number;
  /** When the key was withdrawn (`rotate-keys --revoke`); its tokens no longer verify. */
  revoked_at: number | null;
}

/** Migration bookkeeping rows (managed by Kysely's Migrator). */
export interface Schema {
  users: UsersTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  access_tokens: AccessTokensTable;
  audit_events: AuditEventsTable;
  login_failures: LoginFailuresTable;
  signing_keys: SigningKeysTable;
  account_tokens: AccountTokensTable;
  oauth_clients: OAuthClientsTable;
  oauth_codes: OAuthCodesTable;
  oauth_consents: OAuthConsentsTable;
  mfa_totp: MfaTotpTable;
  mfa_recovery_codes: MfaRecoveryCodesTable;
  passkeys: PasskeysTable;
  spent_challenges: SpentChallengesTable;
  client_token_revocations: ClientTokenRevocationsTable;
  pending_notices: PendingNoticesTable;
  legacy_hash_costs: LegacyHashCostsTable;
  revocation_cutoff: RevocationCutoffTable;
  secret_key_check: SecretKeyCheckTable;
}

/**
 * The one row below whose `not_before` (epoch ms) no access token's `iat` is accepted (migration
 * `035a`): raised by `gatehouse revoke-all`.
 */
export interface RevocationCutoffTable {
  /** Always 1. */
  id: number;
  not_before: number;
}

/** The one row holding the fingerprint of the instances' `SECRET_KEY` (migration `036a`). */
export interface SecretKeyCheckTable {
  /** Always 1. */
  id: number;
  /** HMAC-SHA-256 of a fixed label under the secret, base64url (`secret-key-check.ts`). */
  fingerprint: string;
  /** Epoch ms of the last write. */
  updated_at: number;
}

/**
 * The costliest imported password-hash class of each family (migration `034a`): what a refused
 * sign-in must take so that it does not tell an imported account from an unknown address.
 */
export interface LegacyHashCostsTable {
  /** `LegacyHashCost['family']`. */
  family: string;
  /** `LegacyHashCost['hashClass']`, e.g. `bcrypt:12`. */
  hash_class: string;
  /** `LegacyHashCost['work']`: orders the classes of one family. */
  work: number;
}

/**
 * Security notices not yet handed to the mail relay (migration `033a`): written in the transaction
 * of the change they report, deleted once sent.
 */
export interface PendingNoticesTable {
  id: string;
  /** A notice kind (`NoticeKind`). */
  kind: string;
  recipient: string;
  /** Lower-cased `recipient`, for the per-address cap. */
  recipient_key: string;
  /** JSON object of the template's values (times, addresses; never a link or a token). */
  mail_values: string;
  created_at: number;
  /** When an instance may take the row (epoch ms): 0 at first, then a lease or a backoff's end. */
  claimed_until: Generated<number>;
  /** Takes whose every delivery attempt failed (the backoff before the next take grows with it). */
  failures: Generated<number>;
}

/** Revoked `client_credentials` access tokens by `jti` (migration `020a`), kept until they expire. */
export interface ClientTokenRevocationsTable {
  jti: string;
  client_id: string;
  revoked_at: number;
  expires_at: number;
}

/** Spent single-use challenges (`<purpose>:<nonce>`), kept until their token expires. */
export interface SpentChallengesTable {
  nonce: string;
  expires_at: number;
}

/** Security-relevant events; never holds secrets. */
export interface AuditEventsTable {
  id: Generated<number>;
  event: string;
  actor_id: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  /** JSON object with event-specific, non-secret details. */
  details: string | null;
  created_at: number;
}

/** Failed logins per account (`''`: no such account) per hour: a count, not a row per attempt. */
export interface LoginFailuresTable {
  subject_id: string;
  /** Start of the hour, epoch ms. */
  window_start: number;
  failures: number;
  first_at: number;
  last_at: number;
  last_ip: string | null;
}

/** Registered OAuth clients (migration 013a). Lists are JSON arrays of strings. */
export interface OAuthClientsTable {
  client_id: string;
  /** Shown on the consent page and the account page's "Connected apps". */
  name: string;
  /** SHA-256 (hex) of a confidential client's secret; null for a public client. */
  secret_hash: string | null;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string;
  scopes: string;
  created_at: number;
  /** When an operator disabled the client (migration 020a); null while it is enabled. */
  disabled_at: number | null;
  /** The JWS algorithm of its ID tokens (migration 032a); null for the installation's default. */
  id_token_signed_response_alg: string | null;
}

/** An account's TOTP authenticator (migration 012); at most one per account. */
export interface MfaTotpTable {
  user_id: string;
  /** The RFC 6238 shared secret, AES-256-GCM sealed under a key derived from SECRET_KEY. */
  secret: string;
  created_at: number;
  /** Null while enrolment waits for its first code; set once confirmed (the factor is then on). */
  confirmed_at: number | null;
  /** RFC 6238 time step of the last accepted code: a code at or before it is a replay. */
  last_step: number | null;
  /**
   * Wrong codes (TOTP or recovery) since the account's last accepted second factor (migration
   * `029a`, NIST SP 800-63B §5.2.2): at `MFA_MAX_CONSECUTIVE_FAILURES` untrusted clients are refused.
   */
  consecutive_failures: Generated<number>;
}

/** Single-use recovery codes (migration 012), stored only as SHA-256 hashes. */
export interface MfaRecoveryCodesTable {
  user_id: string;
  code_hash: string;
  created_at: number;
  /** When the code was used; a used code never works again. */
  used_at: number | null;
}

/** A registered WebAuthn credential (migration 014a). */
export interface PasskeysTable {
  /** Credential id, base64url. */
  id: string;
  user_id: string;
  /** COSE public key, base64url. */
  public_key: string;
  /** Signature counter last seen (WebAuthn §6.1.1). */
  counter: number;
  /** `singleDevice` or `multiDevice` (the BE flag). */
  device_type: string;
  /** The BS flag, 0/1. */
  backed_up: number;
  /** Comma-separated transport hints. */
  transports: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

/** Authorization codes (migration 016a), stored only as SHA-256 hashes; single use, ≤ 60 s. */
export interface OAuthCodesTable {
  code_hash: string;
  client_id: string;
  user_id: string;
  redirect_uri: string;
  /** 1 when the authorization request carried `redirect_uri` (migration 030a): /token must repeat it. */
  redirect_uri_given: Generated<number>;
  /** Space-separated granted scopes. */
  scope: string;
  /** RFC 7636 S256 challenge (base64url of SHA-256 of the verifier). */
  code_challenge: string;
  nonce: string | null;
  auth_time: number;
  amr: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  /** Set when a spent code was presented again: its session is revoked. */
  replayed_at: number | null;
  /** The session the exchange started. */
  session_id: string | null;
  /** The browser session whose approval issued the code (migration 037a): it must be live at the exchange. */
  approved_by_session: string | null;
}

/** Remembered consent (migration 016a): the scopes an account allowed a client. */
export interface OAuthConsentsTable {
  user_id: string;
  client_id: string;
  /** Space-separated scopes. */
  scope: string;
  created_at: number;
  updated_at: number;
}

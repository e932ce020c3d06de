import type { Migration } from 'kysely';
import * as accounts from './001-accounts.js';
import * as audit from './003-audit.js';
import * as sessionRevocation from './007-session-revocation.js';
import * as loginFailures from './008-login-failures.js';
import * as signingKeys from './009-signing-keys.js';
import * as accountLifecycle from './010-account-lifecycle.js';
import * as mfa from './012-mfa.js';
import * as stepUp from './012b-step-up.js';
import * as oauthClients from './013a-oauth-clients.js';
import * as passkeys from './014a-passkeys.js';
import * as oauthGrants from './016a-oauth-grants.js';
import * as spentChallenges from './019a-spent-challenges.js';
import * as oauthClientControls from './020a-oauth-client-controls.js';
import * as sessionRevokedIndex from './021a-session-revoked-index.js';
import * as emailChangeSession from './022a-email-change-session.js';
import * as credentialsVersion from './023a-credentials-version.js';
import * as sessionClient from './024a-session-client.js';
import * as refreshTokenFamily from './025a-refresh-token-family.js';
import * as severalAccountLinks from './026a-several-account-links.js';
import * as sessionUserLiveIndex from './027a-session-user-live-index.js';
import * as sessionCookieHashPartial from './028a-session-cookie-hash-partial.js';
import * as mfaConsecutiveFailures from './029a-mfa-consecutive-failures.js';
import * as codeRedirectUriGiven from './030a-code-redirect-uri-given.js';
import * as sessionClientLiveIndex from './031a-session-client-live-index.js';
import * as clientIdTokenAlg from './032a-client-id-token-alg.js';
import * as pendingNotices from './033a-pending-notices.js';
import * as legacyHashCosts from './034a-legacy-hash-costs.js';
import * as revocationCutoff from './035a-revocation-cutoff.js';
import * as secretKeyCheck from './036a-secret-key-check.js';
import * as codeApprovingSession from './037a-code-approving-session.js';
import * as auditPartyIndexes from './038a-audit-party-indexes.js';
import * as adminPathIndexes from './039a-admin-path-indexes.js';

/**
 * Every core migration, in order. `002-clothes`, `005-rooms` and `006-room-event-sequence` were
 * core migrations until the apps moved to `src/apps` (issue 16); they are now the apps' own, and
 * `migrateToLatest` moves their history rows (see `RETIRED_CORE_MIGRATIONS`). Names sort lexically, so keep the numeric prefix. Listed statically
 * (not read from disk) so the bundle and the tests see exactly the same set.
 *
 * There is no `004`: the rooms migration was numbered `005` when it was written, and no migration
 * named `004` has ever existed in this repository's history, so no database has run one. The gap
 * is harmless (names only need to sort); leave it. Never add a `004` now: Kysely's Migrator refuses a
 * pending migration that sorts before the last applied one (`allowUnorderedMigrations` is off, on
 * purpose, so two branches' migrations cannot interleave silently), so a new `004-…` would stop
 * every existing installation from starting. New migrations take the next number after the
 * highest one here.
 */
export const migrations: Record<string, Migration> = {
  '001-accounts': accounts,
  '003-audit': audit,
  '007-session-revocation': sessionRevocation,
  '008-login-failures': loginFailures,
  '009-signing-keys': signingKeys,
  '010-account-lifecycle': accountLifecycle,
  '012-mfa': mfa,
  '012b-step-up': stepUp,
  '013a-oauth-clients': oauthClients,
  '014a-passkeys': passkeys,
  '016a-oauth-grants': oauthGrants,
  '019a-spent-challenges': spentChallenges,
  '020a-oauth-client-controls': oauthClientControls,
  '021a-session-revoked-index': sessionRevokedIndex,
  '022a-email-change-session': emailChangeSession,
  '023a-credentials-version': credentialsVersion,
  '024a-session-client': sessionClient,
  '025a-refresh-token-family': refreshTokenFamily,
  '026a-several-account-links': severalAccountLinks,
  '027a-session-user-live-index': sessionUserLiveIndex,
  '028a-session-cookie-hash-partial': sessionCookieHashPartial,
  '029a-mfa-consecutive-failures': mfaConsecutiveFailures,
  '030a-code-redirect-uri-given': codeRedirectUriGiven,
  '031a-session-client-live-index': sessionClientLiveIndex,
  '032a-client-id-token-alg': clientIdTokenAlg,
  '033a-pending-notices': pendingNotices,
  '034a-legacy-hash-costs': legacyHashCosts,
  '035a-revocation-cutoff': revocationCutoff,
  '036a-secret-key-check': secretKeyCheck,
  '037a-code-approving-session': codeApprovingSession,
  '038a-audit-party-indexes': auditPartyIndexes,
  '039a-admin-path-indexes': adminPathIndexes,
};

import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { DeviceTokens } from '../accounts/device-token.js';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import { GatehouseError } from '../errors.js';
import { type EventBus, publishRevokedSessions } from '../events/event-bus.js';
import { addAccountNotice, type NoticeWriter, type SecurityNotices } from '../mail/security-notices.js';
import { assertSessionLive } from '../sessions/live-session.js';
import type { StepUpPolicy } from '../sessions/step-up.js';
import type { SessionStore } from '../storage/session-store.js';
import type { SpentChallengeStore } from '../storage/spent-challenge-store.js';
import type { UserRecord, UserStore } from '../storage/user-store.js';
import type { PasskeyCeremony, PasskeyChallenge, PasskeyChallenges } from './passkey-challenge.js';
import { requireProvenAddress } from './proven-address.js';
import type { MfaStore } from './storage/mfa-store.js';
import type { PasskeyRecord, PasskeyStore } from './storage/passkey-store.js';

/**
 * The RFC 8176 `amr` of a passkey sign-in or re-authentication: `pop` (proof of possession of a
 * key; RFC 8176 leaves open whether it is hardware- or software-secured, and a synced passkey is
 * either), `user` (the authenticator verified its user: `userVerification: 'required'`, a PIN or
 * a biometric, which the relying party cannot tell apart) and `mfa`: possession plus user
 * verification is a multi-factor authenticator (NIST SP 800-63B §5.1.9), so a passkey satisfies
 * step-up and REQUIRE_MFA_FOR_ROLES on its own.
 */
export const PASSKEY_AMR: readonly string[] = ['pop', 'user', 'mfa'];

/** Most passkeys one account may hold: bounds the rows a signed-in user can make. */
export const MAX_PASSKEYS_PER_ACCOUNT = 10;

/** Options for the browser (`navigator.credentials.*`) plus the sealed state to send back. */
export interface PasskeyOptions<T> {
  options: T;
  /** Opaque; send it back with the authenticator's answer (single use, expires). */
  token: string;
}

/** Outcome of {@link PasskeyService.authenticate}. */
export type PasskeyAuthentication =
  | {
      ok: true;
      user: UserRecord;
      passkey: PasskeyRecord;
      /** A fresh device token: a passkey proves every factor (see {@link PASSKEY_AMR}). */
      deviceToken: string;
    }
  /**
   * Token forged, expired, used or for another ceremony; unknown credential; signature wrong.
   * `userId` names the account whose passkey the credential id is, when it is one: failed
   * sign-ins are tallied per account (red-team 2026-12e J3).
   */
  | { ok: false; reason: 'invalid'; userId?: string }
  /** The account is disabled (told only after the passkey verified). */
  | { ok: false; reason: 'disabled' }
  /** REQUIRE_VERIFIED_EMAIL and the address is unconfirmed (told only after the passkey verified). */
  | { ok: false; reason: 'unverified' };

/** The signed-in account a ceremony runs for. */
export interface PasskeyAccount {
  userId: string;
  sessionId: string;
}

/** Passkeys (WebAuthn): registration, passwordless sign-in, re-authentication (issue 13). */
export interface PasskeyService {
  /** The account's passkeys, oldest first. */
  list(userId: string): Promise<PasskeyRecord[]>;
  /**
   * Options for `navigator.credentials.create()`: a discoverable credential (resident key) with
   * user verification required, excluding the account's passkeys. Throws EMAIL_NOT_VERIFIED until
   * the account's address is proved (`requireProvenAddress`), STEP_UP_REQUIRED (no sign-in within
   * STEP_UP_MAX_AGE, or one without a second factor on an account that holds one:
   * `StepUpPolicy.requireFactorChangeAuthentication`) and PASSKEY_LIMIT_REACHED.
   */
  registrationOptions(
    user: Pick<UserRecord, 'id' | 'email' | 'fullName' | 'emailVerified'>,
    sessionId: string,
  ): Promise<PasskeyOptions<PublicKeyCredentialCreationOptionsJSON>>;
  /**
   * Verifies the authenticator's answer to {@link registrationOptions} and stores the passkey.
   * Throws STEP_UP_REQUIRED, PASSKEY_INVALID, PASSKEY_LIMIT_REACHED, PASSKEY_ALREADY_REGISTERED.
   */
  register(
    account: PasskeyAccount,
    token: string,
    response: RegistrationResponseJSON,
    name: string,
    audit: Omit<AuditEntry, 'event'>,
  ): Promise<PasskeyRecord>;
  /**
   * Removes one passkey, and ends every other session of the account (moving its credentials
   * version, which ends its device tokens too) in the same transaction. Throws STEP_UP_REQUIRED (as
   * {@link registrationOptions}: a password alone never removes a factor) and PASSKEY_NOT_FOUND.
   */
  remove(account: PasskeyAccount, passkeyId: string, audit: Omit<AuditEntry, 'event'>): Promise<void>;
  /**
   * Options for `navigator.credentials.get()`: for `login` no credential list (the browser offers
   * the discoverable passkeys it holds), for `reauthenticate` the account's passkeys.
   */
  authenticationOptions(
    ceremony: 'login' | 'reauthenticate',
    account?: PasskeyAccount,
  ): Promise<PasskeyOptions<PublicKeyCredentialRequestOptionsJSON>>;
  /**
   * Verifies an assertion: the challenge (single use, unexpired, this ceremony and, to
   * re-authenticate, this session), the credential, the origin and rp id, user verification and
   * the signature counter; records the use. `login` answers the account it belongs to. `ownerId`
   * limits a `login` to that account's passkeys: any other credential is refused before its
   * signature is verified (a trusted device's lane, `passkey-throttle.ts`).
   */
  authenticate(
    ceremony: 'login' | 'reauthenticate',
    token: string,
    response: AuthenticationResponseJSON,
    account?: PasskeyAccount,
    ownerId?: string,
  ): Promise<PasskeyAuthentication>;
}

/** The stores a passkey change runs on in one transaction. */
export interface PasskeyTransactionStores {
  passkeys: PasskeyStore;
  /** Whether the account's authenticator is on, for the registration's factor check. */
  mfa: Pick<MfaStore, 'findTotp'>;
  audit: Pick<AuditLog, 'record'>;
  /** The owner's address, read for the notice. */
  users: Pick<UserStore, 'findUserById'>;
  /** `second_factor_added` / `second_factor_removed`, committed with the change. */
  notices: NoticeWriter;
  /** A removal ends the account's other sessions, in its own transaction; a registration re-reads its own. */
  sessions: Pick<SessionStore, 'revokeUserSessions' | 'isSessionLive'>;
}

/** Dependencies of {@link createPasskeyService}, wired in `createGatehouseCore`. */
export interface PasskeyServiceDeps {
  store: PasskeyStore;
  /** The account's run of wrong codes, which an accepted passkey ends (`MfaStore`). */
  codes: Pick<MfaStore, 'clearConsecutiveFailures'>;
  transaction<T>(work: (stores: PasskeyTransactionStores) => Promise<T>): Promise<T>;
  /** Mails the notices a change committed. */
  notices: Pick<SecurityNotices, 'flush'>;
  /** Tells every instance of the sessions a removal ended. */
  bus: Pick<EventBus, 'publish'>;
  users: Pick<UserStore, 'findUserById'>;
  challenges: PasskeyChallenges;
  /** Single use of challenges: a table, never the evictable counter store. */
  spent: Pick<SpentChallengeStore, 'claimChallenge'>;
  deviceTokens: Pick<DeviceTokens, 'issue'>;
  stepUp: Pick<StepUpPolicy, 'requireFactorChangeAuthentication' | 'recheckFactorAddition'>;
  /** `PUBLIC_URL`: its origin is the expected WebAuthn origin, its host name the rp id. */
  publicUrl: string;
  /** REQUIRE_VERIFIED_EMAIL: a passkey sign-in obeys it as a password sign-in does. */
  requireVerifiedEmail: boolean;
  /** How long a ceremony may take, ms (MFA_TOKEN_TTL). */
  challengeTtlMs: number;
  clock: () => number;
}

type WebAuthnLibrary = typeof import('@simplewebauthn/server');
let library: Promise<WebAuthnLibrary> | undefined;
/**
 * Loaded on the first ceremony (issue 10, footprint): its ASN.1 and X.509 modules cost memory
 * and start-up time that servers whose users never touch passkeys should not pay.
 */
function webAuthn(): Promise<WebAuthnLibrary> {
  library ??= import('@simplewebauthn/server');
  return library;
}

function invalid(): GatehouseError {
  return new GatehouseError(
    'PASSKEY_INVALID',
    'The passkey could not be verified, or the ceremony expired: start again.',
  );
}

/** Creates the {@link PasskeyService}. */
export function createPasskeyService(deps: PasskeyServiceDeps): PasskeyService {
  const { store, challenges, spent, clock } = deps;
  const origin = new URL(deps.publicUrl).origin;
  // WebAuthn §5.1.4.1: the rp id is a registrable domain suffix of the origin's host; an IP address
  // cannot be one (hence the `http://localhost:8000` default PUBLIC_URL).
  const rpID = new URL(deps.publicUrl).hostname;

  const open = (token: string, ceremony: PasskeyCeremony, account?: PasskeyAccount) => {
    const challenge = challenges.open(token, ceremony, clock());
    if (challenge === undefined) return undefined;
    // A challenge issued to one session never completes a ceremony for another.
    if (
      account !== undefined &&
      (challenge.userId !== account.userId || challenge.sessionId !== account.sessionId)
    ) {
      return undefined;
    }
    return challenge;
  };

  /**
   * Single use: the first verified answer claims the nonce, so a replayed answer (or a second
   * answer to one challenge) is refused — synced passkeys send signature counter 0 for ever, so
   * this is the only replay guard they have. The marker is a database row kept until the
   * challenge expires (never evicted, shared by every instance); it is written only after a
   * signature verified, so nobody can add them for free.
   */
  const claim = (challenge: PasskeyChallenge) =>
    spent.claimChallenge('passkey', challenge.nonce, challenge.expiresAt);

  return {
    list(userId) {
      return store.listPasskeys(userId);
    },

    async registrationOptions(user, sessionId) {
      requireProvenAddress(user);
      await deps.stepUp.requireFactorChangeAuthentication(sessionId);
      const existing = await store.listPasskeys(user.id);
      if (existing.length >= MAX_PASSKEYS_PER_ACCOUNT) {
        throw new GatehouseError(
          'PASSKEY_LIMIT_REACHED',
          `An account holds at most ${MAX_PASSKEYS_PER_ACCOUNT} passkeys: remove one first.`,
        );
      }
      const { generateRegistrationOptions } = await webAuthn();
      const sealed = challenges.issue({
        ceremony: 'register',
        userId: user.id,
        sessionId,
        expiresAt: clock() + deps.challengeTtlMs,
      });
      const options = await generateRegistrationOptions({
        rpName: rpID,
        rpID,
        // The user handle is the account id (random, no personal data: WebAuthn §14.6.1); a
        // discoverable sign-in answers it, and it must match the credential's owner.
        userID: new TextEncoder().encode(user.id),
        userName: user.email,
        userDisplayName: user.fullName ?? user.email,
        // The raw bytes: a string would be taken as UTF-8 text and encoded again.
        challenge: new Uint8Array(Buffer.from(sealed.challenge, 'base64url')),
        timeout: deps.challengeTtlMs,
        attestationType: 'none',
        excludeCredentials: existing.map((passkey) => ({ id: passkey.id, transports: passkey.transports })),
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      });
      return { options, token: sealed.token };
    },

    async register(account, token, response, name, audit) {
      const checked = await deps.stepUp.requireFactorChangeAuthentication(account.sessionId);
      const challenge = open(token, 'register', account);
      if (challenge === undefined) throw invalid();
      const { verifyRegistrationResponse } = await webAuthn();
      let verification: Awaited<ReturnType<WebAuthnLibrary['verifyRegistrationResponse']>>;
      try {
        verification = await verifyRegistrationResponse({
          response,
          expectedChallenge: challenge.challenge,
          expectedOrigin: origin,
          expectedRPID: rpID,
          requireUserVerification: true,
        });
      } catch {
        // The library throws for every malformed or mismatching answer: all are the client's.
        throw invalid();
      }
      if (!verification.verified || !(await claim(challenge))) throw invalid();
      const info = verification.registrationInfo;
      const passkey: PasskeyRecord = {
        id: info.credential.id,
        userId: account.userId,
        publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
        transports: (info.credential.transports ?? []).slice(0, 8),
        name,
        createdAt: clock(),
        lastUsedAt: null,
      };
      await deps.transaction(async (stores) => {
        const { passkeys, audit: log } = stores;
        // Counted again under the account's row lock, in the inserting transaction: registrations
        // racing past the check in the options step cannot exceed the cap, on PostgreSQL either.
        const outcome = await passkeys.insertPasskeyWithinCap(passkey, MAX_PASSKEYS_PER_ACCOUNT);
        if (outcome === 'limit') {
          throw new GatehouseError(
            'PASSKEY_LIMIT_REACHED',
            `An account holds at most ${MAX_PASSKEYS_PER_ACCOUNT} passkeys: remove one first.`,
          );
        }
        if (outcome === 'duplicate') {
          throw new GatehouseError('PASSKEY_ALREADY_REGISTERED', 'This passkey is already registered.');
        }
        // Under the account's row lock (taken by the insert): the session that asked is still live,
        // and a factor added meanwhile (an authenticator, another passkey: the count includes this
        // one) still needs a session that proved one.
        await assertSessionLive(stores.sessions, account.sessionId, account.userId, clock());
        await deps.stepUp.recheckFactorAddition(
          checked,
          async () =>
            (await stores.mfa.findTotp(account.userId))?.confirmedAt != null ||
            (await passkeys.countPasskeys(account.userId)) > 1,
        );
        await log.record({ ...audit, event: 'passkey_added', details: { passkey: passkey.id.slice(0, 16) } });
        // OWASP MFA: the owner learns of a factor a thief of the password or a session would plant.
        await addAccountNotice(stores, account.userId, 'second_factor_added', {
          when: new Date(clock()).toISOString(),
          factor: 'A passkey',
        });
      });
      deps.notices.flush();
      return passkey;
    },

    async remove(account, passkeyId, audit) {
      await deps.stepUp.requireFactorChangeAuthentication(account.sessionId);
      const ended = await deps.transaction(async (stores) => {
        // Every other session ends with the passkey, as with a new password: a removal is how an
        // owner takes the account back from whoever holds a copy of it (a synced passkey, one
        // planted from a stolen session), and that holder's sessions, opened with nothing else,
        // lived on, re-authenticated with it and planted a new one (red-team 2026-12s M1). First,
        // because it takes the account's row (ARCHITECTURE.md, "Lock order"); it also moves the
        // credentials version, which ends the device cookies those sign-ins earned.
        const revoked = await stores.sessions.revokeUserSessions(account.userId, clock(), account.sessionId);
        if (!(await stores.passkeys.deletePasskey(account.userId, passkeyId))) {
          throw new GatehouseError('PASSKEY_NOT_FOUND', 'No such passkey on your account.');
        }
        await stores.audit.record({
          ...audit,
          event: 'passkey_removed',
          details: { passkey: passkeyId.slice(0, 16) },
        });
        await addAccountNotice(stores, account.userId, 'second_factor_removed', {
          when: new Date(clock()).toISOString(),
        });
        return revoked;
      });
      deps.notices.flush();
      await publishRevokedSessions(deps.bus, ended);
    },

    async authenticationOptions(ceremony, account) {
      const { generateAuthenticationOptions } = await webAuthn();
      const sealed = challenges.issue({
        ceremony,
        userId: account?.userId ?? null,
        sessionId: account?.sessionId ?? null,
        expiresAt: clock() + deps.challengeTtlMs,
      });
      const allowCredentials =
        account === undefined
          ? undefined
          : (await store.listPasskeys(account.userId)).map((passkey) => ({
              id: passkey.id,
              transports: passkey.transports,
            }));
      const options = await generateAuthenticationOptions({
        rpID,
        // The raw bytes: a string would be taken as UTF-8 text and encoded again.
        challenge: new Uint8Array(Buffer.from(sealed.challenge, 'base64url')),
        timeout: deps.challengeTtlMs,
        userVerification: 'required',
        ...(allowCredentials === undefined ? {} : { allowCredentials }),
      });
      return { options, token: sealed.token };
    },

    async authenticate(ceremony, token, response, account, ownerId) {
      const challenge = open(token, ceremony, account);
      if (challenge === undefined) return { ok: false, reason: 'invalid' };
      const passkey = await store.findPasskey(response.id);
      if (passkey === undefined) return { ok: false, reason: 'invalid' };
      const refused = { ok: false, reason: 'invalid', userId: passkey.userId } as const;
      if (account !== undefined && passkey.userId !== account.userId) return refused;
      if (ownerId !== undefined && passkey.userId !== ownerId) return refused;
      // WebAuthn L2 §7.2 step 6: a user handle, when given, must name the credential's owner; and a
      // sign-in that named no user beforehand (a discoverable credential) must give one (red-team
      // 2026-12h: it was accepted without).
      const handle = response.response.userHandle;
      // Only a re-authentication names its user; `ownerId` (a device cookie's owner, when the
      // untrusted lane is full) does not make a discoverable sign-in any less one.
      if (
        handle === undefined
          ? account === undefined
          : Buffer.from(handle, 'base64url').toString('utf8') !== passkey.userId
      ) {
        return refused;
      }
      const { verifyAuthenticationResponse } = await webAuthn();
      let verification: Awaited<ReturnType<WebAuthnLibrary['verifyAuthenticationResponse']>>;
      try {
        verification = await verifyAuthenticationResponse({
          response,
          expectedChallenge: challenge.challenge,
          expectedOrigin: origin,
          expectedRPID: rpID,
          credential: {
            id: passkey.id,
            publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')),
            counter: passkey.counter,
            transports: passkey.transports,
          },
          requireUserVerification: true,
        });
      } catch {
        // Wrong signature, origin, rp id or challenge, no user verification, or a counter that did
        // not grow (a possibly cloned authenticator, WebAuthn §6.1.1): refused alike.
        return refused;
      }
      if (!verification.verified || !(await claim(challenge))) return refused;
      const info = verification.authenticationInfo;
      // The account before the use is recorded (race review 2026-12-06 P2): its credentials
      // version then predates the compare-and-set below, so a removal of this passkey that commits
      // after this read either deletes the row first (the compare-and-set finds none) or moves the
      // version, which the sign-in's session check refuses. Read after the use, it already held the
      // removal's new version and a thief's sign-in in flight got its session.
      const user = await deps.users.findUserById(passkey.userId);
      const recorded = await store.recordPasskeyUse(passkey.id, passkey.counter, {
        counter: info.newCounter,
        backedUp: info.credentialBackedUp,
        at: clock(),
      });
      // Another request moved the counter between our read and this write: the same signature
      // cannot have been valid for both unless the counter is not used (always 0), so refuse.
      if (!recorded) return refused;
      // An accepted second factor ends the account's run of wrong codes (MFA_MAX_CONSECUTIVE_FAILURES),
      // as a right code does: the owner proved possession. No transaction to join (the ceremony
      // writes its use on its own), so its own statement, after the use is recorded.
      await deps.codes.clearConsecutiveFailures(passkey.userId);
      if (user === undefined) return { ok: false, reason: 'invalid' };
      if (!user.isActive) return { ok: false, reason: 'disabled' };
      if (deps.requireVerifiedEmail && !user.emailVerified) return { ok: false, reason: 'unverified' };
      return {
        ok: true,
        user,
        passkey: { ...passkey, counter: info.newCounter, backedUp: info.credentialBackedUp },
        deviceToken: deps.deviceTokens.issue(user),
      };
    },
  };
}

import { decodeJwt } from 'jose';
import type { VerifyExpectations } from '../tokens/keyring.js';
import { ID_TOKEN_TYP } from './authorization-server.js';

/** What a verified `id_token_hint` says: whose session, with which client. */
export interface IdTokenHint {
  /** The ID token's `sub`. */
  userId: string;
  /** Its `sid`: the session the client's tokens belong to (the one its code exchange started). */
  sessionId: string;
  /** Its `aud`: the client it was issued to. */
  clientId: string;
}

/** Dependencies of {@link createIdTokenHintVerifier}. */
export interface IdTokenHintVerifierDeps {
  /** The ID-token keyring (`core.idTokenKeys()`). */
  idTokenKeys: () => Promise<{ verify(token: string, expect: VerifyExpectations): Promise<unknown> }>;
  /**
   * How long after its `exp` a hint is still accepted (seconds): SESSION_ABSOLUTE_TTL, since the
   * session an older hint names has ended anyway.
   */
  expiredHintGraceSeconds: number;
  clock: () => number;
}

/**
 * Verifies an `id_token_hint` (OIDC Core §3.1.2.1 at `/authorize`, RP-Initiated Logout 1.0 §2 at
 * `/oauth/logout`): it must be one of our ID tokens, signed by a key of the ID-token keyring
 * (current, or retired but still published), our `iss`, `typ` `JWT`, an `aud`, a `sub` and a
 * `sid`; it may have expired (a hint outlives the token's use), up to `expiredHintGraceSeconds`.
 * Resolves undefined for any token that is not; rejects only when the keyring cannot be loaded
 * (a database outage is not the hint's fault: the caller answers 503).
 */
export function createIdTokenHintVerifier(
  deps: IdTokenHintVerifierDeps,
): (token: string) => Promise<IdTokenHint | undefined> {
  return async (token) => {
    let audience: unknown;
    try {
      // Read unverified only to learn which audience to demand; verify() checks it with the rest.
      audience = decodeJwt(token).aud;
    } catch {
      return undefined;
    }
    if (typeof audience !== 'string') return undefined; // ours always carry one client id
    // Outside the try: a database outage while the keyring first loads propagates (503), where
    // verification itself is in memory.
    const keyring = await deps.idTokenKeys();
    try {
      const claims = (await keyring.verify(token, {
        typ: ID_TOKEN_TYP,
        audience,
        requiredClaims: ['sub', 'sid'],
        now: deps.clock(),
        expiredGraceSeconds: deps.expiredHintGraceSeconds,
      })) as Record<string, unknown>;
      const { sub, sid } = claims;
      if (typeof sub !== 'string' || typeof sid !== 'string') return undefined;
      return { userId: sub, sessionId: sid, clientId: audience };
    } catch {
      // A bad signature, an unknown or withdrawn key, another issuer, audience or token type.
      return undefined;
    }
  };
}

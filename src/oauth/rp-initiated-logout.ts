import type { SessionManager } from '../sessions/session-manager.js';
import type { OAuthGrantStore } from '../storage/oauth-grant-store.js';
import { isHintThrottled } from './hint-throttle.js';
import {
  createIdTokenHintVerifier,
  type IdTokenHint,
  type IdTokenHintVerifierDeps,
} from './id-token-hint.js';
import type { OAuthClient, OAuthClients } from './oauth-clients.js';

export type { IdTokenHint } from './id-token-hint.js';

/** The parameters of the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0 §2). */
export interface LogoutParameters {
  idTokenHint?: string | undefined;
  /** The client's address, not a parameter: failed hints are limited per address. */
  clientIp?: string | undefined;
  clientId?: string | undefined;
  postLogoutRedirectUri?: string | undefined;
  state?: string | undefined;
}

/** A parameter that failed validation, and so is treated as not supplied (RP-Initiated Logout 1.0 §4). */
export interface IgnoredLogoutParameter {
  parameter: 'id_token_hint' | 'client_id' | 'post_logout_redirect_uri';
  /**
   * A stable code: `INVALID_ID_TOKEN_HINT`, `CLIENT_MISMATCH`, `UNKNOWN_CLIENT`,
   * `INVALID_REDIRECT_URI`, `TOO_MANY_REQUESTS` (the address sent too many failing hints).
   */
  code: string;
  description: string;
}

/** A checked logout request. */
export interface LogoutRequest {
  /** The client asking: the hint's `aud`, or `client_id`; undefined when neither is valid. */
  client: OAuthClient | undefined;
  /** The verified hint, undefined when none was given or it did not verify. */
  hint: IdTokenHint | undefined;
  /** `post_logout_redirect_uri` with `state`, when registered for `client` exactly; else undefined. */
  redirectTo: string | undefined;
  /** What was given but ignored, for the page to say so (never a redirect carrying it). */
  ignored: IgnoredLogoutParameter[];
}

/** The person signed in in the browser, if anyone. */
export interface BrowserSignIn {
  userId: string;
  sessionId: string;
}

/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), without HTTP: checking the
 * request, deciding whether the person must confirm, and ending the client's sessions. The
 * browser's own session is ended by the caller (it owns the cookies and the `logout` audit row).
 */
export interface RpInitiatedLogout {
  /**
   * Checks the request. An `id_token_hint` must be one of our ID tokens: signed by a key of the
   * ID-token keyring (current, or retired but still published), our `iss`, `typ` `JWT`, a `sub`
   * and a `sid`; it may have expired (§2), up to SESSION_ABSOLUTE_TTL ago. Its `aud` names the
   * client, and a `client_id` given too must be the same (§2). `post_logout_redirect_uri` counts
   * only when registered for that client, exactly (§3). Whatever fails is ignored (§4), listed.
   */
  check(params: LogoutParameters): Promise<LogoutRequest>;
  /**
   * True when the logout may proceed without asking: a verified hint names a live session of the
   * person signed in in this browser, with the hint's client. Otherwise the OP MUST ask (§2), which
   * is what keeps a bare link (logout CSRF) from signing anyone out.
   */
  needsNoConfirmation(request: LogoutRequest, browser: BrowserSignIn): Promise<boolean>;
  /**
   * Ends the client's sessions for the person signed in in `browser`: the session the hint names
   * when it is theirs, else (no hint, or another person's) every session they hold with the
   * client. Returns how many ended. Another person's session is never ended.
   */
  endClientSessions(request: LogoutRequest, browser: BrowserSignIn): Promise<number>;
}

/** Dependencies of {@link createRpInitiatedLogout}, wired in `createGatehouseCore`. */
export interface RpInitiatedLogoutDeps extends IdTokenHintVerifierDeps {
  clients: Pick<OAuthClients, 'find'>;
  grants: Pick<OAuthGrantStore, 'sessionsOfClient'>;
  sessions: Pick<SessionManager, 'revokeSessions'>;
}

/** Creates the {@link RpInitiatedLogout}. */
export function createRpInitiatedLogout(deps: RpInitiatedLogoutDeps): RpInitiatedLogout {
  const { clients, grants, sessions } = deps;

  /** The hint's claims when it is one of our ID tokens, else undefined (any failure: ignored). */
  const verifyHint = createIdTokenHintVerifier(deps);

  // Live: not revoked and not expired (a code-only client's session expires with its access token,
  // and an expired one is swept only hourly).
  const liveSessionOf = async (hint: IdTokenHint): Promise<boolean> =>
    (await grants.sessionsOfClient(hint.clientId, hint.userId, undefined, deps.clock())).includes(
      hint.sessionId,
    );

  return {
    async check(params) {
      const ignored: IgnoredLogoutParameter[] = [];
      let hint: IdTokenHint | undefined;
      if (params.idTokenHint !== undefined) {
        let throttled = false;
        hint = await verifyHint(params.idTokenHint, params.clientIp).catch((error: unknown) => {
          if (!isHintThrottled(error)) throw error;
          throttled = true;
          return undefined;
        });
        if (throttled) {
          // Ignored like any hint that failed (§4): the person is asked to confirm instead.
          ignored.push({
            parameter: 'id_token_hint',
            code: 'TOO_MANY_REQUESTS',
            description: 'Too many invalid id_token_hints from this address: the hint was not checked.',
          });
        } else if (hint === undefined) {
          ignored.push({
            parameter: 'id_token_hint',
            code: 'INVALID_ID_TOKEN_HINT',
            description: 'The id_token_hint is not an ID token this server issued.',
          });
        } else if (params.clientId !== undefined && params.clientId !== hint.clientId) {
          // §2: "the OP MUST verify that the Client Identifier matches the one used when issuing the ID Token".
          ignored.push({
            parameter: 'id_token_hint',
            code: 'CLIENT_MISMATCH',
            description: 'The id_token_hint was issued to another client than client_id.',
          });
          hint = undefined;
        }
      }
      const clientId = hint?.clientId ?? params.clientId;
      const client = clientId === undefined ? undefined : await clients.find(clientId);
      if (clientId !== undefined && client === undefined) {
        ignored.push({
          parameter: hint === undefined ? 'client_id' : 'id_token_hint',
          code: 'UNKNOWN_CLIENT',
          description: 'No app is registered with this client_id.',
        });
        // A hint of a removed client names sessions that removal already ended.
        hint = undefined;
      }
      let redirectTo: string | undefined;
      const uri = params.postLogoutRedirectUri;
      if (uri !== undefined) {
        // §3: only a URI registered for this client, compared exactly; else no redirect at all.
        // Never for a disabled client: disabling stops an app at once, and one disabled because
        // its domain was lost must not stay a redirect target on our origin (red-team 2026-12g O5).
        if (client?.disabled === false && client.postLogoutRedirectUris.includes(uri)) {
          const url = new URL(uri);
          if (params.state !== undefined) url.searchParams.append('state', params.state);
          redirectTo = url.toString();
        } else {
          ignored.push({
            parameter: 'post_logout_redirect_uri',
            code: 'INVALID_REDIRECT_URI',
            description:
              client === undefined
                ? 'The post_logout_redirect_uri needs an id_token_hint or a client_id.'
                : client.disabled
                  ? 'This app is disabled: it gets no redirect.'
                  : 'The post_logout_redirect_uri is not registered for this app.',
          });
        }
      }
      return { client, hint, redirectTo, ignored };
    },

    async needsNoConfirmation(request, browser) {
      const { hint } = request;
      return hint !== undefined && hint.userId === browser.userId && (await liveSessionOf(hint));
    },

    async endClientSessions(request, browser) {
      const { hint, client } = request;
      if (hint !== undefined && hint.userId === browser.userId) {
        // Only the session the hint names: the person may be signed in to the app elsewhere too.
        return (await liveSessionOf(hint)) ? sessions.revokeSessions([hint.sessionId]) : 0;
      }
      if (client === undefined) return 0;
      return sessions.revokeSessions(await grants.sessionsOfClient(client.clientId, browser.userId));
    },
  };
}

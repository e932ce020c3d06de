import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { GatehouseError } from '../../errors.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import {
  type AuthorizationParameters,
  type AuthorizationRequest,
  PROMPT_VALUES,
  REAUTHENTICATION_WINDOW_SECONDS,
} from '../../oauth/authorization-server.js';
import { clientScopes } from '../../oauth/oauth-clients.js';
import type { LogoutParameters, LogoutRequest } from '../../oauth/rp-initiated-logout.js';
import { isForeignKeyViolation } from '../../storage/open-database.js';
import type { UserAuthContext } from '../auth.js';
import { callerOf } from '../caller.js';
import type { CookiePolicy } from '../cookies.js';
import type { CsrfGuard } from '../csrf.js';
import { createFormTokens, escapeHtml, hiddenFields, sendErrorPage, sendPage } from '../oauth-pages.js';
import { NoBody, problemRef } from '../schemas.js';
import { authOf } from './me-routes.js';

const Param = (description: string, maxLength = 2048) =>
  Type.Optional(Type.String({ maxLength, description }));

/** The parameters of an authorization request, in the query (GET) or the consent form (POST). */
const AuthorizeFields = {
  response_type: Param('`code` (the only response type: no implicit grant, RFC 9700 §2.1.2)', 64),
  client_id: Param('A registered client', 255),
  redirect_uri: Param(
    'One of the redirect URIs registered for the client, exactly; for a public client an http URI on 127.0.0.1 or [::1] may name any port (RFC 8252 §7.3)',
  ),
  scope: Param('Space-separated scopes, each allowed to the client; default: all of its scopes'),
  state: Param('Returned unchanged with the answer'),
  nonce: Param('OpenID Connect: copied into the ID token', 512),
  code_challenge: Param('PKCE (RFC 7636): BASE64URL(SHA256(code_verifier)), required', 128),
  code_challenge_method: Param('`S256` (required; `plain` is refused)', 16),
  prompt: Param(
    'OIDC Core §3.1.2.1, space-separated: `none` answers without showing a page (`login_required` / ' +
      '`consent_required` otherwise; alone only), `login` asks the person to sign in again, `consent` shows the ' +
      'consent page even when it was remembered (a public client redirecting to a private-use scheme or a loopback ' +
      'address never has it remembered, RFC 8252 §8.6); `select_account` changes nothing (one account per browser)',
    64,
  ),
  max_age: Param(
    'OIDC Core §3.1.2.1: seconds; a browser sign-in older than this is repeated first (`0` is `prompt=login`). ' +
      'The ID token’s `auth_time` says when it happened',
    16,
  ),
  response_mode: Param('`query` (the only one)', 32),
  request: Param(
    'OIDC Core §6.1: request objects are not supported; a request carrying one is answered ' +
      '`request_not_supported` (at the redirect URI), never served from its outer parameters',
    8192,
  ),
  request_uri: Param('OIDC Core §6.2: not supported; answered `request_uri_not_supported`'),
  id_token_hint: Param(
    'OIDC Core §3.1.2.1: an ID token this server issued to the client (expired ones are accepted), naming the ' +
      'person the app expects. When another person is signed in, `prompt=none` answers `login_required` and ' +
      'any other request shows the login form first. One that does not verify, or was issued to another ' +
      'client, is `invalid_request`',
    8192,
  ),
};
const AuthorizeQuery = Type.Object({
  ...AuthorizeFields,
  login_after: Param(
    'Not for apps: added by this server to the request it resumes after sending the person to sign in again ' +
      '(`prompt=login`, or `max_age` older than the sign-in). Signed and bound to the request: a sign-in later ' +
      'than it satisfies `prompt=login` and `max_age`; the sign-in the redirect asked to repeat does not',
    128,
  ),
});

/**
 * `POST /authorize`: an app's authorization request sent as a form (no `csrf_token`, no `decision`),
 * or the consent page's answer (both).
 */
const ConsentForm = Type.Object({
  ...AuthorizeFields,
  csrf_token: Type.Optional(
    Type.String({
      maxLength: 128,
      description: 'The token the consent page carries (the consent page only)',
    }),
  ),
  decision: Type.Optional(
    Type.Union([Type.Literal('allow'), Type.Literal('deny')], {
      description: 'The person’s answer (the consent page only)',
    }),
  ),
  remember: Type.Optional(Type.Literal('on', { description: 'Remember this consent for this app' })),
});

const LogoutFields = {
  id_token_hint: Param(
    'An ID token this server issued to the client (expired ones are accepted): names the client and the ' +
      'session to end, and lets the logout proceed without asking when that session is live and belongs ' +
      'to the person signed in in the browser',
    8192,
  ),
  client_id: Param('The client asking (when given with id_token_hint, it must be the token’s `aud`)', 255),
  post_logout_redirect_uri: Param(
    "One of the client's registered post_logout_redirect_uris (exact match; needs id_token_hint or client_id)",
  ),
  state: Param('Returned unchanged to post_logout_redirect_uri'),
};

const LogoutQuery = Type.Object(LogoutFields);

/**
 * The address of the GET endpoint `path` with the `names` fields of a POSTed form as its query, in
 * a fixed order: an app's request sent by POST is answered by the GET handler (OIDC Core §3.1.2.1
 * for `/authorize`, RP-Initiated Logout 1.0 §2 for `/oauth/logout`: both MUST accept POST). The
 * browser follows the 303 as a top-level GET navigation, which carries the `SameSite=Lax` session
 * cookie that a cross-site form post does not: answered in place, a POST would see nobody signed in.
 * A field sent empty stays empty (the GET treats it as omitted, RFC 6749 §3.1).
 */
function asQuery(path: string, fields: Record<string, string | undefined>, names: readonly string[]): string {
  const query = new URLSearchParams();
  for (const name of names) {
    const value = fields[name];
    if (value !== undefined) query.set(name, value);
  }
  const search = query.toString();
  return search === '' ? path : `${path}?${search}`;
}

/**
 * The longest address {@link forwardToGet} redirects to. Each field is capped, but together (an
 * 8 KiB `id_token_hint`, 2 KiB for each of `state`, `scope`, `redirect_uri`, percent-encoding
 * tripling some bytes) they could pass Node's 16 KiB request-header limit, and the browser's GET
 * would get a bare 431 instead of an answer; such a request gets the error page instead.
 */
const MAX_FORWARDED_ADDRESS_LENGTH = 8192;

/** Answers an app's form post with a 303 to the GET endpoint `path` ({@link asQuery}), or 400 when too long. */
function forwardToGet(
  reply: FastifyReply,
  path: string,
  fields: Record<string, string | undefined>,
  names: readonly string[],
) {
  const to = asQuery(path, fields, names);
  // Nothing in it can be trusted to redirect to (RFC 6749 §4.1.2.1), as for a GET that is too long.
  if (to.length > MAX_FORWARDED_ADDRESS_LENGTH) {
    return sendErrorPage(reply, 400, 'INVALID_REQUEST', 'The request is too long.');
  }
  return reply.header('cache-control', 'no-store').redirect(to, 303);
}

const AUTHORIZE_FIELD_NAMES = Object.keys(AuthorizeFields);
const LOGOUT_FIELD_NAMES = Object.keys(LogoutFields);

const UserInfoSchema = Type.Object({
  sub: Type.String(),
  name: Type.Optional(Type.String()),
  email: Type.Optional(Type.String()),
  email_verified: Type.Optional(Type.Boolean()),
});

const ConnectedAppSchema = Type.Object({
  client_id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  consented_at: Type.String({ format: 'date-time' }),
});

/** RFC 6749 §3.1: a parameter sent without a value is treated as omitted. */
function given(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

/**
 * The authorization request's parameters. RFC 6749 §3.1: a parameter sent without a value is
 * treated as omitted (`scope=` asks for the client's default scopes, not none; `redirect_uri=`
 * means the one registered URI), as `/token` does.
 */
function toParameters(query: Static<typeof AuthorizeQuery>, clientIp: string): AuthorizationParameters {
  return {
    clientIp,
    responseType: given(query.response_type),
    clientId: given(query.client_id),
    redirectUri: given(query.redirect_uri),
    scope: given(query.scope),
    state: given(query.state),
    nonce: given(query.nonce),
    codeChallenge: given(query.code_challenge),
    codeChallengeMethod: given(query.code_challenge_method),
    prompt: given(query.prompt),
    maxAge: given(query.max_age),
    responseMode: given(query.response_mode),
    idTokenHint: given(query.id_token_hint),
    request: given(query.request),
    requestUri: given(query.request_uri),
  };
}

/** Where a redirect URI leads, for people: its origin, or its scheme for a native app's private-use URI. */
function destinationOf(uri: string): string {
  const url = new URL(uri);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol;
}

/** The fields a consent token binds, in a fixed order. */
function boundFields(request: AuthorizationRequest): (string | undefined)[] {
  return [
    request.client.clientId,
    request.redirectUri,
    request.scopes.join(' '),
    request.state,
    request.nonce,
    request.codeChallenge,
  ];
}

/**
 * The OAuth 2.1 / OpenID Connect provider's endpoints (issue 15): `GET /authorize` and its consent
 * form, `GET /userinfo`, `/.well-known/openid-configuration`, RP-initiated logout at
 * `/oauth/logout`, and the account's "Connected apps" (`/users/me/connected-apps`). The rules are
 * `core.authorizationServer`'s; this file reads the request and renders the pages.
 */
export function registerOAuthProviderRoutes(
  parent: FastifyInstance,
  deps: { gatehouse: GatehouseCore; cookies: CookiePolicy; csrf: CsrfGuard },
): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { gatehouse, cookies, csrf } = deps;
  const { config, authorizationServer: server, rpLogout, sessionStore, selfService } = gatehouse;
  const formTokens = createFormTokens(config.secretKey, config.secretKeyPrevious);
  const scopeDescriptions = clientScopes(gatehouse.scopes);
  const base = config.publicUrl;

  /** The browser's account session, or null: /authorize acts only on the cookie session. */
  const browserSession = async (request: FastifyRequest): Promise<UserAuthContext | null> => {
    if ((request.cookies[cookies.sessionName] ?? '') === '') return null;
    try {
      // identify() without `allow` recognises Gatehouse users only; the kind check narrows the type.
      // No CSRF header check: the consent and logout forms carry their own token, bound to this
      // session and to the exact request, and checked by their routes with the Origin.
      const auth = await app.auth.identify(request, { csrf: false });
      return auth?.kind === 'user' && auth.transport === 'cookie' ? auth : null;
    } catch (error) {
      // An expired or revoked cookie means "signed out" here: the person signs in again.
      if (error instanceof GatehouseError && error.code === 'INVALID_TOKEN') return null;
      throw error;
    }
  };

  /**
   * The checks every form post of these pages passes first, answered as an HTML page (the person
   * is looking at a browser tab, not a JSON client): a well-formed form, and not cross-site
   * (`Origin` / `Sec-Fetch-Site`, the first half of the CSRF defence; the form token is the second).
   */
  const refusePost = (request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
    if (request.validationError !== undefined) {
      return sendErrorPage(
        reply,
        400,
        'VALIDATION_FAILED',
        'The form is malformed; start again from the app.',
      );
    }
    try {
      csrf.checkOrigin(request);
    } catch (error) {
      if (error instanceof GatehouseError) return sendErrorPage(reply, 403, error.code, error.message);
      throw error;
    }
    return undefined;
  };

  /**
   * A `login_after` marker: when the login form was asked for, bound to the request's fields by
   * an HMAC. Not bound to the browser session: the new sign-in starts another one.
   */
  const loginAfterMarker = (authorization: AuthorizationRequest, at: number) =>
    `${at}.${formTokens.issue('login_after', '', [...boundFields(authorization), String(at)])}`;

  /**
   * When the request carries a valid `login_after` marker (ours, for this very request, issued at
   * most REAUTHENTICATION_WINDOW_SECONDS ago), the time a sign-in must be later than; else undefined.
   */
  const loginAfterOf = (marker: string | undefined, authorization: AuthorizationRequest) => {
    const match = /^([0-9]{1,15})\.([A-Za-z0-9_-]{1,64})$/.exec(marker ?? '');
    if (match === null) return undefined;
    const at = Number(match[1]);
    const mac = match[2];
    if (gatehouse.clock() - at > REAUTHENTICATION_WINDOW_SECONDS * 1000) return undefined;
    return formTokens.verify(mac, 'login_after', '', [...boundFields(authorization), String(at)])
      ? at
      : undefined;
  };

  /**
   * The `/authorize` request the login form returns to: the app's, unchanged. When the app asked
   * for a fresh sign-in (`prompt=login` or `max_age`), plus a `login_after` marker of now: the
   * sign-in about to happen is that fresh sign-in and meets it (no second form, no loop however
   * small `max_age` was: OIDC Core §3.1.2.1, `max_age=0` is `prompt=login`), and no sign-in from
   * before this redirect does (red-team 2026-12e J1: the request used to drop `login` and widen
   * `max_age` to 600 s, so the old sign-in met it too, and whoever sat at the browser skipped the
   * form with the Back button). With `dropHint` (an `id_token_hint` of another person than the one
   * signed in, red-team 2026-12e J5), it drops the hint and carries the marker too: the person at
   * the form chose whom to sign in as, and keeping the other person's hint would send them back to
   * the form again and again. Only our own path goes into it (the web UI accepts same-origin
   * paths only).
   */
  const returnAddress = (request: FastifyRequest, authorization: AuthorizationRequest, dropHint = false) => {
    const query = request.url.indexOf('?');
    const search = query < 0 ? '' : request.url.slice(query);
    const fresh = authorization.promptLogin || authorization.maxAge !== undefined;
    if (!fresh && !dropHint) return encodeURIComponent(`/authorize${search}`);
    const params = new URLSearchParams(search);
    if (dropHint) params.delete('id_token_hint');
    params.set('login_after', loginAfterMarker(authorization, gatehouse.clock()));
    return encodeURIComponent(`/authorize?${params.toString()}`);
  };

  /** To the login form: nobody is signed in in this browser. */
  const loginRedirect = (request: FastifyRequest, authorization: AuthorizationRequest) =>
    `/#/login?return_to=${returnAddress(request, authorization)}`;

  /**
   * To the login form although the browser is signed in (`prompt=login`, a sign-in older than
   * `max_age`, or an `id_token_hint` of another person): `reauthenticate=1` makes the web UI show
   * the form to a signed-in person.
   */
  const reauthenticationRedirect = (
    request: FastifyRequest,
    authorization: AuthorizationRequest,
    dropHint = false,
  ) => `/#/login?reauthenticate=1&return_to=${returnAddress(request, authorization, dropHint)}`;

  const consentPage = (
    reply: FastifyReply,
    request: AuthorizationRequest,
    auth: UserAuthContext,
    scopes: readonly string[],
  ) => {
    const token = formTokens.issue('consent', auth.sessionId, boundFields(request));
    const items = scopes
      .map(
        (scope) =>
          `<li><code>${escapeHtml(scope)}</code> — ${escapeHtml(scopeDescriptions[scope] ?? scope)}</li>`,
      )
      .join('');
    return sendPage(
      reply,
      200,
      `Allow ${request.client.name}?`,
      `<p><strong data-testid="consent-client">${escapeHtml(request.client.name)}</strong> wants to use your Gatehouse account ` +
        `<strong>${escapeHtml(auth.user.email)}</strong>. It will be able to:</p>` +
        `<ul data-testid="consent-scopes">${items}</ul>` +
        `<p class="aside">You will be sent to <code>${escapeHtml(destinationOf(request.redirectUri))}</code>. ` +
        'You can disconnect the app at any time from your account page.</p>' +
        `<form method="post" action="/authorize" data-testid="consent-form">` +
        hiddenFields({
          response_type: 'code',
          client_id: request.client.clientId,
          // Only as the app sent it: left out, the code's exchange may leave it out too (RFC 6749 §4.1.3).
          redirect_uri: request.redirectUriGiven ? request.redirectUri : undefined,
          scope: request.scopes.join(' '),
          state: request.state,
          nonce: request.nonce,
          code_challenge: request.codeChallenge,
          code_challenge_method: 'S256',
          csrf_token: token,
        }) +
        (server.mayRememberConsent(request)
          ? '<p><label><input type="checkbox" name="remember" value="on" checked> Remember my choice for this app</label></p>'
          : // RFC 8252 §8.6: nothing proves which app on this device will receive the answer.
            '<p class="aside" data-testid="consent-not-remembered">This app cannot prove its identity, so you will be asked each time.</p>') +
        '<p><button type="submit" name="decision" value="allow" class="button button--primary" data-testid="consent-allow">Allow</button> ' +
        '<button type="submit" name="decision" value="deny" class="button" data-testid="consent-deny">Deny</button></p>' +
        '</form>',
      request.redirectUri,
    );
  };

  const approveAndRedirect = async (
    reply: FastifyReply,
    fastifyRequest: FastifyRequest,
    request: AuthorizationRequest,
    auth: UserAuthContext,
    remember: boolean,
    consentRemembered: boolean,
  ) => {
    const session = await sessionStore.findSession(auth.sessionId);
    let to: string;
    try {
      to = await server.approve(
        request,
        auth.user,
        {
          authTime: session?.authTime ?? session?.createdAt ?? Date.now(),
          amr: session?.amr ?? ['pwd'],
          sessionId: auth.sessionId,
        },
        { remember, consentRemembered },
        callerOf(fastifyRequest),
      );
    } catch (error) {
      // The browser session ended while the approval waited for the account's lock ("log out
      // everywhere" committing first: `assertSessionLive`). Shown as the route's own page for an
      // ended session: thrown on, the error handler's problem object met this route's HTML (string)
      // schema for 401 and went out as the body "[object Object]" (a stress run's finding).
      if (error instanceof GatehouseError && error.code === 'INVALID_TOKEN') {
        return sendErrorPage(reply, 401, 'UNAUTHENTICATED', 'Your session ended; start again from the app.');
      }
      // The app was removed (or the account deleted) after the request was checked: its code or
      // consent named a row gone (23503). Shown, never redirected: the redirect URI belonged to an
      // app that no longer exists (RFC 6749 §4.1.2.1), and nothing was granted.
      if (!isForeignKeyViolation(error)) throw error;
      return sendErrorPage(
        reply,
        409,
        'CONCURRENT_DELETION',
        'This app, or your account, was removed while you were signing in. Nothing was granted.',
      );
    }
    return reply.header('cache-control', 'no-store').redirect(to, 303);
  };

  app.get(
    '/authorize',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        operationId: 'authorize',
        summary: 'Authorization endpoint (OAuth 2.1 code flow with PKCE, OpenID Connect)',
        description:
          "Browser navigation, not an API call. Checks the request, signs the person in (the web UI's login, " +
          'which comes back here), asks for consent unless it was remembered for these scopes (never for a public ' +
          'client redirecting to a private-use scheme or a loopback address, RFC 8252 §8.6), and redirects ' +
          'to `redirect_uri` with `code`, `state` and `iss` (RFC 9207). A code lives 60 s, is single use and is ' +
          'bound to the client, the redirect URI and the PKCE challenge. An unknown client or a redirect URI ' +
          'that is not registered (exactly, but for the port of a loopback IP) gets an HTML error page (never a redirect: RFC 6749 §4.1.2.1); other ' +
          'errors are redirected with `error`. Only `response_type=code` and `code_challenge_method=S256`.',
        security: [],
        querystring: AuthorizeQuery,
        produces: ['text/html'],
        response: {
          200: Type.String({ description: 'The consent page (HTML)' }),
          303: NoBody({ description: 'To the login page, or to redirect_uri with a code or an error' }),
          400: Type.String({ description: 'Error page (HTML): unknown client or redirect URI' }),
        },
      },
    },
    async (request, reply) => {
      if (request.validationError !== undefined) {
        // A repeated or oversized parameter: nothing can be trusted, so no redirect (RFC 6749 §4.1.2.1).
        return sendErrorPage(
          reply,
          400,
          'INVALID_REQUEST',
          'The request is malformed (a parameter is repeated or too long).',
        );
      }
      const check = await server.checkRequest(toParameters(request.query, request.ip));
      if (!check.ok) {
        if (!check.redirect) return sendErrorPage(reply, 400, check.code, check.description);
        return reply.redirect(check.to, 303);
      }
      const authorization = check.request;
      // A sign-in is needed first: a silent request (prompt=none) cannot show the form, so it
      // answers login_required (OIDC Core §3.1.2.1); any other goes to the login form at `to()`.
      const requireSignIn = (description: string, to: () => string) =>
        authorization.promptNone
          ? reply.redirect(server.errorRedirect(authorization, 'login_required', description), 303)
          : reply.header('cache-control', 'no-store').redirect(to(), 303);
      const auth = await browserSession(request);
      if (auth === null) return requireSignIn('Sign in first.', () => loginRedirect(request, authorization));
      if (authorization.hintUserId !== undefined && authorization.hintUserId !== auth.user.id) {
        // OIDC Core §3.1.2.1 (red-team 2026-12e J5): the app asked about another person than the one
        // signed in in this browser (a shared computer); a silent check must not answer for them.
        // Not silent: the person at the browser signs in (as whoever they are) before any code.
        return requireSignIn('Another person is signed in.', () =>
          reauthenticationRedirect(request, authorization, true),
        );
      }
      const session = await sessionStore.findSession(auth.sessionId);
      const authTime = session?.authTime ?? session?.createdAt ?? 0;
      const loginAfter = loginAfterOf(request.query.login_after, authorization);
      const tooOld =
        authorization.maxAge !== undefined && gatehouse.clock() - authTime > authorization.maxAge * 1000;
      // Resumed after the login form: only a sign-in from the redirect on counts (J1).
      const signInAgain =
        loginAfter === undefined ? authorization.promptLogin || tooOld : authTime < loginAfter;
      if (signInAgain) {
        return requireSignIn('A more recent sign-in is needed.', () =>
          reauthenticationRedirect(request, authorization),
        );
      }
      const scopes = server.grantableScopes(authorization, auth.user, session?.amr ?? ['pwd']);
      if (!authorization.promptConsent && (await server.hasConsent(auth.user.id, authorization, scopes))) {
        return approveAndRedirect(reply, request, authorization, auth, false, true);
      }
      if (authorization.promptNone) {
        return reply.redirect(
          server.errorRedirect(authorization, 'consent_required', 'Consent is needed.'),
          303,
        );
      }
      return consentPage(reply, authorization, auth, scopes);
    },
  );

  app.post(
    '/authorize',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        operationId: 'decideConsent',
        summary: 'Authorization request by form post, or the answer to the consent page',
        description:
          'Two uses. **An app’s authorization request sent as a form** (OIDC Core §3.1.2.1: the endpoint accepts ' +
          'POST as well as GET), with the same fields as `GET /authorize` and neither `csrf_token` nor `decision`: ' +
          'redirected (303) to `GET /authorize` with those fields as its query, where the browser’s session ' +
          'cookie is sent (a cross-site form post carries none), and answered there. **The consent page’s ' +
          'answer**: the form carries the authorization request and a token bound to the browser session and ' +
          'to that exact request (a page of another origin cannot post it: the `Origin` check and the token ' +
          'both stop it). `allow` redirects with a code, `deny` with `error=access_denied`; a form with only ' +
          'one of `csrf_token` and `decision` is malformed (400).',
        security: [],
        consumes: ['application/x-www-form-urlencoded'],
        produces: ['text/html'],
        body: ConsentForm,
        response: {
          303: NoBody({
            description: 'To `GET /authorize` (an app’s request), or to redirect_uri with a code or an error',
          }),
          400: Type.String({ description: 'Error page (HTML)' }),
          401: Type.String({ description: 'Error page (HTML): not signed in' }),
          403: Type.String({ description: 'Error page (HTML): the form token is wrong' }),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      if (
        request.validationError === undefined &&
        body.csrf_token === undefined &&
        body.decision === undefined
      ) {
        // An app's request, not an answer: nothing changes here, so no Origin check (it is cross-site).
        return forwardToGet(reply, '/authorize', body, AUTHORIZE_FIELD_NAMES);
      }
      const refusal = refusePost(request, reply);
      if (refusal !== undefined) return refusal;
      const { csrf_token: csrfToken, decision } = body;
      if (csrfToken === undefined || decision === undefined) {
        return sendErrorPage(
          reply,
          400,
          'VALIDATION_FAILED',
          'The form is malformed; start again from the app.',
        );
      }
      const auth = await browserSession(request);
      if (auth === null)
        return sendErrorPage(reply, 401, 'UNAUTHENTICATED', 'Your session ended; start again from the app.');
      const check = await server.checkRequest(toParameters(body, request.ip));
      if (!check.ok) {
        if (!check.redirect) return sendErrorPage(reply, 400, check.code, check.description);
        return reply.redirect(check.to, 303);
      }
      const authorization = check.request;
      if (!formTokens.verify(csrfToken, 'consent', auth.sessionId, boundFields(authorization))) {
        return sendErrorPage(
          reply,
          403,
          'CSRF_TOKEN_INVALID',
          'This consent form is not valid for your session.',
        );
      }
      if (decision === 'deny') {
        return reply.redirect(
          server.errorRedirect(authorization, 'access_denied', 'The person declined.'),
          303,
        );
      }
      return approveAndRedirect(reply, request, authorization, auth, body.remember === 'on', false);
    },
  );

  const userinfo = async (request: FastifyRequest) => {
    const auth = authOf(request);
    // OIDC Core §5.3: the UserInfo endpoint serves access tokens carrying `openid`.
    if (!auth.scopes.includes('openid')) {
      throw new GatehouseError('INSUFFICIENT_SCOPE', 'The token lacks the scope openid.', {
        challenge: { scheme: 'Bearer', error: 'insufficient_scope', scope: ['openid'] },
      });
    }
    return server.userInfo(auth.user, auth.scopes);
  };
  // RFC 6750 §3.1: a request with no access token gets the bare challenge, no error code. A
  // browser's session cookie is no credential here (OIDC Core §5.3 serves access tokens): it got
  // 403 `insufficient_scope`, telling the browser to ask for a scope for a token it never sent
  // (standards audit 2026-12-05 S10).
  const bearerOnly = async (request: FastifyRequest) => {
    if (request.headers.authorization === undefined) {
      throw new GatehouseError('UNAUTHENTICATED', 'Send an access token with the scope openid.', {
        challenge: { scheme: 'Bearer' },
      });
    }
  };
  const userinfoSchema = {
    tags: ['oauth'],
    summary: 'OpenID Connect UserInfo (OIDC Core §5.3)',
    description:
      'Bearer token with the `openid` scope. `profile` adds `name`, `email` adds `email` and `email_verified`.',
    response: { 200: UserInfoSchema, 401: problemRef, 403: problemRef },
  };
  app.get(
    '/userinfo',
    {
      preValidation: [bearerOnly, app.auth.require({ scopes: ['openid'] })],
      schema: { ...userinfoSchema, operationId: 'getUserInfo' },
    },
    async (request, reply) => reply.header('cache-control', 'no-store').send(await userinfo(request)),
  );
  // OIDC Core §5.3.1: the UserInfo endpoint MUST support GET and POST. The token comes in the
  // Authorization header either way; a form body is not read.
  app.post(
    '/userinfo',
    {
      preValidation: [bearerOnly, app.auth.require({ scopes: ['openid'] })],
      schema: { ...userinfoSchema, operationId: 'postUserInfo' },
    },
    async (request, reply) => reply.header('cache-control', 'no-store').send(await userinfo(request)),
  );

  app.get(
    '/.well-known/openid-configuration',
    {
      schema: {
        tags: ['oauth'],
        operationId: 'getOpenIdConfiguration',
        summary: 'OpenID Connect discovery (OIDC Discovery §3)',
        description:
          'The provider metadata OpenID Connect relying parties read: issuer, endpoints (including ' +
          '`end_session_endpoint` for RP-initiated logout), the ID-token signing algorithms (the default ' +
          'first, RS256 too), claims, scopes and client authentication methods, every URL derived from ' +
          'PUBLIC_URL. Needs no database; cacheable for 5 minutes.',
        security: [],
        response: { 200: Type.Record(Type.String(), Type.Unknown()) },
      },
    },
    async (_request, reply) => {
      return reply.header('cache-control', 'public, max-age=300').send({
        issuer: config.issuer,
        authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`,
        userinfo_endpoint: `${base}/userinfo`,
        jwks_uri: `${base}/.well-known/jwks.json`,
        revocation_endpoint: `${base}/revoke`,
        introspection_endpoint: `${base}/introspect`,
        end_session_endpoint: `${base}/oauth/logout`,
        scopes_supported: Object.keys(scopeDescriptions),
        response_types_supported: ['code'],
        response_modes_supported: ['query'],
        grant_types_supported: [
          'authorization_code',
          'refresh_token',
          'client_credentials',
          ...(config.passwordGrant ? ['password'] : []),
        ],
        subject_types_supported: ['public'],
        // OpenID Connect Discovery §3: RS256 MUST be listed; a client chooses with its
        // id_token_signed_response_alg (the default first).
        id_token_signing_alg_values_supported: [...gatehouse.idTokenKeys.algorithms],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
        revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
        // RFC 7662 §2.1 / RFC 8414 §2: introspection needs an authenticated confidential client.
        introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        code_challenge_methods_supported: ['S256'],
        // OIDC Discovery §3: request_uri_parameter_supported defaults to true, so both are said.
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        // OpenID Connect Prompt Create 1.0 §4.1 metadata: the `prompt` values /authorize honours.
        prompt_values_supported: [...PROMPT_VALUES],
        claims_supported: [
          'sub',
          'iss',
          'aud',
          'exp',
          'iat',
          'auth_time',
          'nonce',
          'amr',
          'azp',
          'sid',
          'name',
          'email',
          'email_verified',
        ],
        authorization_response_iss_parameter_supported: true,
        service_documentation: `${base}/docs`,
      });
    },
  );

  /** The logout parameters as the core reads them. */
  const logoutParameters = (fields: Static<typeof LogoutQuery>, clientIp: string): LogoutParameters => ({
    clientIp,
    // Empty ones as omitted (RFC 6749 §3.1), as at /authorize: an empty hint would count against
    // the address's failed-hint allowance, and an empty state come back as `state=`.
    idTokenHint: given(fields.id_token_hint),
    clientId: given(fields.client_id),
    postLogoutRedirectUri: given(fields.post_logout_redirect_uri),
    state: given(fields.state),
  });

  /** The fields a sign-out form token binds, in a fixed order (as logoutParameters reads them). */
  const logoutBound = (fields: Static<typeof LogoutQuery>) => [
    given(fields.client_id),
    given(fields.post_logout_redirect_uri),
    given(fields.state),
    given(fields.id_token_hint),
  ];

  /** Says which parameters were ignored (RP-Initiated Logout §4), for the RP's developers. */
  const ignoredNotice = (logout: LogoutRequest) =>
    logout.ignored.length === 0
      ? ''
      : `<p class="aside" data-testid="logout-ignored">Ignored: ${logout.ignored
          .map(
            (item) =>
              `<code data-code="${escapeHtml(item.code)}">${escapeHtml(item.parameter)}</code> (${escapeHtml(item.description)})`,
          )
          .join('; ')}</p>`;

  /** After a logout (or with nobody signed in): back to the app, or a page saying so. */
  const signedOut = (reply: FastifyReply, logout: LogoutRequest) => {
    if (logout.redirectTo !== undefined) return reply.redirect(logout.redirectTo, 303);
    return sendPage(
      reply,
      200,
      'You are signed out',
      `<p data-testid="logged-out">You can close this page.</p>${ignoredNotice(logout)}`,
    );
  };

  /** Ends the client's sessions and the browser's own, and clears its cookies. */
  const logOut = async (
    request: FastifyRequest,
    reply: FastifyReply,
    logout: LogoutRequest,
    auth: UserAuthContext,
  ) => {
    const browser = { userId: auth.user.id, sessionId: auth.sessionId };
    await rpLogout.endClientSessions(logout, browser);
    await selfService.signOut(auth.user.id, auth.sessionId, callerOf(request));
    reply.clearCookie(cookies.sessionName, { ...cookies.httpOnly, maxAge: 0 });
    reply.clearCookie(cookies.csrfTokenName, { ...cookies.readable, sameSite: 'strict', maxAge: 0 });
    return signedOut(reply, logout);
  };

  app.get(
    '/oauth/logout',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        operationId: 'startLogout',
        summary: 'RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)',
        description:
          'Browser navigation. With an `id_token_hint` (one of our ID tokens, expired ones included) that names a ' +
          'live session of the person signed in in this browser, signs out at once: the session the hint names ' +
          'and the browser session end. Otherwise (no hint, an invalid one, another person’s, a session already ' +
          'over) the person is asked to confirm (§2: a link alone must not sign anyone out), and confirming ends ' +
          'the browser session and the sessions the client holds for them. Then redirects to ' +
          '`post_logout_redirect_uri` with `state` when it is registered for the client exactly (§3); an ' +
          'unregistered URI, an invalid hint, a `client_id` that differs from the hint’s `aud` are ignored (§4): ' +
          'the signed-out page, never a redirect. Not signed in: nothing to end, straight to the redirect.',
        security: [],
        querystring: LogoutQuery,
        produces: ['text/html'],
        response: {
          200: Type.String({ description: 'Confirmation page, or the signed-out page (HTML)' }),
          303: NoBody({ description: 'To post_logout_redirect_uri' }),
          400: Type.String({ description: 'Error page (HTML): a parameter is repeated or too long' }),
        },
      },
    },
    async (request, reply) => {
      if (request.validationError !== undefined) {
        return sendErrorPage(reply, 400, 'INVALID_REQUEST', 'The request is malformed.');
      }
      const logout = await rpLogout.check(logoutParameters(request.query, request.ip));
      const auth = await browserSession(request);
      if (auth === null) return signedOut(reply, logout);
      if (await rpLogout.needsNoConfirmation(logout, { userId: auth.user.id, sessionId: auth.sessionId })) {
        return logOut(request, reply, logout, auth);
      }
      const { query } = request;
      return sendPage(
        reply,
        200,
        'Sign out?',
        `<p>Sign out of Gatehouse (<strong>${escapeHtml(auth.user.email)}</strong>)` +
          `${logout.client === undefined ? '' : ` and of ${escapeHtml(logout.client.name)}`}?</p>` +
          ignoredNotice(logout) +
          '<form method="post" action="/oauth/logout" data-testid="logout-form">' +
          hiddenFields({
            id_token_hint: query.id_token_hint,
            client_id: query.client_id,
            post_logout_redirect_uri: query.post_logout_redirect_uri,
            state: query.state,
            csrf_token: formTokens.issue('logout', auth.sessionId, logoutBound(query)),
          }) +
          '<p><button type="submit" class="button button--primary" data-testid="logout-confirm">Sign out</button></p></form>',
        logout.redirectTo,
      );
    },
  );

  app.post(
    '/oauth/logout',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        operationId: 'confirmLogout',
        summary: 'RP-initiated logout by form post, or the sign-out page’s confirmation',
        description:
          'Two uses. **An app’s logout request sent as a form** (RP-Initiated Logout 1.0 §2: the endpoint accepts ' +
          'POST as well as GET), with the fields of `GET /oauth/logout` and no `csrf_token`: redirected (303) to ' +
          '`GET /oauth/logout` with those fields as its query, where the browser’s session cookie is sent (a ' +
          'cross-site form post carries none, and the session would seem already ended). **The sign-out page’s ' +
          'confirmation**: Origin check and a token bound to the session and to every field.',
        security: [],
        consumes: ['application/x-www-form-urlencoded'],
        produces: ['text/html'],
        body: Type.Object({
          ...LogoutFields,
          csrf_token: Type.Optional(
            Type.String({
              maxLength: 128,
              description: 'The token the sign-out page carries (that page only)',
            }),
          ),
        }),
        response: {
          200: Type.String({ description: 'Signed out (HTML)' }),
          303: NoBody({
            description: 'To `GET /oauth/logout` (an app’s request), or to post_logout_redirect_uri',
          }),
          400: Type.String({ description: 'Error page (HTML)' }),
          403: Type.String({ description: 'Error page (HTML)' }),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      if (request.validationError === undefined && body.csrf_token === undefined) {
        // An app's request, not a confirmation: nothing ends here, so no Origin check (it is cross-site).
        return forwardToGet(reply, '/oauth/logout', body, LOGOUT_FIELD_NAMES);
      }
      const refusal = refusePost(request, reply);
      if (refusal !== undefined) return refusal;
      const csrfToken = body.csrf_token ?? '';
      const logout = await rpLogout.check(logoutParameters(body, request.ip));
      const auth = await browserSession(request);
      if (auth === null) return signedOut(reply, logout);
      if (!formTokens.verify(csrfToken, 'logout', auth.sessionId, logoutBound(body))) {
        return sendErrorPage(
          reply,
          403,
          'CSRF_TOKEN_INVALID',
          'This sign-out form is not valid for your session.',
        );
      }
      return logOut(request, reply, logout, auth);
    },
  );

  // Which apps hold the account is the person's business: an app may not list or disconnect others.
  const meGuard = app.auth.require({ scopes: ['me'], firstParty: true });
  app.get(
    '/users/me/connected-apps',
    {
      preValidation: meGuard,
      schema: {
        tags: ['me'],
        operationId: 'listConnectedApps',
        summary: 'Apps you allowed to use your account',
        description:
          'Every app you allowed, and every app holding a live session of yours (one you allowed without ' +
          '"remember my choice" keeps its refresh token until it expires or you disconnect it here), the most ' +
          'recently allowed first; for the latter, `consented_at` is when its newest session started. Callable ' +
          'by first-party sessions only.',
        response: { 200: Type.Array(ConnectedAppSchema), 401: problemRef, 403: problemRef },
      },
    },
    async (request) =>
      (await server.listConnectedApps(authOf(request).user.id)).map((connected) => ({
        client_id: connected.clientId,
        name: connected.clientName,
        scopes: connected.scopes,
        consented_at: new Date(connected.updatedAt).toISOString(),
      })),
  );

  app.delete(
    '/users/me/connected-apps/:clientId',
    {
      preValidation: meGuard,
      schema: {
        tags: ['me'],
        operationId: 'disconnectApp',
        summary: 'Disconnect an app',
        description:
          'Forgets your consent (the app must ask again) and ends every session the app holds for you: its ' +
          'access and refresh tokens fail on the next request.',
        params: Type.Object({
          clientId: Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7E]+$' }),
        }),
        response: { 204: NoBody(), 401: problemRef, 403: problemRef, 404: problemRef },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      if (!(await server.disconnectApp(auth.user.id, request.params.clientId, callerOf(request)))) {
        throw new GatehouseError('CLIENT_NOT_FOUND', 'This app is not connected to your account.');
      }
      return reply.code(204).send();
    },
  );
}

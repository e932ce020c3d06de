import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { GatehouseError } from '../../errors.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../mail/outbox.js';
import { callerOf } from '../caller.js';
import type { CookiePolicy } from '../cookies.js';
import { enforceAddressRateLimit } from '../rate-limit.js';
import { errorResponses, IdParam, NoBody, problemRef } from '../schemas.js';
import { authOf } from './me-routes.js';

/** A link token as mailed: 256 bits in base64url (43 characters); a little slack, nothing else. */
const LinkToken = Type.String({
  minLength: 20,
  maxLength: 128,
  pattern: '^[A-Za-z0-9_-]+$',
  description: 'The `token` of the mailed link (`…#/reset-password?token=…`)',
});
/** The account's password sent with a mailed link by someone not signed in to it (red-team 2026-12d I9). */
const LinkCurrentPassword = Type.Optional(
  Type.String({ maxLength: 4096, description: 'The account’s current password, when not signed in to it' }),
);
const Accepted = Type.Object(
  { status: Type.Literal('accepted') },
  { description: 'Taken in; what happens next arrives by mail, if anything' },
);
const ACCEPTED = { status: 'accepted' } as const;

/**
 * The account lifecycle routes (issue 12): email verification, password reset, email change
 * confirmation, deleting one's account, the admins' resend/reset actions, and the opt-in outbox
 * view. Each translates HTTP to one `gatehouse.lifecycle` call.
 */
export function registerLifecycleRoutes(
  parent: FastifyInstance,
  deps: { gatehouse: GatehouseCore; cookies: CookiePolicy },
): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { gatehouse, cookies } = deps;
  const { lifecycle, config } = gatehouse;
  const signedIn = app.auth.require({ scopes: ['me'] });
  const canWrite = app.auth.require({ role: 'admin', scopes: ['users:write'], firstParty: true });
  // Deleting the account is the person's own decision, never an app's (red-team 2026-12c H2).
  const ownSignIn = app.auth.require({ scopes: ['me'], firstParty: true });

  app.post(
    '/auth/forgot-password',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Mail a password reset link',
        description:
          'Always 202, for every address, before anything is looked up: the look-up, the link and the mail happen ' +
          'afterwards, so neither the answer nor its timing tells whether the address has an account. Beyond ' +
          '`ACCOUNT_MAILS_PER_HOUR` mails per address from one client (IP, IPv6 /64), or ten times that from all ' +
          'clients, the request is silently dropped (a per-address 429 would reveal accounts; the per-client share ' +
          'keeps a stranger from spending the owner’s mails); per client IP, `FORGOT_PASSWORD_PER_IP_PER_HOUR` ' +
          'requests, then 429. The link (valid `PASSWORD_RESET_TTL`, once) is built from `PUBLIC_URL` only. ' +
          'A requester that holds a device token for the account (the browser’s device cookie, or `device_token` ' +
          'from a password grant) or asks from an address the account has a live session from is counted apart ' +
          'from strangers, so strangers together cannot use up the owner’s mails either.',
        body: Type.Object(
          {
            email: Type.String({ minLength: 1, maxLength: 320 }),
            device_token: Type.Optional(
              Type.String({
                maxLength: 128,
                description:
                  'The `device_token` a password grant gave this client for the account, if any (browsers send the device cookie instead)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: Accepted, 400: problemRef, 429: problemRef },
      },
      // After the answer has gone out: nothing of the request's work can show in its answer.
      onResponse: async (request, reply) => {
        if (reply.statusCode !== 202) return;
        lifecycle.requestPasswordReset(request.body.email, callerOf(request), {
          deviceToken: request.body.device_token ?? request.cookies[cookies.deviceName],
        });
      },
    },
    async (request, reply) => {
      // Per address and, for IPv6, per /48 (red-team 2026-12d I8: per /64 alone one network had
      // 65 536 allowances to keep the background look-ups and the mail queue full with).
      await enforceAddressRateLimit(
        gatehouse.counters,
        {
          prefix: 'forgot',
          max: config.forgotPasswordPerIpPerHour,
          windowMs: 3600_000,
          message: 'Too many reset requests from this address; try again later.',
        },
        request.ip,
        gatehouse.clock,
      );
      return reply.code(202).send(ACCEPTED);
    },
  );

  app.post(
    '/auth/reset-password',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Choose a new password with a mailed link',
        description:
          'The link’s `token` (single use, expires after `PASSWORD_RESET_TTL`, at most 30 minutes) and the new ' +
          '`password` (same policy as sign-up). Success ends every session of the account, clears its login ' +
          'lockout, confirms its address and sets the device cookie (`__Host-gatehouse_device`: failed logins from ' +
          'elsewhere never lock this browser out of the account); second factors stay in force. A used, expired or unknown token is ' +
          '400 `INVALID_LINK_TOKEN`; a weak password is 400 `WEAK_PASSWORD` and leaves the link usable.',
        body: Type.Object(
          { token: LinkToken, password: Type.String({ maxLength: 4096 }) },
          { additionalProperties: false },
        ),
        response: { 204: NoBody(), 400: problemRef },
      },
    },
    async (request, reply) => {
      const { deviceToken } = await lifecycle.resetPassword(
        request.body.token,
        request.body.password,
        callerOf(request),
      );
      // The device cookie of a browser that signs in: failed logins from elsewhere cannot lock it
      // out, so a stranger who re-locks the account right after the reset does not keep its owner out.
      if (deviceToken !== undefined)
        reply.setCookie(cookies.deviceName, deviceToken, cookies.device(config.deviceTokenTtl));
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/verify/request',
    {
      preValidation: signedIn,
      schema: {
        tags: ['accounts'],
        summary: 'Mail a link that confirms your address',
        description:
          'Sends a verification link (valid `EMAIL_VERIFICATION_TTL`, once) to your account’s address; nothing ' +
          'when it is already verified, or beyond `ACCOUNT_MAILS_PER_HOUR` mails to it.',
        response: { 202: Accepted, ...errorResponses },
      },
    },
    async (request, reply) => {
      await lifecycle.requestVerification(authOf(request).user.id, callerOf(request));
      return reply.code(202).send(ACCEPTED);
    },
  );

  /**
   * The account and session the request is signed in with, if any: a bad, expired or revoked
   * credential only means "not the holder" here (a confirmation link needs no sign-in).
   */
  const holderOf = async (request: FastifyRequest) => {
    try {
      // No CSRF check: the link's token is the secret here, and holding a session of the account
      // only stands in for its password on that account's own link; a request another site made
      // the browser send carries no link of the person's (the mailbox has it).
      const auth = await app.auth.identify(request, { csrf: false });
      return auth === null ? undefined : { userId: auth.user.id, sessionId: auth.sessionId };
    } catch (error) {
      if (error instanceof GatehouseError && error.code === 'INVALID_TOKEN') return undefined;
      throw error;
    }
  };

  /**
   * What a link's request brings besides the token (red-team 2026-12d I9): its own sign-in, the
   * account's password if sent, and the browser's device cookie (the login's own counter).
   */
  const followerOf = async (request: FastifyRequest, currentPassword: string | undefined) => ({
    holder: await holderOf(request),
    currentPassword,
    deviceToken: request.cookies[cookies.deviceName],
  });

  app.post(
    '/auth/verify',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Confirm your address with a mailed link',
        description:
          'The link’s `token`: single use, expiring, and only for the address it was mailed to (400 ' +
          '`INVALID_LINK_TOKEN` otherwise). The link proves the mailbox, not that whoever follows it chose the ' +
          'account’s password (whoever signed up first may be a stranger), so it confirms an unverified address ' +
          'only with one of: **a session of the account** (cookie or bearer: the ordinary sign-up, nothing else ' +
          'changes); **`current_password`**, the account’s password (signed up on another device; nothing else ' +
          'changes; checked as a login is, under the same failure limits: 400 `INVALID_CREDENTIALS`, then 429 ' +
          'with Retry-After); or **`new_password`** (“I did not create this account”, or “I forgot its ' +
          'password”): a change of owner, in one transaction the password is replaced (the reset’s policy: 400 ' +
          '`WEAK_PASSWORD`), passkeys, TOTP, recovery codes, connected apps and pending links set up before are ' +
          'removed, every session ends, the login lockout clears and a notice is mailed. With none of them: 400 ' +
          '`VERIFICATION_NEEDS_PASSWORD`. Every refusal leaves the link usable. An address already verified needs ' +
          'nothing (the link changes nothing); `new_password` is then 409 `EMAIL_ALREADY_VERIFIED` (use ' +
          '`POST /auth/forgot-password`). Both passwords at once: 400 `VALIDATION_FAILED`.',
        body: Type.Object(
          {
            token: LinkToken,
            current_password: LinkCurrentPassword,
            new_password: Type.Optional(
              Type.String({
                maxLength: 4096,
                description:
                  'A new password for an account you did not create (or whose password you forgot): takes it over',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 204: NoBody(), 400: problemRef, 409: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      await lifecycle.verifyEmail(request.body.token, callerOf(request), {
        ...(await followerOf(request, request.body.current_password)),
        newPassword: request.body.new_password,
      });
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/email-change/confirm',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Confirm a new email address with the mailed link',
        description:
          'The `token` mailed to the new address by `PATCH /users/me` with `email`: the account’s address changes ' +
          'now (and counts as verified), the previous address is told. 400 `INVALID_LINK_TOKEN` for a used, expired ' +
          'or unknown token, and once the session that asked for the change has ended (revoked or expired) or the ' +
          'account is disabled; 409 `EMAIL_TAKEN` when the address was taken meanwhile. The new address’s owner ' +
          'may not be the account’s (a stranger may ask to move their account to your address), so the link needs ' +
          'a session of the account (cookie or bearer) or its `current_password` (checked as a login is: 400 ' +
          '`INVALID_CREDENTIALS`, then 429 with Retry-After); with neither, 400 `EMAIL_CHANGE_NEEDS_PASSWORD`. ' +
          'Every refusal leaves the link usable.',
        body: Type.Object(
          {
            token: LinkToken,
            current_password: LinkCurrentPassword,
          },
          { additionalProperties: false },
        ),
        response: { 204: NoBody(), 400: problemRef, 409: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      await lifecycle.confirmEmailChange(
        request.body.token,
        callerOf(request),
        await followerOf(request, request.body.current_password),
      );
      return reply.code(204).send();
    },
  );

  const clearSessionCookies = (reply: FastifyReply) => {
    reply.clearCookie(cookies.sessionName, { ...cookies.httpOnly, maxAge: 0 });
    reply.clearCookie(cookies.csrfTokenName, { ...cookies.readable, sameSite: 'strict', maxAge: 0 });
  };

  app.delete(
    '/users/me',
    {
      preValidation: ownSignIn,
      schema: {
        tags: ['accounts'],
        summary: 'Delete your account',
        description:
          'Needs `current_password` (guesses, and checks right ones included, limited per session, then 429). ' +
          'Every session ends, apps end what ' +
          'the account owns, audit entries keep your id but lose IPs and user agents, and a notice goes to your address. The ' +
          'last active super_admin cannot delete their account (409 `LAST_SUPER_ADMIN`).',
        body: Type.Object(
          { current_password: Type.String({ maxLength: 4096 }) },
          { additionalProperties: false },
        ),
        response: { 204: NoBody(), ...errorResponses, 409: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      await lifecycle.deleteOwnAccount(
        auth.user.id,
        { currentPassword: request.body.current_password },
        auth.sessionId,
        callerOf(request),
      );
      clearSessionCookies(reply);
      return reply.code(204).send();
    },
  );

  const IdParams = Type.Object({ id: IdParam('User id') });

  app.post(
    '/users/:id/verification',
    {
      preValidation: canWrite,
      schema: {
        tags: ['admin'],
        summary: 'Re-send the verification mail of an account',
        description:
          'Same rules as changing the account (admins manage plain users). Nothing when already verified.',
        params: IdParams,
        response: { 202: Accepted, ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      await lifecycle.resendVerificationFor(authOf(request).user, request.params.id, callerOf(request));
      return reply.code(202).send(ACCEPTED);
    },
  );

  app.post(
    '/users/:id/password-reset',
    {
      preValidation: canWrite,
      schema: {
        tags: ['admin'],
        summary: 'Mail a password reset link to an account',
        description:
          'The owner gets a reset link; the password stays as it is until the link is used. Same rules as ' +
          'changing the account.',
        params: IdParams,
        response: { 202: Accepted, ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      await lifecycle.sendResetFor(authOf(request).user, request.params.id, callerOf(request));
      return reply.code(202).send(ACCEPTED);
    },
  );

  // MAIL_OUTBOX_HTTP: off unless the operator turns it on, and then for super admins only.
  if (config.mailOutboxHttp && gatehouse.mailer.transport === 'outbox') {
    app.get(
      '/admin/outbox',
      {
        // The messages hold live reset links of every account, super admins' included: reading
        // them is taking those accounts over. A role alone let any token of a super admin in (an
        // app's with `openid` only, a first-party token narrowed to `me`), so it also needs the
        // scope that manages accounts, and the person's own sign-in (no OAuth app's token).
        preValidation: app.auth.require({ role: 'super_admin', scopes: ['users:write'], firstParty: true }),
        schema: {
          tags: ['admin'],
          summary: 'Read the mail outbox (MAIL_OUTBOX_HTTP)',
          description:
            'The newest messages written to `DATA_DIR/outbox` (no SMTP configured), newest first. Registered only ' +
            'with `MAIL_OUTBOX_HTTP=true`; super_admin only, with `users:write`. The messages hold live reset links: keep it off in ' +
            'production.',
          querystring: Type.Object(
            { limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              items: Type.Array(
                Type.Object({
                  id: Type.String(),
                  from: Type.String(),
                  to: Type.String(),
                  subject: Type.String(),
                  text: Type.String(),
                  html: Type.String(),
                  created_at: Type.String({ format: 'date-time' }),
                }),
              ),
            }),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const items = await readOutbox(outboxDirectory(config.dataDir), request.query.limit);
        return reply.header('cache-control', 'no-store').send({ items });
      },
    );
  }
}

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { MailMessage } from './mail-transport.js';

/**
 * Every message Gatehouse sends, and the values its template may use (`{{link}}`). `link` values
 * are built by the mailer from `PUBLIC_URL` only, never from a request's `Host` header (no
 * reset-link poisoning).
 */
export interface MailKinds {
  /** Confirm the address of an account (`POST /auth/verify/request`, sign-up with REQUIRE_VERIFIED_EMAIL). */
  verify_email: { link: string; hours: string };
  /** A password reset link (`POST /auth/forgot-password`, or an admin's trigger). */
  reset_password: { link: string; minutes: string };
  /**
   * Sent to the new address of an email change: following it makes the change. `account_email` is
   * the account's current address, masked (`a***@example.com`, `maskEmail`): its reader must be able
   * to tell which account asks, but the new address is not yet proven to be its owner's (it may be
   * mistyped), so it is not told the account's sign-in address.
   */
  confirm_email_change: { link: string; new_email: string; hours: string; account_email: string };
  /** Sent to the current address when an email change is asked for; `account_email` is that address. */
  email_change_requested: { new_email: string; account_email: string };
  /** Sent to the previous address once the change took effect; `account_email` is that address. */
  email_changed: { new_email: string; account_email: string };
  /** The password was changed or reset. */
  password_changed: { when: string };
  /** Someone tried to sign up (or move an account) to an address that already has an account. */
  account_exists: { link: string };
  /**
   * A second factor (`factor`: "A passkey" or "An authenticator app") was added to the account (ASVS
   * V2.5.5 / OWASP MFA: the owner learns of a factor a thief of the password would plant).
   */
  second_factor_added: { when: string; factor: string };
  /** A second factor was removed from the account (sent by the MFA module). */
  second_factor_removed: { when: string };
  /**
   * `failures` wrong second-factor codes in a row (MFA_MAX_CONSECUTIVE_FAILURES) were entered for
   * the account, by someone who knows its password or holds one of its sessions; codes from new
   * devices are refused until a passkey or a device used before signs in, or an admin resets the
   * factor (a password reset by mail does not lift it). Sent by the MFA module, once per run.
   */
  second_factor_locked: { when: string; failures: string };
  /**
   * The account's recovery codes were replaced by ten new ones (OWASP MFA, ASVS V2.5.5: whoever
   * replaced them holds a way past the authenticator app, and the owner's printed codes stopped
   * working). Sent by the MFA module.
   */
  recovery_codes_replaced: { when: string };
  /** A sign-in spent one of the account's recovery codes; `left` of them remain. Sent by the MFA module. */
  recovery_code_used: { when: string; left: string };
  /** The account was deleted. */
  account_deleted: { when: string };
}

/** A kind of message (see {@link MailKinds}). */
export type MailKind = keyof MailKinds;

interface Template {
  subject: string;
  text: string;
  html: string;
}

const footer = 'If this was not you, you can ignore this message.';
const takeOver =
  'If you did not create this account, someone else used your address: you can take the account over by ' +
  'choosing a password on that page, or ignore this message.';
const notYourChange =
  'Unless you are signed in to that account, the page asks for its password. If you did not ask for this, ' +
  'ignore this message: nothing changes.';

const DEFAULT_TEMPLATES: { [K in MailKind]: Template } = {
  // Red-team 2026-12d I9: whoever signed up with this address may not be its owner, so the mail
  // says what the page offers them (the page asks for the password, or a new one, without a session).
  verify_email: {
    subject: 'Confirm your email address',
    text:
      'Confirm this address for your account by opening this link within {{hours}} hours:\n\n{{link}}\n\n' +
      takeOver,
    html:
      '<p>Confirm this address for your account by opening this link within {{hours}} hours:</p><p><a href="{{link}}">Confirm my address</a></p><p>' +
      takeOver +
      '</p>',
  },
  reset_password: {
    subject: 'Reset your password',
    text: 'To choose a new password, open this link within {{minutes}} minutes:\n\n{{link}}\n\nIt works once. If you did not ask for it, ignore this message: your password stays as it is.',
    html: '<p>To choose a new password, open this link within {{minutes}} minutes:</p><p><a href="{{link}}">Reset my password</a></p><p>It works once. If you did not ask for it, ignore this message: your password stays as it is.</p>',
  },
  confirm_email_change: {
    subject: 'Confirm your new email address',
    text:
      'The account {{account_email}} asked to make {{new_email}} its address. To confirm, open this link within {{hours}} hours:\n\n{{link}}\n\n' +
      notYourChange,
    html:
      '<p>The account {{account_email}} asked to make {{new_email}} its address. To confirm, open this link within {{hours}} hours:</p><p><a href="{{link}}">Confirm my new address</a></p><p>' +
      notYourChange +
      '</p>',
  },
  email_change_requested: {
    subject: 'Your email address is about to change',
    text: 'Someone signed in to your account {{account_email}} asked to change its address to {{new_email}}. It changes only once that address confirms. If this was not you, change your password now.',
    html: '<p>Someone signed in to your account {{account_email}} asked to change its address to {{new_email}}. It changes only once that address confirms. If this was not you, change your password now.</p>',
  },
  email_changed: {
    subject: 'Your email address was changed',
    text: 'The address of your account {{account_email}} is now {{new_email}}; {{account_email}} no longer signs in. If this was not you, contact the administrator.',
    html: '<p>The address of your account {{account_email}} is now {{new_email}}; {{account_email}} no longer signs in. If this was not you, contact the administrator.</p>',
  },
  password_changed: {
    subject: 'Your password was changed',
    text: 'The password of your account was changed at {{when}} and every session was ended. If this was not you, reset your password now.',
    html: '<p>The password of your account was changed at {{when}} and every session was ended. If this was not you, reset your password now.</p>',
  },
  account_exists: {
    subject: 'You already have an account',
    text:
      'Someone tried to create an account with this address, which already has one. If it was you, sign in, or reset your password here:\n\n{{link}}\n\n' +
      footer,
    html:
      '<p>Someone tried to create an account with this address, which already has one. If it was you, sign in, or <a href="{{link}}">reset your password</a>.</p><p>' +
      footer +
      '</p>',
  },
  second_factor_added: {
    subject: 'A new way to sign in was added to your account',
    text:
      '{{factor}} was added to your account at {{when}}. If this was not you, reset your password now and ' +
      'ask your administrator to remove the second factors you did not set up.',
    html:
      '<p>{{factor}} was added to your account at {{when}}. If this was not you, reset your password now and ' +
      'ask your administrator to remove the second factors you did not set up.</p>',
  },
  second_factor_removed: {
    subject: 'A second factor was removed from your account',
    text: 'A second factor was removed from your account at {{when}}. If this was not you, reset your password now.',
    html: '<p>A second factor was removed from your account at {{when}}. If this was not you, reset your password now.</p>',
  },
  // Someone with the password (or a session) reached the codes: the mail says how the owner gets
  // out, with a passkey or a device used before, or an administrator (NIST SP 800-63B §5.2.2).
  second_factor_locked: {
    subject: 'Too many wrong sign-in codes on your account',
    text:
      '{{failures}} wrong sign-in codes in a row were entered for your account, the last at {{when}}, by someone ' +
      'who knew your password or held one of your signed-in sessions. Codes from your authenticator app are ' +
      'now refused on new devices. Sign in with one of your recovery codes, a passkey, or a code on a device ' +
      'you signed in with before (each lifts this), then change your password on your account page. Without ' +
      'any of them, ask an administrator to reset your second factor. "Forgot password" alone does not lift it.',
    html:
      '<p>{{failures}} wrong sign-in codes in a row were entered for your account, the last at {{when}}, by ' +
      'someone who knew your password or held one of your signed-in sessions.</p><p>Codes from your ' +
      'authenticator app are now refused on new devices. Sign in with one of your recovery codes, a passkey, ' +
      'or a code on a device you signed in with before (each lifts this), then change your password on your ' +
      'account page. Without any of them, ask an administrator to reset your second factor. "Forgot password" ' +
      'alone does not lift it.</p>',
  },
  recovery_codes_replaced: {
    subject: 'Your recovery codes were replaced',
    text:
      'New recovery codes were made for your account at {{when}}; the ones you had no longer work. If this was ' +
      'not you, sign in, change your password, and make new recovery codes on your account page.',
    html:
      '<p>New recovery codes were made for your account at {{when}}; the ones you had no longer work. If this ' +
      'was not you, sign in, change your password, and make new recovery codes on your account page.</p>',
  },
  recovery_code_used: {
    subject: 'A recovery code was used to sign in',
    text:
      'A recovery code of your account was used to sign in at {{when}}; {{left}} of your codes remain. If this ' +
      'was not you, change your password and make new recovery codes on your account page.',
    html:
      '<p>A recovery code of your account was used to sign in at {{when}}; {{left}} of your codes remain. If ' +
      'this was not you, change your password and make new recovery codes on your account page.</p>',
  },
  account_deleted: {
    subject: 'Your account was deleted',
    text: 'Your account was deleted at {{when}}. If this was not you, contact the administrator.',
    html: '<p>Your account was deleted at {{when}}. If this was not you, contact the administrator.</p>',
  },
};

/** The kinds, in a fixed order. */
export const MAIL_KINDS = Object.keys(DEFAULT_TEMPLATES) as MailKind[];

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** Renders messages from the built-in templates, or an operator's (`MAIL_TEMPLATES_DIR`). */
export interface MailTemplates {
  render<K extends MailKind>(kind: K, to: string, values: MailKinds[K]): MailMessage;
}

/** The placeholders a kind's template may use, from its default (which uses them all). */
function allowedNames(kind: MailKind): Set<string> {
  const { subject, text, html } = DEFAULT_TEMPLATES[kind];
  return new Set([...`${subject}${text}${html}`.matchAll(PLACEHOLDER)].map((match) => match[1] ?? ''));
}

/**
 * Loads the templates once, at start-up: for each kind, `<kind>.subject.txt`, `<kind>.txt` and
 * `<kind>.html` in `dir` replace the built-in ones (each file on its own). A file that names a
 * value its kind does not have fails start-up with a `ConfigError` naming it, rather than mailing
 * a literal `{{typo}}`.
 */
export function loadMailTemplates(dir: string | undefined): MailTemplates {
  const templates = { ...DEFAULT_TEMPLATES };
  const problems: string[] = [];
  if (dir !== undefined) {
    if (!existsSync(dir)) problems.push(`MAIL_TEMPLATES_DIR: ${dir} does not exist`);
    else {
      for (const kind of MAIL_KINDS) {
        const allowed = allowedNames(kind);
        const read = (suffix: string, fallback: string) => {
          const path = join(dir, `${kind}${suffix}`);
          if (!existsSync(path)) return fallback;
          const content = readFileSync(path, 'utf8');
          for (const match of content.matchAll(PLACEHOLDER)) {
            if (!allowed.has(match[1] ?? ''))
              problems.push(
                `MAIL_TEMPLATES_DIR: ${path} uses {{${match[1]}}}; ${kind} has ${[...allowed].join(', ') || 'none'}`,
              );
          }
          return suffix === '.subject.txt' ? content.trim() : content;
        };
        const base = DEFAULT_TEMPLATES[kind];
        templates[kind] = {
          subject: read('.subject.txt', base.subject),
          text: read('.txt', base.text),
          html: read('.html', base.html),
        };
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    render(kind, to, values) {
      const template = templates[kind];
      const lookup = values as unknown as Record<string, string>;
      const fill = (source: string, encode: (value: string) => string) =>
        source.replace(PLACEHOLDER, (_all, name: string) => encode(lookup[name] ?? ''));
      return {
        to,
        // A header line: no line breaks from a value (header injection).
        subject: fill(template.subject, (value) => value.replace(/[\r\n]+/g, ' ')),
        text: fill(template.text, (value) => value),
        html: fill(template.html, escapeHtml),
      };
    },
  };
}

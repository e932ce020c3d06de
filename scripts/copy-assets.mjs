// Copies the files tsc does not emit into dist/: the web UI's static files and the password list.
import { cpSync, existsSync } from 'node:fs';

if (existsSync('web/public')) cpSync('web/public', 'dist/web/public', { recursive: true });
// The common-password list is read next to its compiled module (src/passwords/common-passwords.ts).
cpSync('src/passwords/common-passwords.txt', 'dist/src/passwords/common-passwords.txt');

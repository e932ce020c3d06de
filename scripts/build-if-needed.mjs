// Builds dist/ when it is missing or older than any source file, so `npm start` works on a fresh clone.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const newest = (dir) => {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
};

const marker = 'dist/src/cli.js';
const sources = ['src', 'web'].filter((dir) => existsSync(dir));
const stale = !existsSync(marker) || Math.max(...sources.map(newest)) > statSync(marker).mtimeMs;
if (stale) {
  console.log('Building Gatehouse…');
  execSync('npm run build --silent', { stdio: 'inherit' });
}

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

// Both outputs must exist and be newer than every source: the server's compiled CLI and the web
// bundle (which also holds the server's shared Dicery rules, so a change in src/ rebuilds it too).
const markers = ['dist/src/cli.js', 'dist/web/assets/main.js'];
const sources = ['src', 'web'].filter((dir) => existsSync(dir));
const newestSource = Math.max(...sources.map(newest));
const stale = markers.some((marker) => !existsSync(marker) || newestSource > statSync(marker).mtimeMs);
if (stale) {
  console.log('Building Gatehouse…');
  execSync('npm run build --silent', { stdio: 'inherit' });
}

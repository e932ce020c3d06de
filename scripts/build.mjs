// `npm run build`: the server's JavaScript (tsc, then compact-dist), the web bundle and the files tsc
// does not emit, into dist/. With `--if-needed` (npm start, the benchmarks, every test run's global
// setup) it builds only when dist/ was not built, completely, from the inputs there are now.
//
// Why a digest of the inputs' contents rather than their mtimes: CI on a fresh clone built dist/
// twice (for the OpenAPI lint, then again in the test run's global setup, ≈ 30 s on 2 cores), and
// every `npx vitest run <file>` paid a full build. mtimes could not say "built, and the build
// succeeded": tsc still emits on type errors, so a failed build left a dist/ newer than its sources.
// The stamp is removed before a build and written only after all of it succeeded, so a failed build
// is tried (and fails) again next time.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const STAMP = 'dist/.build-inputs';
/** Everything the build reads from the repository (the installed packages through the lock file). */
const INPUTS = [
  'src',
  'web',
  'examples',
  'scripts',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
];
/** What the build must have left for the server and the browser tests to run. */
const OUTPUTS = ['dist/src/cli.js', 'dist/web/assets/main.js'];

function* files(path) {
  if (!existsSync(path)) return;
  if (!statSync(path).isDirectory()) {
    yield path;
    return;
  }
  const entries = readdirSync(path).sort();
  for (const entry of entries) yield* files(join(path, entry));
}

function inputsDigest() {
  const hash = createHash('sha256');
  for (const input of INPUTS) {
    for (const file of files(input)) {
      // Names and contents, separated, so a renamed file or a moved byte changes the digest.
      hash.update(`${file}\0`);
      hash.update(readFileSync(file));
      hash.update('\0');
    }
  }
  return hash.digest('hex');
}

/** Runs one step; a failed step ends the build with its exit code (its own output says why). */
function node(args) {
  try {
    execFileSync(process.execPath, args, { stdio: 'inherit' });
  } catch (error) {
    process.exit(typeof error.status === 'number' && error.status !== 0 ? error.status : 1);
  }
}

const digest = inputsDigest();
const built =
  process.argv.includes('--if-needed') &&
  OUTPUTS.every((output) => existsSync(output)) &&
  existsSync(STAMP) &&
  readFileSync(STAMP, 'utf8') === digest;
if (!built) {
  if (process.argv.includes('--if-needed')) console.log('Building Gatehouse…');
  rmSync(STAMP, { force: true });
  node(['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json']);
  node(['scripts/compact-dist.mjs']);
  node(['scripts/build-web.mjs']);
  node(['scripts/copy-assets.mjs']);
  // The digest from before the build: a file edited while it ran is built again next time.
  writeFileSync(STAMP, digest);
}

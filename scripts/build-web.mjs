// Bundles the web UI (web/src/main.ts and everything it imports, the server's shared Dicery rules
// included) into dist/web/assets/main.js, minified with a source map; web/public is served as-is.
// esbuild type-strips only: `npm run typecheck` (tsconfig.web.json) is what checks the web's types.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const outdir = 'dist/web/assets';
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: ['web/src/main.ts'],
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Browsers from 2022 on: native ES modules, optional chaining, private fields and `\p{…}` regexes.
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  metafile: true,
  // Errors and warnings only. A `node:` import cannot resolve on the browser platform, so a shared
  // module that stops being browser-safe fails the build here rather than in the browser.
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs)
  .filter((output) => output.entryPoint !== undefined)
  .reduce((sum, output) => sum + output.bytes, 0);
if (process.env.npm_lifecycle_event !== 'prestart') console.log(`web bundle: ${bytes} bytes (minified)`);

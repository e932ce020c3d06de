// `npm run lint:openapi`: dumps the OpenAPI document of a server built with test settings (the
// document depends only on the routes, not on data) and lints it with Redocly's recommended
// rules. Runs offline: Redocly's telemetry and update check are switched off here.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { buildTestServer } = await import('../dist/src/testing.js');
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-openapi-'));
const file = join(dir, 'openapi.json');
// An asymmetric algorithm so the JWKS route is part of the document too.
const app = await buildTestServer({ jwtAlgorithm: 'EdDSA', publicUrl: 'https://auth.example.org' });
try {
  await app.ready();
  const document = await app.inject({ method: 'GET', url: '/openapi.json' });
  writeFileSync(file, JSON.stringify(document.json(), null, 2));
} finally {
  await app.close();
}
const result = spawnSync(
  process.execPath,
  ['node_modules/@redocly/cli/bin/cli.js', 'lint', file, '--extends', 'recommended', '--format', 'stylish'],
  {
    stdio: 'inherit',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', CI: 'true' },
  },
);
rmSync(dir, { recursive: true, force: true });
process.exit(result.status ?? 1);

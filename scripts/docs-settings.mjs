// Writes the README's settings table from the settings schemas: the core's (src/config/config-schema.ts)
// and those the reference server's apps register (REFERENCE_APP_SETTINGS in src/server.ts).
// `npm run docs:settings`; test/config/settings-table.test.ts fails when README.md is out of date.

import { execSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

execSync('node scripts/build.mjs --if-needed', { stdio: 'inherit' });
const { replaceSettingsTable } = await import('../dist/src/config/settings-table.js');
const { REFERENCE_APP_SETTINGS } = await import('../dist/src/server.js');
const readme = readFileSync('README.md', 'utf8');
const updated = replaceSettingsTable(readme, REFERENCE_APP_SETTINGS);
if (updated === readme) {
  console.log('README.md: settings table already up to date');
} else {
  writeFileSync('README.md', updated);
  console.log('README.md: settings table rewritten');
}

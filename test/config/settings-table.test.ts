import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { dicerySettings } from '../../src/apps/dicery/settings.js';
import { defineAppSettings } from '../../src/config/app-settings.js';
import { gatehouseConfigSchema } from '../../src/config/config.js';
import { integerSetting, SETTING } from '../../src/config/setting.js';
import {
  renderSettingsTable,
  replaceSettingsTable,
  SETTINGS_TABLE_END,
  SETTINGS_TABLE_START,
} from '../../src/config/settings-table.js';
import { REFERENCE_APP_SETTINGS } from '../../src/server.js';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
// `process.env.NAME`, `env.NAME`, `env['NAME']`, `process.env["NAME"]`.
const ENV_READ = /\benv(?:\.([A-Z][A-Z0-9_]*)\b|\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\])/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

describe('README settings table', () => {
  it('is the table the settings schema generates (run `npm run docs:settings` after changing a setting)', () => {
    const start = readme.indexOf(SETTINGS_TABLE_START);
    const end = readme.indexOf(SETTINGS_TABLE_END);
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    expect(readme.slice(start + SETTINGS_TABLE_START.length, end).trim()).toBe(
      renderSettingsTable(REFERENCE_APP_SETTINGS),
    );
  });

  it("gives each registered app a section of its own, after the core's, with its settings", () => {
    const table = renderSettingsTable(REFERENCE_APP_SETTINGS);
    const section = table.indexOf('#### Dicery (reference app)\n');
    expect(section).toBeGreaterThan(table.indexOf('| `ACCESS_TOKEN_TTL`'));
    for (const [property, schema] of Object.entries(dicerySettings.schema.properties)) {
      const row = table.search(new RegExp(`^\\| \`${schema[SETTING].env}\` +\\| \`${property}\` +\\|`, 'm'));
      expect(row).toBeGreaterThan(section);
    }
    // The core's own table lists none of them.
    expect(renderSettingsTable()).not.toContain('ROOM_TOKEN_TTL');
  });

  it('shows an app setting as its schema declares it: variable, option, default, accepts, meaning', () => {
    const widgets = defineAppSettings({
      app: 'widgets',
      title: 'Widgets',
      schema: Type.Object({
        widgetsPerHour: integerSetting({
          env: 'WIDGETS_PER_HOUR',
          minimum: 1,
          maximum: 99,
          default: 7,
          description: 'widgets | gadgets',
        }),
      }),
    });
    const lines = renderSettingsTable([widgets]).split('\n');
    expect(lines.slice(-5, -2)).toEqual([
      '#### Widgets',
      '',
      expect.stringMatching(/^\| variable +\| option +\|/),
    ]);
    expect(renderSettingsTable([widgets])).toMatch(
      /\| `WIDGETS_PER_HOUR` \| `widgetsPerHour` \| `7` +\| an integer from 1 to 99 \| widgets \\\| gadgets \|$/,
    );
  });

  it('has one row per setting, naming its variable and option', () => {
    const table = renderSettingsTable();
    for (const [property, schema] of Object.entries(gatehouseConfigSchema.properties)) {
      expect(table).toMatch(new RegExp(`^\\| \`${schema[SETTING].env}\` +\\| \`${property}\` +\\|`, 'm'));
    }
    expect(table.split('\n')).toHaveLength(Object.keys(gatehouseConfigSchema.properties).length + 2);
  });

  it('documents the settings the hand-written table missed', () => {
    for (const name of ['REGISTRATIONS_PER_HOUR', 'ROOM_ROLLS_PER_MINUTE', 'ROOM_HEARTBEAT_INTERVAL']) {
      expect(renderSettingsTable(REFERENCE_APP_SETTINGS)).toContain(`| \`${name}\``);
    }
  });

  it('is rewritten in place, and only between the markers', () => {
    const page = `# Title\n\n${SETTINGS_TABLE_START}\nstale\n${SETTINGS_TABLE_END}\n\nAfter.\n`;
    const updated = replaceSettingsTable(page);
    expect(updated).toBe(
      `# Title\n\n${SETTINGS_TABLE_START}\n\n${renderSettingsTable()}\n\n${SETTINGS_TABLE_END}\n\nAfter.\n`,
    );
    expect(replaceSettingsTable(updated)).toBe(updated);
    expect(() => replaceSettingsTable('# no markers\n')).toThrow(/settings:start/);
  });
});

describe('environment variables read by src/', () => {
  const files = sourceFiles(join(root, 'src'));
  const settingNames = new Set(
    [gatehouseConfigSchema.properties, ...REFERENCE_APP_SETTINGS.map((app) => app.schema.properties)].flatMap(
      (properties) => Object.values(properties).map((schema) => schema[SETTING].env),
    ),
  );

  it('are all settings of the schema, so none escapes validation or the README', () => {
    const read: string[] = [];
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(ENV_READ)) {
        const name = match[1] ?? match[2] ?? '';
        if (!settingNames.has(name)) read.push(`${relative(root, file)}: ${name}`);
      }
    }
    expect(read).toEqual([]);
  });

  it('are read in bulk only by the config loader (anything else must name its variable)', () => {
    const bulk = files
      .filter((file) => /process\.env(?!\.[A-Z])/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(root, file));
    expect(bulk).toEqual([join('src', 'config', 'load-config.ts')]);
  });

  it('finds a variable outside the schema (the check itself can fail)', () => {
    const text = "const level = process.env.GATEHOUSE_DEBUG ?? env['OTHER_THING'];";
    const names = [...text.matchAll(ENV_READ)].map((match) => match[1] ?? match[2]);
    expect(names).toEqual(['GATEHOUSE_DEBUG', 'OTHER_THING']);
    expect(names.some((name) => name !== undefined && settingNames.has(name))).toBe(false);
  });
});

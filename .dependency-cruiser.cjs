/**
 * The import rule of ARCHITECTURE.md, checked by `npm run lint` (dependency-cruiser 17: the last
 * line that runs on Node 20). Core = everything in src/ but src/http, src/apps and the reference
 * server (src/server*.ts, src/start-server.ts, src/cli.ts, src/testing.ts).
 */
const REFERENCE_SERVER = '^src/(server|server-entry|start-server|cli|testing)\\.ts$';
const CORE = '^src/(?!http/|apps/|(server|server-entry|start-server|cli|testing)\\.ts$)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-no-fastify',
      comment: 'The core knows nothing of HTTP: no fastify or @fastify/* (the adapter is src/http).',
      severity: 'error',
      from: { path: CORE },
      to: { path: '(^|/)node_modules/(fastify|@fastify/|fastify-plugin)' },
    },
    {
      name: 'core-no-adapter-or-apps',
      comment: 'The core imports nothing from src/http, src/apps or the reference server.',
      severity: 'error',
      from: { path: CORE },
      to: { path: `^src/(http|apps)/|${REFERENCE_SERVER}` },
    },
    {
      name: 'adapter-no-apps',
      comment: 'src/http imports nothing from src/apps or the reference server.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: `^src/apps/|${REFERENCE_SERVER}` },
    },
    {
      name: 'apps-public-api-only',
      comment:
        'An app imports the public entries (src/index.ts = gatehouse, src/http/index.ts = gatehouse/fastify), its own folder and packages only.',
      severity: 'error',
      from: { path: '^src/apps/([^/]+)/' },
      to: {
        path: '^src/',
        pathNot: ['^src/index\\.ts$', '^src/http/index\\.ts$', '^src/apps/$1/'],
      },
    },
    {
      name: 'core-internals',
      comment:
        'The core behind the Gatehouse facade (src/gatehouse-core.ts: database, stores, caches, keyring) is for the composition root, the adapter and the reference server only; no public entry re-exports it.',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: [
          '^src/gatehouse\\.ts$',
          '^src/http/(?!index\\.ts$)',
          '^src/(server|start-server|cli)\\.ts$',
        ],
      },
      to: { path: '^src/gatehouse-core\\.ts$' },
    },
    {
      name: 'sql-in-storage-only',
      comment: 'Query building (kysely) only in storage/ folders (core and apps); types are fine anywhere.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['/storage/', '^src/gatehouse(-transaction)?\\.ts$'] },
      to: { path: '(^|/)node_modules/kysely/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles (type-only imports excepted: they vanish at run time).',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};

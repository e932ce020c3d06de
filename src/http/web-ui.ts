import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { lazyAppHandler } from './lazy-app.js';

/** The package root: the nearest folder above this file holding package.json (works from src/ and dist/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the Gatehouse sources');
    dir = parent;
  }
  return dir;
}

/** Marks the web UI's routes as not part of the OpenAPI document (as `@fastify/static` does). */
const HIDDEN = { schema: { hide: true } } as const;

/**
 * Serves the web UI: static pages from `web/public` at `/` and the compiled scripts from
 * `dist/web/assets` at `/assets/` (bundled by `npm run build`). Returns false when the scripts have not
 * been built, so the API still runs.
 *
 * Lazy (issue 10, footprint): start-up only lists the pages (one route each, as `@fastify/static`
 * with `wildcard: false` registers them) and routes `/assets/*`; the first request imports
 * `@fastify/static` and serves from a small app of its own (see {@link lazyAppHandler}).
 */
export async function registerWebUi(app: FastifyInstance): Promise<boolean> {
  const root = packageRoot();
  const pages = join(root, 'web', 'public');
  const scripts = join(root, 'dist', 'web', 'assets');
  if (!existsSync(pages) || !existsSync(scripts)) {
    app.log.warn('web UI not built (run npm run build); serving the API only');
    return false;
  }
  const handler = lazyAppHandler(async () => {
    const { default: fastifyStatic } = await import('@fastify/static');
    const files = Fastify({ logger: false });
    await files.register(fastifyStatic, { root: pages, prefix: '/', index: ['index.html'], wildcard: false });
    await files.register(fastifyStatic, {
      root: scripts,
      prefix: '/assets/',
      decorateReply: false,
      wildcard: false,
    });
    return files;
  });
  const names = readdirSync(pages, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(pages.length).split(sep).join('/'));
  for (const name of names) app.get(name, HIDDEN, handler);
  app.get('/', HIDDEN, handler);
  app.get('/assets/*', HIDDEN, handler);
  return true;
}

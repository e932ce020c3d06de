import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

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

/**
 * Serves the web UI: static pages from `web/public` at `/` and the compiled scripts from
 * `dist/web/assets` at `/assets/` (bundled by `npm run build`). Returns false when the scripts have not
 * been built, so the API still runs.
 */
export async function registerWebUi(app: FastifyInstance): Promise<boolean> {
  const root = packageRoot();
  const pages = join(root, 'web', 'public');
  const scripts = join(root, 'dist', 'web', 'assets');
  if (!existsSync(pages) || !existsSync(scripts)) {
    app.log.warn('web UI not built (run npm run build); serving the API only');
    return false;
  }
  await app.register(fastifyStatic, { root: pages, prefix: '/', index: ['index.html'], wildcard: false });
  await app.register(fastifyStatic, {
    root: scripts,
    prefix: '/assets/',
    decorateReply: false,
    wildcard: false,
  });
  return true;
}

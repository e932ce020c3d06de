import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type onRequestHookHandler } from 'fastify';
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

const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '[::1]']);

/**
 * When PUBLIC_URL is `http(s)://localhost:<port>` (the default), a page opened at `127.0.0.1:<port>`
 * or `[::1]:<port>` is sent there (308): an IP address cannot be a WebAuthn relying-party id, so
 * passkeys only work at `localhost`, and cookies set on one host are not sent to the other. Only
 * the web UI's pages move; API routes answer on any host. Redirects only to PUBLIC_URL, never to
 * a host taken from the request.
 */
function loopbackRedirect(publicUrl: string): onRequestHookHandler | undefined {
  const target = new URL(publicUrl);
  if (target.hostname !== 'localhost') return undefined;
  const port = target.port === '' ? (target.protocol === 'https:' ? '443' : '80') : target.port;
  return (request, reply, done) => {
    const requestPort = request.port === null ? port : String(request.port);
    if (!LOOPBACK_ADDRESSES.has(request.hostname) || requestPort !== port) {
      done();
      return;
    }
    // The path and query only, never a host: the request target may be in absolute form
    // (`GET http://evil.example/`, RFC 9112 §3.2.2) or start with `//`, and resolving it as a URL
    // took its host (red-team 2026-12h M2). The fragment (the UI's route) stays in the browser.
    const { pathname, search } = new URL(request.url, 'http://path.invalid');
    void reply.redirect(`${target.origin}${pathname}${search}`, 308);
  };
}

/** Marks the web UI's routes as not part of the OpenAPI document (as `@fastify/static` does). */
const HIDDEN = { schema: { hide: true } } as const;

/** A bundled script or style sheet (`/assets/main.js`): one plain name, no folders. */
const ASSET_FILE = /^\/assets\/[\w-]+(?:\.[\w-]+)+$/;

/**
 * Serves the web UI: static pages from `web/public` at `/` and the compiled scripts from
 * `dist/web/assets` at `/assets/` (bundled by `npm run build`). Returns false when the scripts have not
 * been built, so the API still runs.
 *
 * Lazy (issue 10, footprint): start-up only lists the pages (one route each, as `@fastify/static`
 * with `wildcard: false` registers them) and routes `/assets/*`; the first request imports
 * `@fastify/static` and serves from a small app of its own (see {@link lazyAppHandler}).
 */
export async function registerWebUi(
  app: FastifyInstance,
  options: { publicUrl?: string } = {},
): Promise<boolean> {
  const root = packageRoot();
  const pages = join(root, 'web', 'public');
  const scripts = join(root, 'dist', 'web', 'assets');
  if (!existsSync(pages) || !existsSync(scripts)) {
    app.log.warn('web UI not built (run npm run build); serving the API only');
    return false;
  }
  const names = readdirSync(pages, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(pages.length).split(sep).join('/'));
  // The pages and the bundle are fixed files (`wildcard: false` lists them once): each is read and
  // sent through the inner app once, then from memory (see lazyAppHandler), as the docs are.
  const pagePaths = new Set(['/', ...names]);
  const handler = lazyAppHandler(
    async () => {
      const { default: fastifyStatic } = await import('@fastify/static');
      const files = Fastify({ logger: false });
      await files.register(fastifyStatic, {
        root: pages,
        prefix: '/',
        index: ['index.html'],
        wildcard: false,
      });
      await files.register(fastifyStatic, {
        root: scripts,
        prefix: '/assets/',
        decorateReply: false,
        wildcard: false,
      });
      return files;
    },
    { cacheable: (path) => pagePaths.has(path) || ASSET_FILE.test(path) },
  );
  const canonical = options.publicUrl === undefined ? undefined : loopbackRedirect(options.publicUrl);
  const pageOptions = canonical === undefined ? HIDDEN : { ...HIDDEN, onRequest: canonical };
  for (const name of names) app.get(name, pageOptions, handler);
  app.get('/', pageOptions, handler);
  app.get('/assets/*', HIDDEN, handler);
  return true;
}

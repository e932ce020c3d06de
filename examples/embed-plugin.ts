// Gatehouse inside an app of your own. Installed (README, "Embedding the plugin"): 'gatehouse', 'gatehouse/fastify'.
import { pathToFileURL } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { gatehousePlugin, userAuthOf } from '../src/http/index.js';
import { createGatehouse, type Gatehouse, resolveConfig } from '../src/index.js';

/** Your app's own OAuth scope (pass it to createGatehouse), and the roles that may hold it. */
export const appScopes = { 'lookbook:read': { description: 'See the lookbook', roles: ['user'] } } as const;

/** Your app: Gatehouse's sign-in routes and guards, plus two routes of your own that it protects. */
export async function buildApp(gatehouse: Gatehouse): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(gatehousePlugin, { gatehouse });
  // By role: admins and super admins only (403 for others, 401 when not signed in).
  app.get('/reports', { preHandler: app.auth.require({ role: 'admin' }) }, async (request) => ({
    requestedBy: userAuthOf(request).user.email,
  }));
  // By scope: a token carrying lookbook:read (403 insufficient_scope otherwise).
  const lookbook = app.auth.require({ scopes: ['lookbook:read'] });
  app.get('/lookbook', { preHandler: lookbook }, async () => ({ looks: [] }));
  return app;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { config } = resolveConfig();
  const gatehouse = await createGatehouse(config, { scopes: appScopes });
  const app = await buildApp(gatehouse);
  app.addHook('onClose', () => gatehouse.close());
  await app.listen({ host: config.host, port: config.port });
}

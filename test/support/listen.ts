import type { FastifyInstance } from 'fastify';

/**
 * Starts `app` on an ephemeral port of the loopback interface (SSE and browser tests need a real
 * socket; everything else uses `app.inject`) and returns its base URL. Close the app to free it.
 */
export async function listenOnLoopback(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return `http://127.0.0.1:${address.port}`;
}

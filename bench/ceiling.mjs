// The ceiling: a bare Fastify app (no plugins, no hooks, no logger) answering GET /users/me with
// the body Gatehouse returns there (passed in BENCH_BODY), so a ratio to it is the whole server's
// cost, not only the guard's. Prints one JSON line with its URL, like bench/server.mjs.
//
// BENCH_HEADERS (a JSON array of [name, value] pairs) makes it the *headers ceiling*: the same
// app setting those headers too, one `reply.header` each, as Gatehouse's response-header hook does
// (run.mjs passes the security, Vary and Cache-Control headers of Gatehouse's own answer). What
// the bare ceiling and this one differ by is what sending those headers costs any Fastify app on
// this Node; what this one and Gatehouse differ by is the rest of Gatehouse.
//
// It pins nextTick's entry shape first, as `gatehouse serve` and bench/server.mjs do
// (src/lib/tick-object-shape.ts): without it a Node 20 process drops to V8's slow path for every
// nextTick after a few idle full collections, so a ceiling left idle between its rounds could
// turn slower mid-run and flatter every ratio to it. Not a plugin: the app itself stays bare.
import { pinTickObjectShape } from '../dist/src/lib/tick-object-shape.js';

pinTickObjectShape();
const { default: Fastify } = await import('fastify');

const body = process.env.BENCH_BODY;
if (body === undefined) throw new Error('BENCH_BODY (the JSON body of GET /users/me) is required');
/** @type {[string, string][]} */
const headers = JSON.parse(process.env.BENCH_HEADERS ?? '[]');
const app = Fastify({ logger: false });
// Serves the stored bytes as JSON: the same payload without a serializer in the way.
app.get('/users/me', (_request, reply) => {
  for (const [name, value] of headers) reply.header(name, value);
  reply.header('content-type', 'application/json; charset=utf-8').send(body);
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${app.server.address().port}` })}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));

// Diagnostic for src/lib/tick-object-shape.ts: a bare Fastify app (the ceiling's route and body),
// with and without `pinTickObjectShape()`, measured warm, then again after five full collections
// while idle (what an idle server's memory reducer, or `gatehouse serve`'s heap compaction after
// start-up, does). Prints, per phase, the server's CPU µs per request (/proc, all threads) and,
// when `perf` is present, the share of its samples in V8's slow path for nextTick's entry literal
// (`Runtime_DefineKeyedOwnPropertyInLiteral` and the map transitions under it; 0 on the fast path).
//
//   node bench/tick-shape.mjs            (BENCH_TICK_REQUESTS per phase, 20 000 by default)
//
// Server on cpu 0 and autocannon on cpu 1 when `taskset` is present, as in run.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

if (process.argv[2] === '--server') {
  // The server: started by the code below with --expose-gc; `pin` decides the one difference.
  const { pinTickObjectShape } = await import('../dist/src/lib/tick-object-shape.js');
  if (process.argv[3] === 'pin') pinTickObjectShape();
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  const body = '{"id":"00000000-0000-4000-8000-000000000000","email":"bench@example.com"}';
  app.get('/users/me', (_request, reply) => {
    reply.header('content-type', 'application/json; charset=utf-8').send(body);
  });
  // Answers first, then collects from a timer: no request (and no nextTick entry) is alive then.
  app.post('/idle-gc', (_request, reply) => {
    reply.send('ok');
    setTimeout(() => {
      for (let i = 0; i < 5; i += 1) globalThis.gc();
    }, 200);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${app.server.address().port}` })}\n`);
} else {
  const { default: autocannon } = await import('autocannon');
  const { threadCpu } = await import('./thread-cpu.mjs');
  const REQUESTS = Number(process.env.BENCH_TICK_REQUESTS ?? 20_000);
  const pinned = spawnSync('taskset', ['-V']).status === 0;
  const hasPerf = spawnSync('perf', ['--version']).status === 0;
  const slowPath = /DefineKeyedOwnPropertyInLiteral|MigrateToMap|FeedbackNexus::ic_state/;

  /** One phase: REQUESTS requests, the server's CPU per request, and perf's slow-path share. */
  async function phase(child, url) {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tick-'));
    const data = join(dir, 'perf.data');
    const perf = hasPerf
      ? spawn(
          'perf',
          ['record', '-q', '-e', 'cpu-clock', '-F', '2999', '-p', String(child.pid), '-o', data],
          {
            stdio: 'ignore',
          },
        )
      : undefined;
    if (perf !== undefined) await new Promise((resolve) => setTimeout(resolve, 300));
    const before = threadCpu(child.pid);
    const result = await autocannon({ url: `${url}/users/me`, connections: 32, amount: REQUESTS });
    const after = threadCpu(child.pid);
    let share = null;
    if (perf !== undefined) {
      await new Promise((resolve) => {
        perf.once('exit', resolve);
        perf.kill('SIGINT');
      });
      const lines = spawnSync('perf', ['script', '-i', data, '-F', 'ip,sym'], {
        encoding: 'utf8',
        maxBuffer: 1 << 30,
      })
        .stdout.split('\n')
        .filter(Boolean);
      share = +(lines.filter((line) => slowPath.test(line)).length / lines.length).toFixed(3);
    }
    rmSync(dir, { recursive: true, force: true });
    const us = after.main + after.others - before.main - before.others;
    return { cpu_us_per_request: +(us / result.requests.total).toFixed(1), slow_path_share: share };
  }

  for (const mode of ['unpinned', 'pin', 'unpinned', 'pin']) {
    const node = [process.execPath, '--expose-gc', 'bench/tick-shape.mjs', '--server', mode];
    const child = pinned
      ? spawn('taskset', ['-c', '0', ...node], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(node[0], node.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    const { url } = await new Promise((resolve) =>
      createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line))),
    );
    await autocannon({ url: `${url}/users/me`, connections: 32, amount: REQUESTS / 2 });
    const warm = await phase(child, url);
    await fetch(`${url}/idle-gc`, { method: 'POST' });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const afterIdleGc = await phase(child, url);
    console.log(JSON.stringify({ mode, warm, after_idle_gc: afterIdleGc }));
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
  }
}

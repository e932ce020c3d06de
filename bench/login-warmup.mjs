// How long a login server takes to reach its steady state: one server (bench/server.mjs, pinned to
// the server core, `npm start`'s Node flags) flooded with logins from its first second, in
// consecutive windows, printing for each the logins/s, the CPU per login by thread (main, libuv
// pool = hashing, the others: V8's compiler and GC threads) and hashing's share of it. A login runs
// each of its functions once, so V8 tiers the login's code up over thousands of logins: at 50-90
// logins/s that is tens of seconds, which is what `run.mjs`'s BENCH_LOGIN_WARMUP_SECONDS must cover.
//
//   node bench/login-warmup.mjs
//
// Settings: BENCH_WARMUP_WINDOWS (24), BENCH_WARMUP_WINDOW_SECONDS (5), BENCH_LOGIN_ACCOUNTS (500:
// production's per-account success limit, 60 per 15 minutes, must never be what is measured; the
// script stops at the first window with a non-2xx answer), BENCH_LOGIN_NODE_FLAGS,
// BENCH_SERVER_CPU (0) / BENCH_LOAD_CPU (1) with taskset.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { loginRequests } from './login-requests.mjs';
import { asLoadGenerator, onServerCore } from './pinning.mjs';
import { startNodeFlags } from './start-flags.mjs';
import { threadCpu } from './thread-cpu.mjs';

const WINDOWS = Number(process.env.BENCH_WARMUP_WINDOWS ?? 24);
const WINDOW_SECONDS = Number(process.env.BENCH_WARMUP_WINDOW_SECONDS ?? 5);
await asLoadGenerator(async () => {
  const node = [process.execPath, ...startNodeFlags(process.env.BENCH_LOGIN_NODE_FLAGS), 'bench/server.mjs'];
  const [command, args] = onServerCore(node);
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_LOGIN_ACCOUNTS: process.env.BENCH_LOGIN_ACCOUNTS ?? '500' },
  });
  const server = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`bench/server.mjs exited with ${code}`)));
  });
  const started = Date.now();
  let logins = 0;
  try {
    for (let window = 0; window < WINDOWS; window += 1) {
      const before = threadCpu(child.pid, server.poolThreads);
      const result = await autocannon({ ...loginRequests(server), duration: WINDOW_SECONDS });
      const after = threadCpu(child.pid, server.poolThreads);
      const n = result['2xx'];
      logins += n;
      const perLogin = (key) => (after[key] - before[key]) / 1000 / n;
      const main = perLogin('main');
      const hashing = perLogin('pool');
      const others = perLogin('others') - hashing;
      console.log(
        JSON.stringify({
          seconds: Math.round((Date.now() - started) / 1000),
          logins_so_far: logins,
          logins_per_s: +(n / WINDOW_SECONDS).toFixed(1),
          main_thread_cpu_ms: +main.toFixed(2),
          hash_threads_cpu_ms: +hashing.toFixed(2),
          other_threads_cpu_ms: +others.toFixed(2),
          hashing_share_in_situ: +(hashing / (main + hashing + others)).toFixed(3),
        }),
      );
      if (result.non2xx > 0) {
        console.warn(`${result.non2xx} answers were not 2xx: raise BENCH_LOGIN_ACCOUNTS`);
        break;
      }
    }
  } finally {
    child.kill('SIGTERM');
  }
});

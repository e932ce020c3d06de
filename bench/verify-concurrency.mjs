// Diagnostic: the CPU one argon2id verification costs when `C` (argv[2], 1 by default) run at once
// in this process, N in all after 5 of warm-up; run it pinned (`taskset -c 0 node
// bench/verify-concurrency.mjs 2`) to see what hashes sharing one core cost each other
// (bench/README.md, "Issue 10, eighth round"). Prints one JSON line: CPU and system CPU per
// verification, minor page faults per verification, and the process's RSS (MiB). The binding's
// allocator is mimalloc; its MIMALLOC_* options were tried and change nothing here (the README).
import { hash, verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../dist/src/passwords/password-hasher.js';

const N = 40;
const C = Number(process.argv[2] ?? 1);
const phc = await hash('correct horse battery', { ...ARGON2_PARAMS, algorithm: 2 });
for (let i = 0; i < 5; i += 1) await verify(phc, 'correct horse battery');
const r0 = process.resourceUsage();
const c0 = process.cpuUsage();
let left = N;
await Promise.all(
  Array.from({ length: C }, async () => {
    while (left-- > 0) await verify(phc, 'correct horse battery');
  }),
);
const c = process.cpuUsage(c0);
const r = process.resourceUsage();
console.log(
  JSON.stringify({
    concurrency: C,
    cpu_ms: +((c.user + c.system) / 1000 / N).toFixed(2),
    sys_ms: +(c.system / 1000 / N).toFixed(2),
    minflt: Math.round((r.minorPageFault - r0.minorPageFault) / N),
    rss: Math.round(process.memoryUsage().rss / 1048576),
  }),
);

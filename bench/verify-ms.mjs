// Prints the median time of one argon2id verification with Gatehouse's parameters, and the CPU
// time (all threads) one verification costs, as one JSON line. bench/run.mjs runs it pinned to
// the server core, so the login-rate formula uses the speed of the core the server gets, and the
// CPU figure is the "hashing" part of a login's CPU (a login's own CPU is measured in run.mjs).
import { hash, verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../dist/src/passwords/password-hasher.js';

const ROUNDS = 21;
const password = 'correct horse battery';
const phc = await hash(password, { ...ARGON2_PARAMS, algorithm: 2 });
const times = [];
const cpuBefore = process.cpuUsage();
for (let i = 0; i < ROUNDS; i += 1) {
  const start = process.hrtime.bigint();
  if (!(await verify(phc, password))) throw new Error('argon2 verify failed');
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
const cpu = process.cpuUsage(cpuBefore);
times.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    verify_ms: +times[Math.floor(ROUNDS / 2)].toFixed(2),
    verify_cpu_ms: +((cpu.user + cpu.system) / 1000 / ROUNDS).toFixed(2),
    verify_system_cpu_ms: +(cpu.system / 1000 / ROUNDS).toFixed(2),
  })}\n`,
);

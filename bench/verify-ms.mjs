// Prints the median time of one argon2id verification with Gatehouse's parameters, as one JSON
// line. bench/run.mjs runs it pinned to the server core, so the login-rate formula uses the speed
// of the core the server gets.
import { hash, verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../dist/src/passwords/password-hasher.js';

const password = 'correct horse battery';
const phc = await hash(password, { ...ARGON2_PARAMS, algorithm: 2 });
const times = [];
for (let i = 0; i < 21; i += 1) {
  const start = process.hrtime.bigint();
  if (!(await verify(phc, password))) throw new Error('argon2 verify failed');
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
times.sort((a, b) => a - b);
process.stdout.write(`${JSON.stringify({ verify_ms: +times[10].toFixed(2) })}\n`);

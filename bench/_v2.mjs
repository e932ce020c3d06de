import { hash, verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../dist/src/passwords/password-hasher.js';
const password = 'correct horse battery';
const phc = await hash(password, { ...ARGON2_PARAMS, algorithm: 2 });
for (let i = 0; i < 50; i++) await verify(phc, password);

// The stub of register.mjs: real hashing (accounts are created with real hashes), and a
// verification that accepts any password after one turn of the event loop, without hashing.
import * as argon2 from '@node-rs/argon2';

export const { hash, Algorithm, Version } = argon2;

export async function verify() {
  await new Promise((resolve) => setImmediate(resolve));
  return true;
}

import { randomFillSync } from 'node:crypto';

/**
 * Bytes drawn from the CSPRNG per refill. `crypto.randomBytes` and `randomFillSync` cost a fixed
 * ≈ 15 k instructions a call whatever the size (Node builds a crypto job object for each), so a
 * login's two 16- and 32-byte draws cost more in that set-up than in randomness; one 2 KiB fill
 * serves ≈ 40 logins (issue 10). Node's own `crypto.randomUUID` batches the same way (2 KiB).
 */
const POOL_BYTES = 2048;

/** Draws this large or larger bypass the pool: the set-up cost no longer dominates them. */
const DIRECT_BYTES = 256;

const pool = Buffer.allocUnsafe(POOL_BYTES);
// Everything before `next` has been handed out (or never filled): start empty, fill on first use.
let next = POOL_BYTES;

/**
 * Writes `length` bytes from the operating system's CSPRNG (`randomFillSync`, the source of
 * `randomBytes`) into `target` at `offset`, through a pooled batch. Each pooled byte is handed out
 * once: the pool's position moves past the bytes before they are copied out, and a draw that does
 * not fit in what is left refills the whole pool, dropping the remainder unused.
 */
export function fillRandom(target: Uint8Array, offset = 0, length = target.length - offset): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
    throw new RangeError('fillRandom: offset and length must be non-negative integers');
  if (offset + length > target.length) throw new RangeError('fillRandom: range exceeds the target');
  if (length >= DIRECT_BYTES) {
    randomFillSync(target, offset, length);
    return;
  }
  if (next + length > POOL_BYTES) {
    randomFillSync(pool);
    next = 0;
  }
  const start = next;
  next += length;
  pool.copy(target, offset, start, start + length);
}

/** `bytes` random bytes (see {@link fillRandom}), base64url-encoded without padding (RFC 4648 §5). */
export function randomBase64url(bytes: number): string {
  const buffer = Buffer.allocUnsafe(bytes);
  fillRandom(buffer);
  return buffer.toString('base64url');
}

// Which threads of this process are libuv's thread pool, the threads that run argon2 (through
// @node-rs/argon2's N-API async work, queued on the loop's pool like fs and WebCrypto jobs).
// Node 20's libuv (1.46) does not name its threads, so /proc cannot tell a pool thread from one of
// V8's; instead, an asynchronous fs call runs its syscall on a pool thread, and
// readlink('/proc/thread-self') then answers "<pid>/task/<tid>" of that very thread. Linux only.
import { readlink } from 'node:fs/promises';

/**
 * The thread ids of libuv's pool, found by fanning readlink('/proc/thread-self') out over the pool
 * until every one of its UV_THREADPOOL_SIZE threads (4 by default) has answered at least once.
 * The pool's threads are all created with its first job and live as long as the process, so the
 * answer holds for the server's lifetime. Throws when some thread never answered.
 */
export async function poolThreadIds() {
  const size = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const seen = new Set();
  // On one core the first pool thread to wake often drains a whole batch before the others run,
  // so a hundred batches sometimes missed one (seen in `npm run bench`): up to a thousand, with a
  // millisecond's pause every ten so sleeping threads get scheduled in between.
  for (let round = 0; round < 1000 && seen.size < size; round += 1) {
    if (round > 0 && round % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    const links = await Promise.all(Array.from({ length: 4 * size }, () => readlink('/proc/thread-self')));
    for (const link of links) seen.add(Number(link.slice(link.lastIndexOf('/') + 1)));
  }
  if (seen.size < size) throw new Error(`found ${seen.size} of ${size} libuv pool threads`);
  return [...seen].sort((a, b) => a - b);
}

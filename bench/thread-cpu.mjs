// CPU time and scheduling counts of a process, per thread, from /proc (Linux): what the bench
// scripts report besides req/s, because CPU time per request hardly changes with machine load
// while req/s does.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);

/**
 * utime + stime (µs) of every thread of `pid` (the main thread, tid = pid, and the others), and
 * counts: minor page faults and context switches (voluntary: the thread waited; involuntary: the
 * scheduler took the core away) summed over the threads. With `poolTids` (the server's libuv pool,
 * `pool-threads.mjs`), `pool` is those threads' share of `others`: the CPU that went to hashing.
 * `mainSystem` and `poolSystem` are the kernel's part (stime) of `main` and `pool`.
 */
export function threadCpu(pid, poolTids = []) {
  const pool = new Set(poolTids.map(String));
  const totals = {
    main: 0,
    mainSystem: 0,
    poolSystem: 0,
    others: 0,
    pool: 0,
    minorFaults: 0,
    voluntarySwitches: 0,
    involuntarySwitches: 0,
  };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat;
    let status;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    // Fields after the parenthesised command name: minflt is the 8th, utime and stime the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const us = (Number(fields[11]) + Number(fields[12])) * TICK_US;
    const systemUs = Number(fields[12]) * TICK_US;
    if (tid === String(pid)) {
      totals.main += us;
      totals.mainSystem += systemUs;
    } else totals.others += us;
    if (pool.has(tid)) {
      totals.pool += us;
      totals.poolSystem += systemUs;
    }
    totals.minorFaults += Number(fields[7]);
    totals.voluntarySwitches += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
    totals.involuntarySwitches += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return totals;
}

// The top functions of a callgrind dump by self instructions per request, shared by
// instructions.mjs (GET /users/me) and login-instructions.mjs (logins).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The TOP functions by self instructions per request, JIT-compiled code named from the perf map
 * that `--perf-basic-prof` wrote (callgrind itself only sees their addresses).
 */
export function printTop(file, pid, answered, top) {
  const map = readFileSync(`/tmp/perf-${pid}.map`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start, size, ...name] = line.split(' ');
      return {
        start: Number.parseInt(start, 16),
        end: Number.parseInt(start, 16) + Number.parseInt(size, 16),
        name: name.join(' '),
      };
    })
    .sort((a, b) => a.start - b.start);
  // V8 reuses the addresses of collected code: the map's last entry starting there is the live one.
  const latest = new Map(map.map((entry) => [entry.start, entry.name]));
  for (const line of readFileSync(`/tmp/perf-${pid}.map`, 'utf8').split('\n')) {
    const [start, , ...name] = line.split(' ');
    if (start) latest.set(Number.parseInt(start, 16), name.join(' '));
  }
  const nameOf = (address) => {
    if (latest.has(address)) return latest.get(address);
    let low = 0;
    let high = map.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const entry = map[middle];
      if (address < entry.start) high = middle - 1;
      else if (address >= entry.end) low = middle + 1;
      else return entry.name;
    }
    return `0x${address.toString(16)}`;
  };
  const out = spawnSync('callgrind_annotate', ['--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const totals = new Map();
  for (const line of out.stdout.split('\n')) {
    const match = /^\s*([\d,]+) \([\d. %]+\)\s+(.*)$/.exec(line) ?? /^\s*([\d,]+)\s+(\S.*)$/.exec(line);
    if (match === null) continue;
    const ir = Number(match[1].replaceAll(',', ''));
    let name = match[2].replace(/ \[.*\]$/, '');
    const address = /^\?\?\?:0x([0-9a-f]+)$/.exec(name);
    if (address !== null) name = nameOf(Number.parseInt(address[1], 16));
    // Frames that only enclose others (callgrind_annotate lists them with the whole thread's count).
    if (
      /PROGRAM TOTALS|below main|:main$|:clone$|start_thread|node::Start\(|NodeMainInstance::Run|SpinEventLoop|^0x1ab70$/.test(
        name,
      )
    )
      continue;
    totals.set(name, (totals.get(name) ?? 0) + ir);
  }
  const ranked = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, ir] of ranked) console.log(`${String(Math.round(ir / answered)).padStart(8)}  ${name}`);
}

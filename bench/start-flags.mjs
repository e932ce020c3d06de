// `npm start`'s command, read from package.json so the benchmarks run the server as it is
// deployed and never drift from it: `--max-semi-space-size=2` makes V8 scavenge more often, and
// that GC work is part of a request's CPU in production.
import { readFileSync } from 'node:fs';

/** `npm start`'s command split into words, without its leading `exec`. */
function startCommand() {
  return JSON.parse(readFileSync('package.json', 'utf8'))
    .scripts.start.replace(/^exec\s+/, '')
    .split(/\s+/);
}

/**
 * Node's flags in `npm start`, or the words of `override` when it is set (e.g. "" for Node's
 * defaults): what a benchmark's `BENCH_…_NODE_FLAGS` variable replaces them by, to compare.
 */
export function startNodeFlags(override) {
  if (override !== undefined) return override.split(/\s+/).filter(Boolean);
  return startCommand()
    .slice(1)
    .filter((arg) => arg.startsWith('--'));
}

/** `npm start`'s script and its arguments (the words after `node` that are not Node flags). */
export function startScript() {
  const start = startCommand();
  if (start[0] !== 'node') throw new Error(`npm start does not run node: ${start.join(' ')}`);
  return start.slice(1).filter((arg) => !arg.startsWith('--'));
}

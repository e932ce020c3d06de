// Re-emits the server's JavaScript in dist/src without comments and in ASCII, after tsc has written
// it (and the .d.ts files, which keep their TSDoc for editors and embedders).
//
// Why (issue 10, footprint, bench/README.md "seventh round"): V8 keeps every module's source text in
// the heap for the life of the process (lazy compilation and Function.prototype.toString need it).
// Our sources are mostly comments, and one character outside Latin-1 (a "—" or "≈" in a comment)
// makes V8 store the whole file as UTF-16, two bytes a character: 1.9 MiB of heap for 1.25 M
// characters. Without comments and with non-ASCII characters escaped (\uXXXX, the same strings) it
// is ≈ 1 MiB, in every running server.
//
// Each file is transpiled again from its .ts source (tsc's own transpiler, `removeComments`; with
// `verbatimModuleSyntax` a file's output depends on that file alone), then printed in ASCII by
// esbuild, which reads the first step's inline source map and writes the .js.map, so stack traces
// still map to the .ts lines (`node --enable-source-maps`).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { transformSync } from 'esbuild';
import ts from 'typescript';

const OUT = 'dist/src';
const SOURCE = 'src';

/** The compiler options that shape the emitted JavaScript, read from tsconfig.build.json. */
function emitOptions() {
  const { config, error } = ts.readConfigFile('tsconfig.build.json', ts.sys.readFile);
  if (error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const { options, errors } = ts.parseJsonConfigFileContent(config, ts.sys, '.');
  if (errors.length > 0) throw new Error(ts.flattenDiagnosticMessageText(errors[0].messageText, '\n'));
  if (!options.verbatimModuleSyntax) {
    throw new Error('compact-dist needs verbatimModuleSyntax: without it a file cannot be transpiled alone');
  }
  return {
    ...options,
    // package.json says "type": "module": every file is an ES module (tsc's NodeNext emit for it).
    module: ts.ModuleKind.ESNext,
    removeComments: true,
    sourceMap: false,
    declaration: false,
    inlineSourceMap: true,
    inlineSources: false,
  };
}

function* javaScriptFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* javaScriptFiles(path);
    else if (entry.name.endsWith('.js')) yield path;
  }
}

const options = emitOptions();
let before = 0;
let after = 0;
let files = 0;
for (const output of javaScriptFiles(OUT)) {
  const source = join(SOURCE, relative(OUT, output)).replace(/\.js$/, '.ts');
  let text;
  try {
    text = readFileSync(source, 'utf8');
  } catch {
    continue; // not compiled from a .ts of src/ (nothing of ours today): left as tsc wrote it
  }
  const { outputText } = ts.transpileModule(text, { compilerOptions: options, fileName: source });
  const printed = transformSync(outputText, {
    loader: 'js',
    format: 'esm',
    charset: 'ascii',
    legalComments: 'none',
    sourcemap: 'external',
    sourcefile: source,
  });
  const map = JSON.parse(printed.map);
  map.file = basename(output);
  map.sources = [relative(dirname(output), source)];
  // A heap string is one byte a character only when all of it is Latin-1; ASCII is the check.
  if (/\P{ASCII}/u.test(printed.code)) throw new Error(`${output}: non-ASCII left after printing`);
  before += readFileSync(output, 'utf8').length;
  after += printed.code.length;
  files += 1;
  writeFileSync(output, `${printed.code}//# sourceMappingURL=${basename(output)}.map\n`);
  writeFileSync(`${output}.map`, JSON.stringify(map));
}
console.log(
  `compact-dist: ${files} files, ${Math.round(before / 1024)} -> ${Math.round(after / 1024)} K characters`,
);

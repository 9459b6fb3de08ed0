// `npm run build`: compiles src/ to dist/ incrementally, then copies the non-TypeScript assets.
//
// - `tsc -b` with `incremental` (tsconfig.build.json keeps its state in dist/.tsbuildinfo):
//   with nothing changed it only compares hashes and emits nothing (about 0.5 s instead of a full
//   compile), so `npm start` and `npm run worker:demo` start from the built output at once.
//   tsc trusts that state even when an output file was deleted since, so a src/**/*.ts whose
//   dist/**/*.js is gone throws the state away first (a full build; deleting dist/ does the same).
// - Every `assets/` folder under src/ is copied to the same path under dist/
//   (src/x/assets/page.html → dist/x/assets/page.html) so files the compiled code reads at run
//   time ship in the package (`files` has dist). A file is copied only when dist has no copy or an
//   older one. Today no such folder exists; this is the hook for the first one.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');

/** Every file under `dir`, recursively; `folders` also yields the folders. */
function* walk(dir, folders = false) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (folders) yield path;
      yield* walk(path, folders);
    } else if (entry.isFile() && !folders) yield path;
  }
}

const exists = (path) => statSync(path, { throwIfNoEntry: false }) !== undefined;

const outputMissing = [...walk(src)].some(
  (file) =>
    file.endsWith('.ts') &&
    !file.endsWith('.d.ts') &&
    !exists(join(dist, relative(src, file)).replace(/\.ts$/, '.js')),
);
if (outputMissing) rmSync(join(dist, '.tsbuildinfo'), { force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

let copied = 0;
for (const folder of walk(src, true)) {
  if (basename(folder) !== 'assets') continue;
  for (const file of walk(folder)) {
    const target = join(dist, relative(src, file));
    if ((statSync(target, { throwIfNoEntry: false })?.mtimeMs ?? -1) >= statSync(file).mtimeMs)
      continue;
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
    copied++;
  }
}
if (copied > 0) process.stdout.write(`build: copied ${copied} file(s) from src/**/assets\n`);

// `npm run package:check` (the `package` step of `npm test`): packs the built package once, the
// way `npm publish` would, and lints the tarball with publint (package.json fields against the
// files really in it) and @arethetypeswrong/cli (what every TypeScript module resolution —
// node10, node16 from CJS and ESM, bundler — finds for `gen-gateway` and `gen-gateway/worker`).
// It also checks the tarball's file list: the compiled entries, bin and protocol docs are in, the
// build's incremental state (dist/.tsbuildinfo) and the sources are out.
//
// attw's `cjs-resolves-to-esm` rule is off: the package is ESM only on purpose, and on the Node
// versions `engines` allows (^20.19 || ^22.13 || >=24) `require("gen-gateway")` loads it anyway
// (require(esm)), which the `default` export condition makes possible.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const REQUIRED = [
  'package.json',
  'README.md',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/worker/index.js',
  'dist/worker/index.d.ts',
  'dist/cli/gen-gateway.js',
  'dist/demo/worker.js',
  'protocol/gen_api.md',
  'protocol/nats.md',
];
const FORBIDDEN = [/\.tsbuildinfo$/, /^src\//, /^test\//, /^node_modules\//];

/** Runs a command, echoing its output; exits on failure. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', ...options });
  if (result.stdout && !options.quiet) process.stdout.write(result.stdout);
  if (result.stderr) process.stderr.write(result.stderr);
  if (result.status !== 0) {
    process.stderr.write(`package: \`${command} ${args.join(' ')}\` failed\n`);
    process.exit(result.status ?? 1);
  }
  return result.stdout;
}

const out = mkdtempSync(join(tmpdir(), 'gen-gateway-pack-'));
try {
  run(npm, ['run', '--silent', 'build']);
  // --ignore-scripts: `prepare` would build again and print into the JSON on stdout.
  const [pack] = JSON.parse(
    run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', out], { quiet: true }),
  );
  const files = pack.files.map((file) => file.path);
  const missing = REQUIRED.filter((path) => !files.includes(path));
  const unwanted = files.filter((path) => FORBIDDEN.some((pattern) => pattern.test(path)));
  if (missing.length > 0 || unwanted.length > 0) {
    process.stderr.write(
      `package: the tarball lacks [${missing.join(', ')}] / holds [${unwanted.join(', ')}]\n`,
    );
    process.exit(1);
  }
  process.stdout.write(
    `${pack.filename}: ${pack.entryCount} files, ${(pack.size / 1024).toFixed(0)} kB packed, ` +
      `${(pack.unpackedSize / 1024).toFixed(0)} kB unpacked\n`,
  );
  const tarball = join(out, pack.filename);
  run(npm, ['exec', '--', 'publint', 'run', tarball, '--strict']);
  run(npm, ['exec', '--', 'attw', tarball, '--ignore-rules', 'cjs-resolves-to-esm', '--no-color']);
} finally {
  rmSync(out, { recursive: true, force: true });
}

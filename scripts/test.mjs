// `npm test`: the type check, the package check (pack, then publint and arethetypeswrong on the
// tarball), every test file (vitest), then the benchmark smoke. Each step runs even when an
// earlier one failed, so one run reports everything that is wrong; the exit code is the first
// failing step's (0 when all pass). Extra arguments go to vitest (`npm test -- FILE`); with a
// file filter the package check and the benchmark smoke are skipped.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const vitestArgs = process.argv.slice(2);

const steps = [['typecheck', npm, ['run', '--silent', 'typecheck']]];
if (vitestArgs.length === 0) steps.push(['package', npm, ['run', '--silent', 'package:check']]);
steps.push(['vitest', npm, ['exec', '--', 'vitest', 'run', ...vitestArgs]]);
if (vitestArgs.length === 0) steps.push(['bench:smoke', npm, ['run', '--silent', 'bench:smoke']]);

const results = [];
for (const [name, command, args] of steps) {
  process.stdout.write(`\n▶ ${name}\n`);
  const started = performance.now();
  const run = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  const status = run.status ?? 1;
  results.push({ name, status, seconds: (performance.now() - started) / 1000 });
}

process.stdout.write('\n');
for (const { name, status, seconds } of results) {
  const verdict = status === 0 ? 'ok    ' : `FAILED (exit ${status})`;
  process.stdout.write(`  ${verdict}  ${name.padEnd(12)} ${seconds.toFixed(1)} s\n`);
}
const failed = results.find((result) => result.status !== 0);
process.exit(failed ? failed.status : 0);

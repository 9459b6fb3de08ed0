// `npm test`: the type check, the package check (pack, then publint and arethetypeswrong on the
// tarball), every test file (vitest), then the benchmark smoke. Each step runs even when an
// earlier one failed, so one run reports everything that is wrong; the exit code is the first
// failing step's (0 when all pass). Extra arguments go to vitest (`npm test -- FILE`); with a
// file filter the package check and the benchmark smoke are skipped.
//
// The closing summary names every failed test with the first line of its error: CI keeps only
// the end of the output, and the benchmark smoke prints after vitest's own list of failures.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const vitestArgs = process.argv.slice(2);
const reportDir = mkdtempSync(join(tmpdir(), 'gen-gateway-test-'));
const reportFile = join(reportDir, 'vitest.json');
// A --reporter of the caller's replaces ours (and the failure list with it).
const reporterArgs = vitestArgs.some((arg) => arg.startsWith('--reporter'))
  ? []
  : ['--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`];

const steps = [['typecheck', npm, ['run', '--silent', 'typecheck']]];
if (vitestArgs.length === 0) steps.push(['package', npm, ['run', '--silent', 'package:check']]);
steps.push(['vitest', npm, ['exec', '--', 'vitest', 'run', ...reporterArgs, ...vitestArgs]]);
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
for (const line of failedTests(reportFile)) process.stdout.write(`${line}\n`);
rmSync(reportDir, { recursive: true, force: true });
const failed = results.find((result) => result.status !== 0);
process.exit(failed ? failed.status : 0);

/** One line per failed test (and per file that failed outside its tests), from vitest's JSON report. */
function failedTests(file) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return []; // no report: vitest did not get as far as writing it, and its own output says why
  }
  const lines = [];
  const firstLine = (text) =>
    String(text ?? '')
      .split('\n')
      .find((line) => line.trim() !== '') ?? '';
  for (const fileResult of report.testResults ?? []) {
    const name = relative(root, fileResult.name);
    const failures = (fileResult.assertionResults ?? []).filter((test) => test.status === 'failed');
    for (const test of failures) {
      lines.push(`  ✗ ${name} › ${test.fullName}: ${firstLine(test.failureMessages?.[0])}`);
    }
    if (failures.length === 0 && fileResult.status === 'failed') {
      lines.push(`  ✗ ${name}: ${firstLine(fileResult.message)}`);
    }
  }
  return lines.length > 0 ? ['', 'Failed tests:', ...lines] : [];
}

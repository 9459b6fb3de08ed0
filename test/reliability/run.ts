/**
 * Reliability runner: `npm run reliability [-- --no-write]`.
 *
 * Runs the fault tests (issue 12, "Tests and figures") one file after the other, each file's
 * tests in turn (they measure: 200 clients on a 2-core machine must not share it with another
 * 200), with RELIABILITY_OUT set so that each test appends its figure line (test/support/
 * figures.ts), then rewrites RELIABILITY.md at the repository root: the machine, and per
 * scenario its figures and the goals they are checked against, pass or fail.
 *
 * The tests enforce the goals themselves; the report shows what they measured. Exit code 0 when
 * every test passed, every goal was met and every scenario reported; 1 otherwise (the report is
 * written either way, so a failure shows in it); 2 on bad arguments.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeEnvironment, type Environment } from '../bench/lib/environment.js';
import { NATS_SERVER_VERSION } from '../support/nats.js';
import { RELIABILITY_OUT_ENV, type FigureLine, type FigureValue } from '../support/figures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUTPUT = join(ROOT, 'RELIABILITY.md');

/** One vitest run: test files. */
interface Run {
  readonly files: readonly string[];
}

const RUNS: readonly Run[] = [
  { files: ['test/genapi/fault-isolation.test.ts'] },
  { files: ['test/genapi/fault-gateway-nats.test.ts'] },
  { files: ['test/fuzz/json-bomb.test.ts'] },
];

/** The figures the runs must produce, in the report's order (a missing one is a failure). */
const EXPECTED: readonly string[] = [
  'worker-sigstop',
  'worker-sigkill',
  'only-worker-sigstop',
  'worker-nats-server-sigkill',
  'nats-restart',
  'gateway-nats-server-sigkill',
  'json-bomb',
];

/** A vitest test's result, from its JSON reporter. */
interface TestResult {
  readonly name: string;
  readonly file: string;
  readonly status: string;
}

interface VitestJson {
  testResults: {
    name: string;
    assertionResults: { ancestorTitles: string[]; title: string; status: string }[];
  }[];
}

function parseArgs(argv: readonly string[]): { write: boolean } {
  let write = true;
  for (const arg of argv) {
    if (arg === '--no-write') write = false;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: npm run reliability -- [--no-write]\n');
      process.exit(0);
    } else {
      process.stderr.write(`unknown argument ${arg}\n`);
      process.exit(2);
    }
  }
  return { write };
}

/** Runs one vitest invocation; returns its tests' results. */
function runVitest(run: Run, dir: string, index: number, out: string): TestResult[] {
  const json = join(dir, `vitest-${index}.json`);
  const args = [
    'vitest',
    'run',
    ...run.files,
    '--no-file-parallelism',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${json}`,
  ];
  process.stderr.write(`\n▶ npx ${args.join(' ')}\n`);
  spawnSync('npx', args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, [RELIABILITY_OUT_ENV]: out },
  });
  if (!existsSync(json))
    return run.files.map((file) => ({ name: '(the run)', file, status: 'did not run' }));
  const report = JSON.parse(readFileSync(json, 'utf8')) as VitestJson;
  return report.testResults.flatMap((file) =>
    file.assertionResults
      .filter((test) => test.status !== 'skipped' && test.status !== 'pending')
      .map((test) => ({
        name: [...test.ancestorTitles, test.title].join(' > '),
        file: file.name.startsWith(ROOT) ? file.name.slice(ROOT.length) : file.name,
        status: test.status,
      })),
  );
}

function readFigures(out: string): FigureLine[] {
  if (!existsSync(out)) return [];
  return readFileSync(out, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as FigureLine);
}

function cell(value: FigureValue): string {
  if (Array.isArray(value)) return value.length === 0 ? '—' : value.join('; ');
  if (typeof value === 'number') return value.toLocaleString('en-US');
  return String(value).replaceAll('|', '\\|');
}

function bound(goal: FigureLine['goals'][number]): string {
  const unit = goal.unit ? ` ${goal.unit}` : '';
  return `${goal.strict ? '<' : '≤'} ${goal.limit.toLocaleString('en-US')}${unit}`;
}

function markdown(
  env: Environment,
  figures: readonly FigureLine[],
  tests: readonly TestResult[],
): string {
  const byName = new Map(figures.map((figure) => [figure.figure, figure]));
  const passed = tests.filter((t) => t.status === 'passed').length;
  const goals = figures.flatMap((figure) => figure.goals);
  const met = goals.filter((goal) => goal.pass).length;
  const missing = EXPECTED.filter((name) => !byName.has(name));
  const lines: string[] = [
    '# Reliability',
    '',
    'Generated by `npm run reliability` (test/reliability/run.ts). Do not edit by hand: run it again.',
    'It runs the fault tests with real processes — nats-server, SDK worker processes, a gateway, up',
    'to 200 WebSocket clients calling a function that works 150 ms, in a loop with a pause of about',
    '400 ms — one at a time, and collects the figures each test records before it asserts on them',
    "(test/support/figures.ts). The goals are issue 12's: the errors of a fault are at most the",
    'calls in flight on the sick part (each fails once, clearly, and is not retried elsewhere),',
    "the service is whole again within 3 s, a bystander's round trip stays under 1 s. The tests",
    'enforce them: a **FAIL** here is a failed test. Absolute times depend on the machine and its',
    'load.',
    '',
    'How the figures are counted: *in flight on the sick worker* are the calls the gateway handed',
    'to that worker (a record of its NATS bus calls) that were unanswered at some time during the',
    'fault, *lost* those it never answered (the errors must be exactly these, each tried once);',
    '*in flight on the gateway* are the calls the clients had sent and not yet seen answered when',
    "the gateway's NATS went. Recovery runs from the end of the fault (SIGCONT, a new worker ready,",
    "NATS back, the server's death) to the service answering again and failing no more.",
    '',
    'Last run:',
    '',
    '| | |',
    '|---|---|',
    `| Date | ${env.date} |`,
    `| Command | \`${env.command}\` |`,
    `| Node | ${env.node} (V8 ${env.v8}) |`,
    `| nats-server | ${NATS_SERVER_VERSION} |`,
    `| CPU | ${env.cpu}, ${env.cores} cores |`,
    `| OS | ${env.os}, ${env.memory} RAM |`,
    `| Load average at start (1 / 5 / 15 min) | ${env.load} |`,
    `| Commit | ${env.commit} |`,
    `| Tests | ${passed} of ${tests.length} passed |`,
    `| Goals | ${met} of ${goals.length} met${missing.length > 0 ? `; not measured: ${missing.join(', ')}` : ''} |`,
    '',
    '## Summary',
    '',
    '| Scenario | Goal | Value | Bound | Result |',
    '|---|---|---:|---:|---|',
  ];
  for (const name of EXPECTED) {
    const figure = byName.get(name);
    if (!figure) {
      lines.push(`| \`${name}\` | — | — | — | **FAIL** (not measured) |`);
      continue;
    }
    for (const goal of figure.goals)
      lines.push(
        `| \`${name}\` | ${goal.goal} | ${cell(goal.value)}${goal.unit ? ` ${goal.unit}` : ''} | ${bound(goal)} | ${goal.pass ? 'pass' : '**FAIL**'} |`,
      );
  }
  for (const name of EXPECTED) {
    const figure = byName.get(name);
    lines.push('');
    if (!figure) {
      lines.push(`## \`${name}\``, '', 'Not measured: its test failed before recording it.');
      continue;
    }
    const test = tests.find((t) => t.name === figure.test);
    lines.push(
      `## ${figure.title} (\`${name}\`)`,
      '',
      `Test: ${test ? `\`${test.file}\`` : ''} “${figure.test}” — ${test?.status ?? 'unknown'}.`,
      '',
      '| Figure | Value |',
      '|---|---:|',
      ...Object.entries(figure.figures).map(([key, value]) => `| ${key} | ${cell(value)} |`),
    );
    if (figure.goals.length > 0) {
      lines.push('', '| Goal | Value | Bound | Result |', '|---|---:|---:|---|');
      for (const goal of figure.goals)
        lines.push(
          `| ${goal.goal} | ${cell(goal.value)}${goal.unit ? ` ${goal.unit}` : ''} | ${bound(goal)} | ${goal.pass ? 'pass' : '**FAIL**'} |`,
        );
    }
  }
  const failedTests = tests.filter((t) => t.status !== 'passed');
  if (failedTests.length > 0) {
    lines.push('', '## Failed tests', '');
    for (const t of failedTests) lines.push(`- \`${t.file}\` “${t.name}”: ${t.status}`);
  }
  return `${lines.join('\n')}\n`;
}

function main(): void {
  const { write } = parseArgs(process.argv.slice(2));
  const env = {
    ...describeEnvironment(ROOT, []),
    command: ['npm run reliability', ...process.argv.slice(2)].join(' '),
  };
  const dir = mkdtempSync(join(tmpdir(), 'gen-gateway-reliability-'));
  const out = join(dir, 'figures.jsonl');
  try {
    const tests = RUNS.flatMap((run, i) => runVitest(run, dir, i, out));
    const figures = readFigures(out);
    const report = markdown(env, figures, tests);
    if (write) {
      writeFileSync(OUTPUT, report);
      process.stderr.write(`\nwrote ${OUTPUT}\n`);
    } else process.stdout.write(report);
    const ok =
      tests.length > 0 &&
      tests.every((t) => t.status === 'passed') &&
      EXPECTED.every((name) => figures.some((f) => f.figure === name)) &&
      figures.every((f) => f.goals.every((goal) => goal.pass));
    process.stderr.write(ok ? 'all goals met\n' : 'FAILED: see the report\n');
    process.exitCode = ok ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();

/**
 * Benchmark runner: `npm run bench [-- [options] [suite ...]]`.
 *
 * Runs the named suites (default: all) from test/bench/suites/*.ts — each exports `suite`
 * (or a default export) satisfying `Suite` — one after the other in this process, prints a
 * summary, and rewrites BENCHMARKS.md at the repository root (the sections of suites not run
 * are kept). Goals are reported, never enforced: the exit code is 0 even when goals are missed;
 * it is 1 only when a suite could not run (threw), 2 on bad arguments.
 *
 * Options:
 *   --json      also print the results as JSON on stdout (progress goes to stderr)
 *   --quick     short runs to check the suites themselves (implies --no-write)
 *   --no-write  do not touch BENCHMARKS.md
 *   --list      list the suites and exit
 *   --check     exit 1 when a suite failed or reported a metric that is not a finite number
 *               (CI smoke with --quick: the scenarios run and produce numbers; speed not judged)
 *   --no-build  run the gateway and worker processes from src/ through tsx instead of building
 *               dist/ first (quicker to iterate; tsx's transform costs CPU in the hot path).
 *               The smoke (`npm run bench:smoke`) uses it: it judges no speed, and `npm test`
 *               has type-checked the sources already; a build costs it 10–30 s.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeEnvironment } from './lib/environment.js';
import { benchmarksMarkdown, consoleSummary, resolveRatios } from './lib/report.js';
import type { BenchContext, Suite, SuiteResult } from './types.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SUITES_DIR = fileURLToPath(new URL('./suites', import.meta.url));
const OUTPUT = join(ROOT, 'BENCHMARKS.md');
const CLEANUP_TIMEOUT_MS = 15_000;

interface Args {
  suites: string[];
  json: boolean;
  quick: boolean;
  write: boolean;
  list: boolean;
  check: boolean;
  build: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    suites: [],
    json: false,
    quick: false,
    write: true,
    list: false,
    check: false,
    build: true,
  };
  for (const arg of argv) {
    if (arg === '--json') args.json = true;
    else if (arg === '--quick') {
      args.quick = true;
      args.write = false;
    } else if (arg === '--no-write') args.write = false;
    else if (arg === '--list') args.list = true;
    else if (arg === '--check') args.check = true;
    else if (arg === '--no-build') args.build = false;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(
        'usage: npm run bench -- [--json] [--quick] [--no-write] [--list] [--check] [--no-build] [suite ...]\n',
      );
      process.exit(0);
    } else if (arg.startsWith('-')) {
      process.stderr.write(`unknown option ${arg}\n`);
      process.exit(2);
    } else args.suites.push(arg);
  }
  return args;
}

function isSuite(value: unknown): value is Suite {
  const suite = value as Partial<Suite> | null;
  return (
    typeof suite === 'object' &&
    suite !== null &&
    typeof suite.name === 'string' &&
    typeof suite.title === 'string' &&
    typeof suite.run === 'function'
  );
}

/** Every suite file, in file-name order. */
async function loadSuites(): Promise<Suite[]> {
  const files = readdirSync(SUITES_DIR)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .sort();
  const suites: Suite[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(SUITES_DIR, file)).href)) as {
      suite?: unknown;
      default?: unknown;
    };
    const suite = module.suite ?? module.default;
    if (!isSuite(suite))
      throw new Error(`test/bench/suites/${file} exports no suite ({ name, title, run })`);
    if (suites.some((other) => other.name === suite.name))
      throw new Error(`two suites are named "${suite.name}"`);
    if (suite.name !== basename(file, '.ts'))
      process.stderr.write(`note: suite "${suite.name}" lives in ${file}\n`);
    suites.push(suite);
  }
  return suites;
}

const started = performance.now();
function log(message: string): void {
  process.stderr.write(
    `[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`,
  );
}

/** Cleanups of the suite that is running (also run on SIGINT / SIGTERM). */
let pendingCleanups: (() => unknown)[] = [];
/** Cleanups of what lives for the whole run (a quick run's shared fleet). */
let endCleanups: (() => unknown)[] = [];

/** The running suite's cleanups; with `end`, then the run's (after the last suite, on a signal). */
async function runCleanups(end: boolean): Promise<void> {
  const cleanups = [...pendingCleanups.reverse(), ...(end ? endCleanups.reverse() : [])];
  pendingCleanups = [];
  if (end) endCleanups = [];
  for (const cleanup of cleanups) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(cleanup),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`cleanup took over ${CLEANUP_TIMEOUT_MS} ms`)),
            CLEANUP_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (err) {
      log(`cleanup failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

async function runSuite(suite: Suite, quick: boolean): Promise<SuiteResult> {
  const context: BenchContext = {
    quick,
    log: (message) => log(`${suite.name}: ${message}`),
    defer: (cleanup) => void pendingCleanups.push(cleanup),
    deferToEnd: (cleanup) => void endCleanups.push(cleanup),
  };
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  log(`${suite.name}: start`);
  try {
    const output = await suite.run(context);
    resolveRatios(output.metrics);
    return {
      name: suite.name,
      title: suite.title,
      startedAt,
      durationMs: performance.now() - t0,
      metrics: output.metrics,
      notes: output.notes ?? [],
      environment: output.environment ?? {},
    };
  } catch (err) {
    log(`${suite.name}: FAILED: ${(err as Error).stack ?? String(err)}`);
    return {
      name: suite.name,
      title: suite.title,
      startedAt,
      durationMs: performance.now() - t0,
      metrics: [],
      notes: [],
      environment: {},
      error: (err as Error).message,
    };
  } finally {
    await runCleanups(false);
    log(`${suite.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const all = await loadSuites();
  if (args.list) {
    for (const suite of all) process.stdout.write(`${suite.name}\t${suite.title}\n`);
    return 0;
  }
  const unknown = args.suites.filter((name) => !all.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown suite(s): ${unknown.join(', ')}; known: ${all.map((suite) => suite.name).join(', ')}\n`,
    );
    return 2;
  }
  const selected =
    args.suites.length === 0 ? all : all.filter((suite) => args.suites.includes(suite.name));
  if (args.build) {
    // The gateway and worker processes run the compiled product, as `npm start` does.
    log('building dist/ (npm run build)');
    execFileSync('npm', ['run', '--silent', 'build'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    process.env.BENCH_BUILT = '1';
  }
  const environment = describeEnvironment(ROOT, argv);
  const stop = (signal: string) => {
    log(`${signal}: cleaning up`);
    const exit = () => process.exit(130);
    runCleanups(true).then(exit, exit);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  const results: SuiteResult[] = [];
  for (const suite of selected) results.push(await runSuite(suite, args.quick));
  await runCleanups(true);

  // The summary goes to stdout, unless stdout carries the JSON.
  (args.json ? process.stderr : process.stdout).write(`${consoleSummary(results)}\n\n`);
  if (args.write) {
    const previous = existsSync(OUTPUT) ? readFileSync(OUTPUT, 'utf8') : '';
    writeFileSync(
      OUTPUT,
      benchmarksMarkdown(
        previous,
        results,
        environment,
        all.map((suite) => suite.name),
      ),
    );
    log(`wrote ${OUTPUT}`);
  } else log('BENCHMARKS.md not written (--no-write or --quick)');
  if (args.json)
    process.stdout.write(
      `${JSON.stringify({ environment, quick: args.quick, suites: results }, null, 2)}\n`,
    );
  if (args.check) {
    const broken = results.flatMap((result) => [
      ...(result.error !== undefined ? [`${result.name}: failed: ${result.error}`] : []),
      ...(result.error === undefined && result.metrics.length === 0
        ? [`${result.name}: no metrics`]
        : []),
      ...result.metrics
        .filter((metric) => !Number.isFinite(metric.value))
        .map((metric) => `${result.name}: ${metric.name} = ${metric.value}`),
    ]);
    for (const line of broken) log(`check: ${line}`);
    if (broken.length > 0) return 1;
    log('check: every suite ran and every metric is a number');
  }
  return results.some((result) => result.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Suites close what they open; a stray handle must not keep the run alive.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

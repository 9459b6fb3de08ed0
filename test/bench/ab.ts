/**
 * Before/after of an optimisation: `npm run bench:ab -- [options] <rev> [<rev> ...]`.
 *
 * For each revision (a commit, or `A..B` for a range) the product is checked out twice into
 * temporary git worktrees (the commit's parent and the commit, or A and B), built, and measured
 * with this checkout's harness, the two variants alternating round by round so that drift on the
 * machine hits both alike. Each round starts a fresh fleet (nats-server, 2 bench workers, the
 * gateway, 2 generators) on the variant's dist/ and measures:
 *  - gateway and worker CPU per request: open-loop sync requests (200 sockets, 128 B args) at a
 *    fixed rate, CPU from /proc over the window;
 *  - gateway and worker allocation per request: V8 allocation sampling (every 1 KiB, including
 *    objects the GC collected) over a second window, bytes ÷ requests;
 *  - gateway heap per idle joined connection: N sockets joined to gen_api, heap after a full GC
 *    minus the empty process's, ÷ N.
 * The result (medians over rounds) is printed and, unless --no-write, recorded in BENCHMARKS.md's
 * tuning log (one row per revision; a revision measured again replaces its row).
 *
 * Options: --rounds N (default 3), --rate R requests/s (default 3000), --seconds S per CPU
 * window (default 6), --sockets N idle sockets for the heap figure (default 5000), --no-write.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cpuMs } from './lib/proc.js';
import { Fleet, split } from './lib/fleet.js';
import { productRoot } from './lib/product.js';
import { median } from './lib/stats.js';
import { formatNumber, withTuningRows } from './lib/report.js';
import type { BenchContext } from './types.js';

export interface Options {
  revisions: string[];
  rounds: number;
  rate: number;
  seconds: number;
  sockets: number;
  write: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const options: Options = {
    revisions: [],
    rounds: 3,
    rate: 3000,
    seconds: 6,
    sockets: 5000,
    write: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = Number(argv[++i]);
      if (!Number.isFinite(next) || next <= 0) throw new Error(`${arg} needs a positive number`);
      return next;
    };
    if (arg === '--rounds') options.rounds = value();
    else if (arg === '--rate') options.rate = value();
    else if (arg === '--seconds') options.seconds = value();
    else if (arg === '--sockets') options.sockets = value();
    else if (arg === '--no-write') options.write = false;
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else options.revisions.push(arg);
  }
  if (options.revisions.length === 0)
    throw new Error(
      'usage: npm run bench:ab -- [--rounds N] [--rate R] [--seconds S] [--sockets N] [--no-write] <rev | A..B> ...',
    );
  return options;
}

const git = (...args: string[]): string =>
  execFileSync('git', args, { cwd: productRoot, encoding: 'utf8' }).trim();

function log(message: string): void {
  process.stderr.write(`[ab] ${message}\n`);
}

/** A built checkout of `sha` in a temporary worktree. */
function checkout(sha: string, cleanups: (() => void)[]): string {
  const dir = mkdtempSync(join(tmpdir(), `gg-ab-${sha.slice(0, 8)}-`));
  git('worktree', 'add', '--detach', '--force', dir, sha);
  cleanups.push(() => {
    try {
      git('worktree', 'remove', '--force', dir);
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  symlinkSync(join(productRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');
  execFileSync(join(productRoot, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!existsSync(join(dir, 'dist/server.js')))
    throw new Error(`${sha}: no dist/server.js after the build`);
  return dir;
}

export interface Sample {
  gatewayCpuUs: number;
  workerCpuUs: number;
  gatewayAlloc: number;
  workerAlloc: number;
  heapPerConnection: number;
  errors: number;
}

interface AllocationProfile {
  head: { selfSize: number; children: AllocationProfile['head'][] };
}

function sampledBytes(path: string): number {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as AllocationProfile;
  let total = 0;
  const walk = (node: AllocationProfile['head']) => {
    total += node.selfSize;
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  return total;
}

interface LoadResult {
  ok: number;
  errors: number;
  errorSamples?: string[];
}

/** One round on one variant: a fresh fleet on `root`'s dist/. */
async function measure(root: string, options: Options, scratch: string): Promise<Sample> {
  process.env.BENCH_PRODUCT_ROOT = root;
  const cleanups: (() => unknown)[] = [];
  const ctx: BenchContext = { quick: false, log, defer: (cleanup) => void cleanups.push(cleanup) };
  try {
    const fleet = await Fleet.start(ctx, { workers: 2, generators: 2 });
    // Heap per idle joined connection first, on a fresh process.
    const empty = await fleet.gc();
    const idle = split(options.sockets, 2);
    await fleet.onGenerators(
      'connect',
      (g) => ({
        pool: 'idle',
        url: fleet.wsUrl.replace('user_id=bench', 'user_id=u{i}'),
        count: idle[g],
        offset: g * idle[0]!,
        localAddress: Fleet.sourceAddress(2 + g),
        concurrency: 64,
        topic: 'gen_api',
      }),
      120_000,
    );
    const full = await fleet.gc();
    await fleet.onGenerators('close', () => ({ pool: 'idle' }), 60_000);
    const heapPerConnection =
      (full.heapUsed + full.external - empty.heapUsed - empty.external) / options.sockets;

    const sockets = split(200, 2);
    await fleet.onGenerators('connect', (g) => ({
      pool: 'load',
      url: fleet.wsUrl,
      count: sockets[g],
      localAddress: Fleet.sourceAddress(g),
      concurrency: 50,
      topic: 'gen_api',
    }));
    const load = (seconds: number) =>
      fleet.onGenerators<LoadResult>(
        'requests',
        () => ({
          pool: 'load',
          rate: options.rate / 2,
          durationMs: seconds * 1000,
          service: 'bench',
          requestType: 'echo',
          args: { m: 'x'.repeat(100) },
        }),
        seconds * 1000 + 60_000,
      );
    await load(2);

    const gw0 = fleet.gatewayCpuMs();
    const wk0 = fleet.workers.map((worker) => cpuMs(worker.pid));
    const cpuRun = await load(options.seconds);
    const served = cpuRun.reduce((sum, r) => sum + r.ok, 0);
    const gatewayCpuUs = ((fleet.gatewayCpuMs() - gw0) * 1000) / served;
    const workerCpuUs =
      (fleet.workers.reduce((sum, worker, i) => sum + cpuMs(worker.pid) - wk0[i]!, 0) * 1000) /
      served;

    const gatewayProfile = join(scratch, 'gateway.heapprofile');
    const workerProfiles = fleet.workers.map((_, i) => join(scratch, `worker${i}.heapprofile`));
    await Promise.all([
      fleet.gateway.call('allocationProfileStart'),
      ...fleet.workers.map((worker) => worker.call('allocationProfileStart')),
    ]);
    const allocRun = await load(Math.max(2, options.seconds / 2));
    await Promise.all([
      fleet.gateway.call('allocationProfileStop', { path: gatewayProfile }),
      ...fleet.workers.map((worker, i) =>
        worker.call('allocationProfileStop', { path: workerProfiles[i] }),
      ),
    ]);
    const allocServed = allocRun.reduce((sum, r) => sum + r.ok, 0);
    const failed = [...cpuRun, ...allocRun].flatMap((r) => r.errorSamples ?? []);
    if (failed.length > 0) log(`errors, e.g. ${failed.slice(0, 3).join('; ')}`);
    return {
      gatewayCpuUs,
      workerCpuUs,
      gatewayAlloc: sampledBytes(gatewayProfile) / allocServed,
      workerAlloc: workerProfiles.reduce((sum, path) => sum + sampledBytes(path), 0) / allocServed,
      heapPerConnection,
      errors: [...cpuRun, ...allocRun].reduce((sum, r) => sum + r.errors, 0),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    delete process.env.BENCH_PRODUCT_ROOT;
  }
}

export interface Comparison {
  label: string;
  subject: string;
  before: Sample;
  after: Sample;
  rounds: number;
}

export function medianSample(samples: Sample[]): Sample {
  const pick = (key: keyof Sample) => median(samples.map((sample) => sample[key]));
  return {
    gatewayCpuUs: pick('gatewayCpuUs'),
    workerCpuUs: pick('workerCpuUs'),
    gatewayAlloc: pick('gatewayAlloc'),
    workerAlloc: pick('workerAlloc'),
    heapPerConnection: pick('heapPerConnection'),
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
  };
}

const KB = 1024;
const cell = (before: number, after: number, unit: string, scale = 1) =>
  `${formatNumber(before / scale)} → ${formatNumber(after / scale)} ${unit} (${after <= before ? '−' : '+'}${formatNumber(Math.abs((after / before - 1) * 100))} %)`;

function row(c: Comparison): string {
  const { before: b, after: a } = c;
  return `| \`${c.label}\` ${c.subject} | ${cell(b.gatewayCpuUs, a.gatewayCpuUs, 'µs')} | ${cell(b.gatewayAlloc, a.gatewayAlloc, 'KB', KB)} | ${cell(b.workerCpuUs, a.workerCpuUs, 'µs')} | ${cell(b.workerAlloc, a.workerAlloc, 'KB', KB)} | ${cell(b.heapPerConnection, a.heapPerConnection, 'KB', KB)} |`;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const cleanups: (() => void)[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'gg-ab-profiles-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const onSignal = () => {
    for (const cleanup of cleanups.reverse()) cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const comparisons: Comparison[] = [];
  try {
    for (const revision of options.revisions) {
      const [from, to] = revision.includes('..')
        ? revision.split('..')
        : [`${revision}^`, revision];
      const beforeSha = git('rev-parse', '--verify', `${from}^{commit}`);
      const afterSha = git('rev-parse', '--verify', `${to}^{commit}`);
      const label = revision.includes('..')
        ? `${beforeSha.slice(0, 7)}..${afterSha.slice(0, 7)}`
        : afterSha.slice(0, 7);
      const subject = revision.includes('..')
        ? `${git('rev-list', '--count', `${beforeSha}..${afterSha}`)} commits`
        : git('log', '-1', '--format=%s', afterSha);
      log(`${label}: building ${beforeSha.slice(0, 7)} and ${afterSha.slice(0, 7)}`);
      let roots: { before: string; after: string };
      try {
        roots = { before: checkout(beforeSha, cleanups), after: checkout(afterSha, cleanups) };
      } catch (err) {
        // A commit that does not build on its own (it needs the next one): measure a range instead.
        log(
          `${label}: skipped, a side does not build (${(err as Error).message.split('\n')[0]}); try a range A..B`,
        );
        continue;
      }
      const samples: { before: Sample[]; after: Sample[] } = { before: [], after: [] };
      for (let round = 0; round < options.rounds; round++) {
        // Alternate which goes first, so neither always runs on a warmer machine.
        const order =
          round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const);
        for (const variant of order) {
          const sample = await measure(roots[variant], options, scratch);
          samples[variant].push(sample);
          log(
            `${label} round ${round + 1} ${variant}: gateway ${sample.gatewayCpuUs.toFixed(1)} µs ${formatNumber(sample.gatewayAlloc / KB)} KB, workers ${sample.workerCpuUs.toFixed(1)} µs ${formatNumber(sample.workerAlloc / KB)} KB, heap/conn ${formatNumber(sample.heapPerConnection / KB)} KB, errors ${sample.errors}`,
          );
        }
      }
      const comparison = {
        label,
        subject,
        before: medianSample(samples.before),
        after: medianSample(samples.after),
        rounds: options.rounds,
      };
      comparisons.push(comparison);
      // Recorded as each revision completes: a later failure loses nothing measured.
      if (options.write) record([comparison], options);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) cleanup();
  }
  for (const c of comparisons) process.stdout.write(`${row(c)}\n`);
}

/** Writes rows for `comparisons` into BENCHMARKS.md's tuning log. */
export function record(
  comparisons: readonly Comparison[],
  options: Pick<Options, 'rounds' | 'seconds' | 'rate' | 'sockets'>,
): void {
  const path = join(productRoot, 'BENCHMARKS.md');
  const method =
    `Each row compares a commit with its parent (or a range's ends), both built into temporary worktrees and measured with the current harness, the two alternating over ${options.rounds} rounds (medians shown). ` +
    `Per round a fresh fleet (nats-server, 2 \`bench\` workers, the gateway, 2 generators on this box): CPU per request from /proc over ${options.seconds} s of open-loop sync requests at ${formatNumber(options.rate)} req/s (200 sockets, 128 B args; worker CPU summed over both workers); allocation per request from V8 allocation sampling (every 1 KiB, including what the GC collected); heap per idle connection from ${formatNumber(options.sockets)} sockets joined to \`gen_api\` (heap + external after a full GC, minus the empty process's). CPU per request at this rate is mostly the kernel's per-wake-up cost of loopback reads and writes and moves ±30 % between identical runs (the worker column is a control: commits that did not touch the worker move it as much), so only large CPU changes show; allocation and heap figures are stable to a few %.`;
  const previous = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  writeFileSync(
    path,
    withTuningRows(previous, new Map(comparisons.map((c) => [c.label, row(c)])), method),
  );
  log(`recorded ${comparisons.length} row(s) in BENCHMARKS.md`);
}

// Run as a command (not when imported for `record`).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => setTimeout(() => process.exit(0), 200).unref(),
    (err: unknown) => {
      process.stderr.write(`ab: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

/**
 * Rate limiting (issue 4, "Benchmarks"): local decisions per second per core for each algorithm
 * with 10k hot keys, the added latency of `eventual` and `strict` against `local`, eventual
 * propagation, and gen_api end to end through a gateway, with the raw NATS / JetStream KV / ws
 * baselines measured in the same run.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AlgorithmName } from '../../../src/ratelimit/types.js';
import { NatsServer } from '../../support/nats.js';
import { formatNumber } from '../lib/report.js';
import { Scope, timerOverheadNs } from '../lib/runtime.js';
import { median, type Summary } from '../lib/stats.js';
import { benchCluster, CLUSTER_POLICY, type ClusterOptions } from '../ratelimit/cluster.js';
import { benchE2e, E2E_CASES, type E2eOptions } from '../ratelimit/e2e.js';
import type { LocalJob, LocalOptions, LocalResult, Regime } from '../ratelimit/local.js';
import type { BenchContext, Metric, Suite, SuiteOutput } from '../types.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const LOCAL_WORKER = fileURLToPath(new URL('../ratelimit/local-worker.ts', import.meta.url));

const ALGORITHMS: readonly AlgorithmName[] = [
  'gcra',
  'sliding_log',
  'sliding_window',
  'fixed_window',
];
const KEYS = 10_000;
/** N = 100 for every algorithm (the issue's sliding log size). */
const REGIMES: readonly Regime[] = [
  // ≤ 1000 hits/s per key pass; 10k keys round-robin at 5M decisions/s is 500/s per key.
  { name: 'mostly allowed', limit: 100, windowMs: 100, prefillPerKey: 0 },
  // Every key used up its 100 for the hour before the measurement: nearly every decision denies.
  { name: 'saturated', limit: 100, windowMs: 3_600_000, prefillPerKey: 100 },
];

const GOALS: Partial<Record<AlgorithmName, { target: number; source: string }>> = {
  gcra: { target: 1_000_000, source: 'issue 4; spec §5.16: 500k' },
  sliding_log: { target: 300_000, source: 'issue 4, N=100; spec §5.16: 200k' },
};
const P99_GOAL_US = 20;

const us = (ms: number): number => ms * 1000;

/** Runs `jobs` one after the other in one fresh process (local-worker.ts); a result per job. */
function runLocalWorker(
  ctx: BenchContext,
  jobs: readonly LocalJob[],
  options: LocalOptions,
): Promise<LocalResult[]> {
  const what = jobs.map((job) => `${job.algorithm}/${job.regime.name}`).join(', ');
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', LOCAL_WORKER, JSON.stringify({ jobs, options })],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`local worker ${what} failed: ${err.message} ${stderr}`));
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          const results = JSON.parse(line) as LocalResult[];
          if (!Array.isArray(results) || results.length !== jobs.length)
            throw new Error('not one result per job');
          resolve(results);
        } catch {
          reject(new Error(`local worker ${what} printed no result: ${stdout} ${stderr}`));
        }
      },
    );
    ctx.defer(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
  });
}

function latencyRows(
  group: string,
  label: string,
  summary: Summary,
  extra: Partial<Metric> = {},
): Metric[] {
  return [
    { group, name: `${label} p50`, value: us(summary.p50), unit: 'µs', ...extra },
    { group, name: `${label} p99`, value: us(summary.p99), unit: 'µs' },
  ];
}

async function localSection(
  ctx: BenchContext,
  metrics: Metric[],
  notes: string[],
): Promise<LocalOptions & { rounds: number }> {
  // Quick runs check that every configuration runs and reports, not its figures: fewer keys, short
  // phases, and every configuration in one process (one start-up instead of eight).
  const options: LocalOptions & { rounds: number } = ctx.quick
    ? { keys: 1_000, durationMs: 100, samples: 5_000, batch: 1000, rounds: 1 }
    : { keys: KEYS, durationMs: 1000, samples: 100_000, batch: 1000, rounds: 3 };
  const jobs: LocalJob[] = ALGORITHMS.flatMap((algorithm) =>
    REGIMES.map((regime) => ({ algorithm, regime })),
  );
  // Rounds over every configuration (not runs back to back), so load drift on the machine is shared.
  const runs = new Map<string, LocalResult[]>();
  for (let round = 1; round <= options.rounds; round++) {
    // Full runs: a fresh process per configuration. Quick: one process for all of them.
    for (const batch of ctx.quick ? [jobs] : jobs.map((job) => [job])) {
      const results = await runLocalWorker(ctx, batch, options);
      results.forEach((result, i) => {
        const { algorithm, regime } = batch[i]!;
        const label = `${algorithm}, ${regime.name}`;
        ctx.log(
          `round ${round}/${options.rounds} ${label}: ${formatNumber(result.decisionsPerSec)}/s, p99 ${result.single.p99.toFixed(2)} µs, ${formatNumber(result.allocatedPerDecision)} B/decision`,
        );
        let list = runs.get(label);
        if (!list) runs.set(label, (list = []));
        list.push(result);
      });
    }
  }
  const throughput = `Local decisions per second, one core, ${formatNumber(options.keys).replace(',', ' ')} hot keys`;
  const latency = 'Local decisions: latency per decision';
  const memory = 'Local decisions: memory and allocation';
  const memoryRows: Metric[] = [];
  for (const algorithm of ALGORITHMS) {
    for (const regime of REGIMES) {
      const label = `${algorithm}, ${regime.name}`;
      const list = runs.get(label) ?? [];
      const mid = (pick: (result: LocalResult) => number) => median(list.map(pick));
      const rates = list.map((result) => result.decisionsPerSec);
      const goal = GOALS[algorithm];
      const range =
        list.length > 1
          ? `; ${list.length} runs: ${formatNumber(Math.min(...rates))}–${formatNumber(Math.max(...rates))}`
          : '';
      metrics.push({
        group: throughput,
        name: `${label}: decisions/s`,
        value: mid((result) => result.decisionsPerSec),
        unit: '/s',
        ...(goal ? { goal: { op: '>=', target: goal.target, source: goal.source } } : {}),
        note: `${(mid((result) => result.allowedShare) * 100).toFixed(1)} % allowed${range}`,
      });
      metrics.push(
        {
          group: latency,
          name: `${label}: p50`,
          value: mid((result) => result.single.p50),
          unit: 'µs',
        },
        {
          group: latency,
          name: `${label}: p99`,
          value: mid((result) => result.single.p99),
          unit: 'µs',
          goal: { op: '<=', target: P99_GOAL_US, source: 'spec §5.16' },
          note: `p99.9 ${formatNumber(mid((result) => result.single.p999))} µs, max ${formatNumber(Math.max(...list.map((result) => result.single.max)))} µs; batch-mean p99 ${formatNumber(mid((result) => result.batched.p99))} µs`,
        },
      );
      memoryRows.push({
        group: memory,
        name: `${label}: heap allocated per decision`,
        value: mid((result) => result.allocatedPerDecision),
        unit: 'B',
      });
      if (regime.name === 'saturated') {
        const bytes = mid((result) => result.bytesPer10kKeys);
        memoryRows.push({
          group: memory,
          name: `${algorithm}: key store per 10 000 keys`,
          value: bytes / 1_000_000,
          unit: 'MB',
          note: `${formatNumber(bytes / KEYS)} B per key (full state)`,
        });
      }
    }
  }
  metrics.push(...memoryRows);
  notes.push(
    `**Local decisions.** Each algorithm and regime runs in a fresh \`node\` process (clean JIT and heap; the order of runs cannot favour one), on its main thread, ${options.rounds === 1 ? 'once' : `${options.rounds} times`} in rounds over all configurations; figures are the median over the runs (the range of decisions/s is noted). The call is the executor's: \`RateLimiter.check(request, config, context)\` with one policy on the called function, keyed by \`user_id\`, N = limit = 100, over ${formatNumber(KEYS)} distinct users taken round-robin (requests built beforehand, as the executor has them). Regimes: *mostly allowed* = 100 per 100 ms (1000/s per key; round-robin over 10k keys stays below that up to 10M decisions/s); *saturated* = 100 per hour with every key used up before the measurement, so nearly every decision is a denial. Warm-up: ${formatNumber(KEYS * 20)} decisions (or the prefill, if larger).`,
    `Throughput: untimed calls in batches of ${options.batch}, for ${options.durationMs / 1000} s; the wall time includes the event-loop turn after every 10 batches (where the limiter's sweep timer runs, as in a server). Latency: ${formatNumber(options.samples)} further decisions each timed alone with \`performance.now()\` (a double, no allocation; a timer pair costs about ${formatNumber(timerOverheadNs())} ns here, included in the figures). The batch-mean p99 (mean per decision within each batch of ${options.batch}) is noted for comparison: it hides single slow calls (GC pauses) that the per-call p99 shows.`,
    `Memory: \`heapUsed + external\` (the sliding log's \`Float64Array\` rings live outside the JS heap) after a full GC, before the limiter is built and after the run, divided by the keys held. Allocation per decision: growth of the young generation over 10 000 steady-state decisions with no scavenge in between (smallest of 7 runs) — garbage the hot path leaves for the GC.`,
  );
  return options;
}

function clusterMetrics(
  result: Awaited<ReturnType<typeof benchCluster>>,
  options: ClusterOptions,
  metrics: Metric[],
  notes: string[],
): void {
  const latency = 'Cluster modes: latency per decision (limiter.check on node A)';
  const { local, eventual, strict, natsRtt, kvGetUpdate, kvGet } = result.latency;
  metrics.push(
    ...latencyRows(latency, 'local', local),
    ...latencyRows(latency, 'eventual', eventual, {
      baseline: 'local p50',
      ratioLabel: 'local p50',
    }),
    {
      group: latency,
      name: 'eventual added p50 (vs local)',
      value: us(eventual.p50 - local.p50),
      unit: 'µs',
      note: 'hits are batched and published after the decision (flushMs 5)',
    },
    ...latencyRows(latency, 'strict', strict, {
      baseline: 'raw JetStream KV get+update p50',
      ratioLabel: 'raw KV get+update p50',
    }),
    { group: latency, name: 'strict mean', value: us(strict.mean), unit: 'µs' },
    {
      group: latency,
      name: 'strict added p50 (vs local)',
      value: us(strict.p50 - local.p50),
      unit: 'µs',
      baseline: 'raw NATS request/reply RTT p50',
      ratioLabel: 'raw NATS RTT p50',
      note: 'get + CAS update = 2 round trips',
    },
    {
      group: latency,
      name: 'raw NATS request/reply RTT p50',
      value: us(natsRtt.p50),
      unit: 'µs',
      isBaseline: true,
    },
    {
      group: latency,
      name: 'raw NATS request/reply RTT p99',
      value: us(natsRtt.p99),
      unit: 'µs',
      isBaseline: true,
    },
    {
      group: latency,
      name: 'raw JetStream KV get+update p50',
      value: us(kvGetUpdate.p50),
      unit: 'µs',
      isBaseline: true,
    },
    {
      group: latency,
      name: 'raw JetStream KV get+update p99',
      value: us(kvGetUpdate.p99),
      unit: 'µs',
      isBaseline: true,
    },
    {
      group: latency,
      name: 'raw JetStream KV get p50',
      value: us(kvGet.p50),
      unit: 'µs',
      isBaseline: true,
    },
  );
  const propagation = 'Eventual: propagation from node A to node B';
  metrics.push(
    {
      group: propagation,
      name: 'hit allowed on A → applied on B, p50',
      value: result.propagation.p50,
      unit: 'ms',
    },
    {
      group: propagation,
      name: 'hit allowed on A → applied on B, p99',
      value: result.propagation.p99,
      unit: 'ms',
    },
    {
      group: propagation,
      name: 'hit allowed on A → applied on B, max',
      value: result.propagation.max,
      unit: 'ms',
    },
    {
      group: propagation,
      name: "probes visible in B's status() right after",
      value: (result.propagationConfirmed / result.propagation.n) * 100,
      unit: '%',
      note: `${result.propagationConfirmed} of ${result.propagation.n}`,
    },
  );
  const throughput = `Cluster modes: throughput on one core`;
  const s = result.strictStats;
  metrics.push(
    { group: throughput, name: 'local decisions/s', value: result.throughput.local, unit: '/s' },
    {
      group: throughput,
      name: 'eventual decisions/s, 2 nodes on this core',
      value: result.throughput.eventual,
      unit: '/s',
      baseline: 'local decisions/s',
      ratioLabel: 'local',
      note: 'A decides and publishes, B decodes and applies every hit',
    },
    {
      group: throughput,
      name: 'eventual decisions/s, publishing node alone',
      value: result.throughput.eventualAlone,
      unit: '/s',
      baseline: 'local decisions/s',
      ratioLabel: 'local',
    },
    {
      group: throughput,
      name: `strict decisions/s, ${options.concurrency} in flight`,
      value: result.throughput.strict,
      unit: '/s',
      baseline: `raw KV get+update/s, ${options.concurrency} in flight`,
      ratioLabel: 'raw KV',
    },
    {
      group: throughput,
      name: `strict p99, ${options.concurrency} in flight`,
      value: result.concurrentStrict.p99,
      unit: 'ms',
    },
    {
      group: throughput,
      name: `raw KV get+update/s, ${options.concurrency} in flight`,
      value: result.throughput.kvGetUpdate,
      unit: '/s',
      isBaseline: true,
    },
    {
      group: throughput,
      name: 'strict decisions answered by the fallback',
      value: s.fallbacks,
      unit: '',
      note: `store timeouts (25 ms) ${s.timeouts}, store errors ${s.storeErrors}, CAS conflicts ${s.casConflicts}, KV operations ${formatNumber(s.operations)}`,
    },
  );
  notes.push(
    `**Cluster modes.** One \`nats-server\` ${result.natsVersion} with JetStream on a free port; two \`RateLimits\` nodes in this process, each on its own NATS connection (\`attach({nc, connected, subjects: new Subjects('genapi')})\`), with the same policy in each mode: ${CLUSTER_POLICY.algorithm} ${formatNumber(CLUSTER_POLICY.limit)} per ${CLUSTER_POLICY.windowMs} ms per \`user_id\` (\`bench.local\`, \`bench.eventual\`, \`bench.strict\`, so nearly every decision is allowed), ${formatNumber(options.users)} users round-robin, default eventual/strict options (flushMs 5, store timeout 25 ms, R1 bucket). Node A decides; B is its peer.`,
    `Latency: ${options.rounds} rounds; each round times ${formatNumber(options.syncPerRound)} local and ${formatNumber(options.syncPerRound)} eventual decisions (synchronous calls, an event-loop turn every 100 so the batch timer runs between requests as in a server), then ${options.asyncPerRound} sequential strict decisions (\`await limiter.check\`), ${options.asyncPerRound} raw NATS request/reply round trips (a plain responder on another connection, same server, a payload the size of a GCRA state), ${options.asyncPerRound} raw KV get → update(revision) on a separate bucket and ${options.asyncPerRound >> 1} raw KV gets. Interleaving makes load drift hit modes and baselines alike. "Added" = mode p50 − local p50.`,
    `Propagation: ${result.propagation.n} probes, each a fresh user allowed on A, timed until B's \`applyRemote\` (wrapped for the measurement) has applied that hit; then B's \`limiter.status()\` is checked to show the hit. A probe on an idle node waits for the whole batch timer (flushMs = 5 ms); under load a hit waits less (the batch is already open) or is flushed at once when the batch reaches 32 KiB.`,
    `Throughput: ${options.throughputMs / 1000} s per figure. Eventual with the peer counts until B has applied every hit A published (B runs on the same core, so this is one node's work in a symmetric 2-node cluster: its own decisions plus the peer's hits); "publishing node alone" is measured after B left. Strict: ${options.concurrency} concurrent \`check\`s on distinct keys; raw KV: ${options.concurrency} concurrent get+update loops. Published: ${formatNumber(result.eventualStats.publishedHits)} hits in ${formatNumber(result.eventualStats.published)} batches; applied on B: ${formatNumber(result.eventualStats.appliedOnPeer)}. Denied during the whole measurement: ${s.denied}.`,
  );
}

function e2eMetrics(
  result: Awaited<ReturnType<typeof benchE2e>>,
  options: E2eOptions,
  metrics: Metric[],
  notes: string[],
): void {
  const group = 'End to end: gen_api through a gateway (one request at a time)';
  const none = result.latency.none;
  for (const name of E2E_CASES) {
    const summary = result.latency[name];
    const label = name === 'none' ? 'no policy' : `${name} policy`;
    metrics.push(
      {
        group,
        name: `${label} p50`,
        value: us(summary.p50),
        unit: 'µs',
        ...(name === 'none' ? { baseline: 'raw ws echo p50', ratioLabel: 'raw ws echo p50' } : {}),
      },
      { group, name: `${label} p99`, value: us(summary.p99), unit: 'µs' },
    );
    if (name !== 'none')
      metrics.push({
        group,
        name: `${label}: added p50 vs no policy`,
        value: us(summary.p50 - none.p50),
        unit: 'µs',
      });
  }
  metrics.push(
    {
      group,
      name: 'raw ws echo p50',
      value: us(result.latency.wsEcho.p50),
      unit: 'µs',
      isBaseline: true,
    },
    {
      group,
      name: 'raw ws echo p99',
      value: us(result.latency.wsEcho.p99),
      unit: 'µs',
      isBaseline: true,
    },
  );
  notes.push(
    `**End to end.** A gateway in this process (\`createGateway\` + \`GenApi\` with \`rateLimits\`, linked to the same nats-server with prefix \`e2ebench\`; socket message-rate limit off, since sequential requests exceed its default 1000/s) serves an in-process \`bench\` service with four echo functions: \`none\` (no policy), \`local\`, \`eventual\`, \`strict\` (the cluster policy above, one per function). A raw \`ws\` client joins \`gen_api:bench\` and sends one Phoenix v2 \`phoenix_gen_api\` frame at a time; a request ends when both its push and its \`phx_reply\` arrived. ${options.rounds} rounds of ${options.perRound} rotations: one request to each function and one round trip of the same frame to a raw \`ws\` echo server (the floor), in a fresh (seeded) random order every rotation, so that no case always follows the same one (a fixed order made the case after \`strict\` measurably slower). Client, gateway and service share this process and core; no eventual peer is attached. Failed requests: ${result.failures}; denied: ${result.rateLimitHealth.denied}; strict fallbacks: ${result.rateLimitHealth.fallbacks} (store timeouts ${result.rateLimitHealth.timeouts}).`,
  );
}

export const suite: Suite = {
  name: 'ratelimit',
  title: 'Rate limiting',
  async run(ctx): Promise<SuiteOutput> {
    const metrics: Metric[] = [];
    const notes: string[] = [];
    await localSection(ctx, metrics, notes);

    const nats = await NatsServer.start({ jetstream: true });
    ctx.defer(() => nats.dispose());
    const clusterOptions: ClusterOptions = ctx.quick
      ? {
          users: 1000,
          rounds: 1,
          syncPerRound: 1000,
          asyncPerRound: 50,
          probes: 10,
          throughputMs: 200,
          concurrency: 32,
          syncWarmup: 2_000,
          asyncWarmup: 30,
        }
      : {
          users: 1000,
          rounds: 10,
          syncPerRound: 5000,
          asyncPerRound: 300,
          probes: 200,
          throughputMs: 1500,
          concurrency: 32,
          syncWarmup: 20_000,
          asyncWarmup: 300,
        };
    const clusterScope = new Scope();
    ctx.defer(() => clusterScope.close());
    const cluster = await benchCluster(nats, clusterOptions, clusterScope, (message) =>
      ctx.log(message),
    );
    await clusterScope.close();
    clusterMetrics(cluster, clusterOptions, metrics, notes);

    const e2eOptions: E2eOptions = ctx.quick
      ? { rounds: 1, perRound: 50, warmup: 30 }
      : { rounds: 10, perRound: 300, warmup: 300 };
    const e2eScope = new Scope();
    ctx.defer(() => e2eScope.close());
    ctx.log('end to end');
    const e2e = await benchE2e(nats, e2eOptions, e2eScope);
    await e2eScope.close();
    e2eMetrics(e2e, e2eOptions, metrics, notes);

    return { metrics, notes, environment: { 'nats-server': cluster.natsVersion } };
  },
};

/**
 * Streams (issue 5 B8; spec §10.2 G17): 1 000 concurrent gen_api streams, each 50 chunks/s for
 * 30 s, from 1 000 sockets to 2 `bench` workers over NATS. Every chunk is checked for loss and
 * order; then streams are cancelled mid-flight and the time from the client's cancel push to the
 * worker's abort signal is measured.
 */
import { Fleet, SHARED, split } from '../lib/fleet.js';
import { latencyHistogram, merge, recordMs, summary, type LatencySummary } from '../lib/hdr.js';
import { cpuMs } from '../lib/proc.js';
import { formatNumber } from '../lib/report.js';
import { fromRuns, repeat } from '../lib/repeat.js';
import { until } from '../../support/wait.js';
import { untilOrTimeout } from '../lib/runtime.js';
import type { BenchContext, Metric, Suite, SuiteOutput } from '../types.js';

const SOURCE = 'issue 5 B8';

interface Options {
  streams: number;
  /** Chunks per second per stream. */
  chunkRate: number;
  durationMs: number;
  /** Streams started and then cancelled (the cancel phase). */
  cancelStreams: number;
  /** When the cancels go out, ms after the streams started. */
  cancelAtMs: number;
  reps: number;
  /** The warm-up round's length (0: none). */
  warmupMs: number;
  workers: number;
  generators: number;
}

const FULL: Options = {
  streams: 1000,
  chunkRate: 50,
  durationMs: 30_000,
  cancelStreams: 500,
  cancelAtMs: 2_000,
  reps: 3,
  warmupMs: 1_000,
  workers: 2,
  generators: 2,
};
/** Checks the scenario end to end (loss, order, cancel), not its numbers: small and short. */
const QUICK: Options = {
  streams: 100,
  chunkRate: 50,
  durationMs: 1_000,
  cancelStreams: 50,
  cancelAtMs: 300,
  reps: 1,
  warmupMs: 0,
  workers: SHARED.workers,
  generators: SHARED.generators,
};

interface StreamsResult {
  completed: number;
  incomplete: number;
  cancelled: number;
  outOfOrder: number;
  chunksReceived: number;
  errors: number;
  errorSamples: string[];
  cancelSentAt: Record<string, number>;
  histogram: string;
}

interface Completeness {
  completed: number;
  incomplete: number;
  lost: number;
  outOfOrder: number;
  errors: number;
  errorSamples: string[];
  chunks: number;
  chunksPerSec: number;
  latency: LatencySummary;
  gatewayCpuUsPerChunk: number;
  gatewayCore: number;
  workerCores: number[];
  gatewayRssMb: number;
}

/** Until the gateway holds no stream or request from the previous phase (they end asynchronously). */
async function drained(fleet: Fleet): Promise<void> {
  let gauges: Record<string, number> = {};
  await until(
    async () => {
      gauges = await fleet.gauges();
      return gauges.streams === 0 && gauges.inflight === 0 && gauges.natsStreams === 0;
    },
    () => `the gateway to finish the last phase's streams (gauges ${JSON.stringify(gauges)})`,
    { timeoutMs: 30_000, intervalMs: 20 },
  );
}

interface Cancels {
  cancelled: number;
  /** Cancels the workers never saw (the stream had already ended, or the cancel was lost). */
  unseen: number;
  latency: LatencySummary;
  /** Cancelled streams whose client got no end push. */
  unterminated: number;
}

/** Phase A: every stream runs to the end; chunks counted and checked in order. */
async function completeness(fleet: Fleet, options: Options): Promise<Completeness> {
  const chunks = Math.round((options.chunkRate * options.durationMs) / 1000);
  const intervalMs = 1000 / options.chunkRate;
  const counts = split(options.streams, fleet.generators.length);
  const cpu0 = fleet.gatewayCpuMs();
  const workerCpu0 = fleet.workers.map((worker) => cpuMs(worker.pid));
  const t0 = performance.now();
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, fleet.gatewayRss());
  }, 1000);
  const results = await fleet
    .onGenerators<StreamsResult>(
      'streams',
      (i) => ({
        pool: 'streams',
        count: counts[i],
        chunks,
        intervalMs,
        cancel: 0,
        cancelAtMs: 0,
        timeoutMs: options.durationMs + 30_000,
      }),
      options.durationMs + 60_000,
    )
    .finally(() => clearInterval(sampler));
  const wallMs = performance.now() - t0;
  const gatewayCpuMs = fleet.gatewayCpuMs() - cpu0;
  const received = results.reduce((sum, r) => sum + r.chunksReceived, 0);
  const histogram = merge(results.map((r) => r.histogram));
  const latency = summary(histogram);
  histogram.destroy();
  return {
    completed: results.reduce((sum, r) => sum + r.completed, 0),
    incomplete: results.reduce((sum, r) => sum + r.incomplete, 0),
    lost: options.streams * chunks - received,
    outOfOrder: results.reduce((sum, r) => sum + r.outOfOrder, 0),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    errorSamples: results.flatMap((r) => r.errorSamples).slice(0, 3),
    chunks: received,
    chunksPerSec: received / (wallMs / 1000),
    latency,
    gatewayCpuUsPerChunk: received === 0 ? Number.NaN : (gatewayCpuMs * 1000) / received,
    gatewayCore: gatewayCpuMs / wallMs,
    workerCores: fleet.workers.map((worker, i) => (cpuMs(worker.pid) - workerCpu0[i]!) / wallMs),
    gatewayRssMb: peakRss / (1024 * 1024),
  };
}

/** Phase B: long streams, all cancelled by the client after `cancelAtMs`; cancel → worker abort. */
async function cancels(fleet: Fleet, options: Options): Promise<Cancels> {
  const intervalMs = 1000 / options.chunkRate;
  // Long enough that no stream ends before its cancel.
  const chunks = Math.round((options.chunkRate * (options.cancelAtMs + 60_000)) / 1000);
  const counts = split(options.cancelStreams, fleet.generators.length);
  await Promise.all(fleet.workers.map((worker) => worker.call('takeCancels')));
  const results = await fleet.onGenerators<StreamsResult>(
    'streams',
    (i) => ({
      pool: 'streams',
      count: counts[i],
      chunks,
      intervalMs,
      cancel: counts[i],
      cancelAtMs: options.cancelAtMs,
      timeoutMs: options.cancelAtMs + 10_000,
    }),
    options.cancelAtMs + 30_000,
  );
  // The workers record the abort asynchronously: collect until every cancel sent was seen (one
  // that never is counts as unseen, so a timeout here is a finding, not a failure).
  const sent = results.flatMap((result) => Object.keys(result.cancelSentAt));
  const seen = new Map<string, number>();
  const allSeen = async () => {
    for (const worker of fleet.workers) {
      for (const cancel of await worker.call<{ requestId: string; at: number }[]>('takeCancels'))
        seen.set(cancel.requestId, cancel.at);
    }
    return sent.every((requestId) => seen.has(requestId));
  };
  await untilOrTimeout(allSeen, 'the workers to see every cancel', {
    timeoutMs: 5_000,
    intervalMs: 20,
  });
  const histogram = latencyHistogram();
  let cancelled = 0;
  let unseen = 0;
  for (const result of results) {
    for (const [requestId, sentAt] of Object.entries(result.cancelSentAt)) {
      cancelled++;
      const at = seen.get(requestId);
      if (at === undefined) unseen++;
      else recordMs(histogram, Math.max(0, at - sentAt));
    }
  }
  const latency = summary(histogram);
  histogram.destroy();
  return {
    cancelled,
    unseen,
    latency,
    unterminated: results.reduce((sum, r) => sum + r.incomplete, 0),
  };
}

export const suite: Suite = {
  name: 'streams',
  title: 'Streams: 1 000 concurrent, loss, order, cancel (B8)',
  async run(ctx: BenchContext): Promise<SuiteOutput> {
    const options = ctx.quick ? QUICK : FULL;
    const fleet = await Fleet.start(ctx, {
      workers: options.workers,
      generators: options.generators,
    });
    const counts = split(options.streams, fleet.generators.length);
    const joined = await fleet.onGenerators<{ joined: number; failed: number; errors: string[] }>(
      'connect',
      (i) => ({
        pool: 'streams',
        url: fleet.wsUrl,
        count: counts[i],
        localAddress: Fleet.sourceAddress(i),
        topic: 'gen_api',
        concurrency: 100,
        heartbeatMs: 30_000,
      }),
    );
    const failedJoins = joined.reduce((sum, j) => sum + j.failed, 0);
    if (failedJoins > 0)
      throw new Error(
        `${failedJoins} stream sockets could not join: ${joined.flatMap((j) => j.errors).join('; ')}`,
      );
    ctx.log(`${formatNumber(options.streams)} sockets joined`);
    if (options.warmupMs > 0)
      await completeness(fleet, { ...options, durationMs: options.warmupMs });

    const runs = await repeat(options.reps, async (rep) => {
      const a = await completeness(fleet, options);
      ctx.log(
        `rep ${rep + 1}: ${formatNumber(a.completed)} streams completed, ${a.incomplete} incomplete, ${formatNumber(a.chunks)} chunks (${formatNumber(a.chunksPerSec)}/s), lost ${a.lost}, out of order ${a.outOfOrder}, ` +
          `chunk latency p50 ${a.latency.p50.toFixed(2)} ms p99 ${a.latency.p99.toFixed(2)} ms, gateway ${a.gatewayCpuUsPerChunk.toFixed(2)} µs/chunk (${(a.gatewayCore * 100).toFixed(0)} % of a core)`,
      );
      await drained(fleet);
      const b = await cancels(fleet, options);
      ctx.log(
        `rep ${rep + 1}: ${b.cancelled} cancels, unseen by the workers ${b.unseen}, cancel → worker p50 ${b.latency.p50.toFixed(2)} ms p99 ${b.latency.p99.toFixed(2)} ms max ${b.latency.max.toFixed(2)} ms`,
      );
      await drained(fleet);
      return { a, b };
    });

    // The fleet may be shared with other suites (quick runs): leave it with no socket open.
    await fleet.onGenerators('close', () => ({ pool: 'streams' }));

    const totalChunks = Math.round((options.chunkRate * options.durationMs) / 1000);
    const group = `B8: ${formatNumber(options.streams)} concurrent streams × ${options.chunkRate} chunks/s for ${options.durationMs / 1000} s`;
    const cancelGroup = `B8: cancel ${formatNumber(options.cancelStreams)} running streams → worker`;
    const metrics: Metric[] = [
      fromRuns(
        'streams completed',
        runs.map((r) => r.a.completed),
        '',
        {
          group,
          goal: { op: '>=', target: options.streams, source: SOURCE },
          note: `${formatNumber(totalChunks)} chunks each`,
        },
      ),
      fromRuns(
        'chunks lost',
        runs.map((r) => r.a.lost),
        '',
        { group, goal: { op: '<=', target: 0, source: SOURCE } },
      ),
      fromRuns(
        'chunks out of order',
        runs.map((r) => r.a.outOfOrder),
        '',
        { group, goal: { op: '<=', target: 0, source: SOURCE } },
      ),
      fromRuns(
        'error pushes',
        runs.map((r) => r.a.errors),
        '',
        {
          group,
          goal: { op: '<=', target: 0 },
          ...(runs.some((r) => r.a.errorSamples.length > 0)
            ? {
                note: runs
                  .flatMap((r) => r.a.errorSamples)
                  .slice(0, 2)
                  .join('; '),
              }
            : {}),
        },
      ),
      fromRuns(
        'chunks delivered per second',
        runs.map((r) => r.a.chunksPerSec),
        '/s',
        { group, note: `offered ${formatNumber(options.streams * options.chunkRate)}/s` },
      ),
      fromRuns(
        'chunk latency worker → client p50',
        runs.map((r) => r.a.latency.p50),
        'ms',
        { group },
      ),
      fromRuns(
        'chunk latency worker → client p99',
        runs.map((r) => r.a.latency.p99),
        'ms',
        { group },
      ),
      fromRuns(
        'chunk latency worker → client max',
        runs.map((r) => r.a.latency.max),
        'ms',
        { group },
      ),
      fromRuns(
        'gateway CPU per chunk',
        runs.map((r) => r.a.gatewayCpuUsPerChunk),
        'µs',
        {
          group,
          note: `gateway ${runs.map((r) => `${(r.a.gatewayCore * 100).toFixed(0)} %`).join(', ')} of a core; workers ${runs.map((r) => r.a.workerCores.map((c) => `${(c * 100).toFixed(0)} %`).join(' + ')).join(', ')}`,
        },
      ),
      fromRuns(
        'gateway peak RSS during the streams',
        runs.map((r) => r.a.gatewayRssMb),
        'MB',
        { group },
      ),
      fromRuns(
        'cancel → worker abort p50',
        runs.map((r) => r.b.latency.p50),
        'ms',
        { group: cancelGroup },
      ),
      fromRuns(
        'cancel → worker abort p99',
        runs.map((r) => r.b.latency.p99),
        'ms',
        { group: cancelGroup, goal: { op: '<=', target: 100, source: SOURCE } },
      ),
      fromRuns(
        'cancel → worker abort max',
        runs.map((r) => r.b.latency.max),
        'ms',
        { group: cancelGroup, goal: { op: '<=', target: 100, source: SOURCE } },
      ),
      fromRuns(
        'cancels the workers never saw',
        runs.map((r) => r.b.unseen),
        '',
        { group: cancelGroup, goal: { op: '<=', target: 0 } },
      ),
      fromRuns(
        'cancelled streams without an end push',
        runs.map((r) => r.b.unterminated),
        '',
        { group: cancelGroup, goal: { op: '<=', target: 0 } },
      ),
    ];
    const notes = [
      `**Streams (B8; spec §10.2 G17).** The gateway (\`startGateway\`, NATS mode, default options: stream credit 32, high water 256 KiB) relays \`bench.stream\` from ${options.workers} worker process(es) (worker SDK; each chunk \`{seq, t}\` written with \`ctx.stream.write\`, paced against the stream's start so a late tick does not stretch it) to ${formatNumber(options.streams)} sockets, one stream each, on ${options.generators} generator process(es) (${counts.join(' + ')} sockets, source addresses ${counts.map((_, i) => Fleet.sourceAddress(i)).join(', ')}). Every stream sends ${formatNumber(totalChunks)} chunks, one every ${1000 / options.chunkRate} ms, then ends; the client checks that chunk \`seq\` values arrive 1, 2, 3, … with none missing, then the end push. Latency per chunk: client receive time − the worker's write time \`t\` (same box clock). Gateway CPU: /proc user + system over the phase, ÷ chunks delivered.`,
      `**Cancel.** ${formatNumber(options.cancelStreams)} further streams start; ${options.cancelAtMs / 1000} s later each client pushes \`phoenix_gen_api_cancel\` for its stream. The worker records when its handler's abort signal fires; latency = that time − the client's send time. Each cancelled stream must also end with the stream end push to its client.`,
      `${options.warmupMs > 0 ? `A ${options.warmupMs / 1000} s warm-up round runs first. ` : 'No warm-up (quick). '}Repetitions: ${options.reps} (median; min / median / max).`,
    ];
    return { metrics, notes };
  },
};

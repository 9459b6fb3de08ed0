/**
 * Soak (issue 5 B10; spec §10.2 G18): 100 000 cycles of connect → join `gen_api` → 3 sync
 * requests → leave → disconnect against one gateway, compared with the same run's warm-up:
 * the gateway's RSS after a full GC must stay within +5 %, every gauge (sockets, channels,
 * topics, subscriptions, presences, timers, requests and streams in flight, NATS requests) must be
 * back to 0, and the event loop's delay p99 during the load must stay ≤ 20 ms.
 */
import { Fleet, SHARED, split } from '../lib/fleet.js';
import { merge, summary } from '../lib/hdr.js';
import { formatNumber } from '../lib/report.js';
import { untilOrTimeout } from '../lib/runtime.js';
import type { BenchContext, Metric, Suite, SuiteOutput } from '../types.js';

const SOURCE = 'issue 5 B10';
const MB = 1024 * 1024;

interface Options {
  warmupCycles: number;
  cycles: number;
  /** Slices the cycles are run in (RSS, gauges and event-loop delay sampled after each). */
  slices: number;
  workers: number;
  generators: number;
  /** Cycles in flight per generator. */
  concurrency: number;
  requests: number;
}

const FULL: Options = {
  warmupCycles: 10_000,
  cycles: 100_000,
  slices: 5,
  workers: 2,
  generators: 2,
  concurrency: 32,
  requests: 3,
};
/** Checks the cycle end to end (gauges back to 0, numbers produced), not the soak itself. */
const QUICK: Options = {
  warmupCycles: 100,
  cycles: 200,
  slices: 2,
  workers: SHARED.workers,
  generators: SHARED.generators,
  concurrency: 32,
  requests: 3,
};

interface CyclesResult {
  done: number;
  errors: number;
  errorSamples: string[];
  wallMs: number;
  histogram: string;
}

interface EventLoop {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Source addresses for generator `g`: 8 each from 127.0.1.x (a closed socket holds its port in TIME_WAIT for 60 s). */
function addresses(g: number): string[] {
  return Array.from({ length: 8 }, (_, i) => `127.0.1.${10 + g * 8 + i}`);
}

async function runCycles(
  fleet: Fleet,
  options: Options,
  total: number,
  offset: number,
): Promise<{
  done: number;
  errors: number;
  errorSamples: string[];
  wallMs: number;
  histogram: string[];
}> {
  const counts = split(total, options.generators);
  const results = await fleet.onGenerators<CyclesResult>(
    'cycles',
    (g) => ({
      url: fleet.wsUrl.replace('user_id=bench', `user_id=soak${offset}-${g}`),
      count: counts[g],
      concurrency: options.concurrency,
      topic: 'gen_api',
      requests: options.requests,
      localAddresses: addresses(g),
    }),
    30 * 60_000,
  );
  return {
    done: results.reduce((sum, r) => sum + r.done, 0),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    errorSamples: results.flatMap((r) => r.errorSamples).slice(0, 3),
    wallMs: Math.max(...results.map((r) => r.wallMs)),
    histogram: results.map((r) => r.histogram),
  };
}

/** Polls until every gauge is 0 (the last cycles' sockets close asynchronously), or gives the last reading. */
async function gaugesAtRest(fleet: Fleet, timeoutMs = 10_000): Promise<Record<string, number>> {
  let gauges: Record<string, number> = {};
  const atRest = async () => {
    gauges = await fleet.gauges();
    return Object.values(gauges).every((value) => value === 0);
  };
  // A gauge that stays above 0 is a finding (reported), not a reason to stop the run.
  await untilOrTimeout(atRest, 'every gauge back to 0', { timeoutMs, intervalMs: 20 });
  return gauges;
}

export const suite: Suite = {
  name: 'soak',
  title: 'Soak: connect → join → 3 requests → leave cycles (B10)',
  async run(ctx: BenchContext): Promise<SuiteOutput> {
    const options = ctx.quick ? QUICK : FULL;
    const fleet = await Fleet.start(ctx, {
      workers: options.workers,
      generators: options.generators,
    });

    ctx.log(`warm-up: ${formatNumber(options.warmupCycles)} cycles`);
    const warm = await runCycles(fleet, options, options.warmupCycles, 0);
    if (warm.errors > 0) throw new Error(`warm-up cycles failed: ${warm.errorSamples.join('; ')}`);
    const warmGauges = await gaugesAtRest(fleet);
    const baseline = await fleet.gc();
    ctx.log(
      `warm-up done (${formatNumber(warm.done / (warm.wallMs / 1000))} cycles/s); baseline RSS ${formatNumber(baseline.rss / MB)} MB, heap ${formatNumber(baseline.heapUsed / MB)} MB`,
    );

    const perSlice = split(options.cycles, options.slices);
    const slices: {
      rss: number;
      heap: number;
      cyclesPerSec: number;
      eventLoop: EventLoop;
      gauges: Record<string, number>;
    }[] = [];
    let done = 0;
    let errors = 0;
    const errorSamples: string[] = [];
    const histograms: string[] = [];
    let wallMs = 0;
    let worstEventLoop: EventLoop = { p50: 0, p99: 0, max: 0, mean: 0 };
    for (let s = 0; s < options.slices; s++) {
      await fleet.gateway.call('eventLoopReset');
      const result = await runCycles(fleet, options, perSlice[s]!, s + 1);
      const eventLoop = await fleet.gateway.call<EventLoop>('eventLoop');
      done += result.done;
      errors += result.errors;
      errorSamples.push(...result.errorSamples);
      histograms.push(...result.histogram);
      wallMs += result.wallMs;
      if (eventLoop.p99 > worstEventLoop.p99) worstEventLoop = eventLoop;
      const gauges = await gaugesAtRest(fleet);
      const memory = await fleet.gc();
      slices.push({
        rss: memory.rss,
        heap: memory.heapUsed,
        cyclesPerSec: result.done / (result.wallMs / 1000),
        eventLoop,
        gauges,
      });
      ctx.log(
        `slice ${s + 1}/${options.slices}: ${formatNumber(result.done)} cycles (${formatNumber(result.done / (result.wallMs / 1000))}/s), errors ${result.errors}; ` +
          `event loop p99 ${eventLoop.p99.toFixed(1)} ms max ${eventLoop.max.toFixed(1)} ms; RSS ${formatNumber(memory.rss / MB)} MB heap ${formatNumber(memory.heapUsed / MB)} MB; gauges ${JSON.stringify(gauges)}`,
      );
    }

    const final = slices[slices.length - 1]!;
    const nonZero = Object.entries(final.gauges).filter(([, value]) => value !== 0);
    const histogram = merge(histograms);
    const cycle = summary(histogram);
    histogram.destroy();
    const group = `B10: ${formatNumber(options.cycles)} cycles of connect → join → ${options.requests} requests → leave → disconnect`;
    const metrics: Metric[] = [
      {
        name: 'cycles completed',
        value: done,
        unit: '',
        group,
        goal: { op: '>=', target: options.cycles, source: SOURCE },
      },
      {
        name: 'failed cycles',
        value: errors,
        unit: '',
        group,
        goal: { op: '<=', target: 0, source: SOURCE },
        ...(errorSamples.length > 0 ? { note: errorSamples.slice(0, 2).join('; ') } : {}),
      },
      {
        name: 'cycles per second',
        value: done / (wallMs / 1000),
        unit: '/s',
        group,
        note: `${options.generators} generators × ${options.concurrency} cycles in flight`,
      },
      { name: 'cycle time p50', value: cycle.p50, unit: 'ms', group },
      { name: 'cycle time p99', value: cycle.p99, unit: 'ms', group },
      {
        name: 'warm-up RSS after GC',
        value: baseline.rss / MB,
        unit: 'MB',
        group,
        isBaseline: true,
        note: `after ${formatNumber(options.warmupCycles)} cycles`,
      },
      {
        name: 'RSS after GC, end of the soak',
        value: final.rss / MB,
        unit: 'MB',
        group,
        baseline: 'warm-up RSS after GC',
        ratioLabel: 'warm-up',
        goal: { op: '<=', target: 1.05, on: 'ratio', source: SOURCE },
        note: `per slice: ${slices.map((slice) => formatNumber(slice.rss / MB)).join(', ')} MB`,
      },
      {
        name: 'JS heap after GC, end of the soak',
        value: final.heap / MB,
        unit: 'MB',
        group,
        ratio: final.heap / baseline.heapUsed,
        ratioLabel: 'warm-up',
        note: `warm-up ${formatNumber(baseline.heapUsed / MB)} MB; per slice: ${slices.map((slice) => formatNumber(slice.heap / MB)).join(', ')} MB`,
      },
      {
        name: 'gauges not back to 0 at the end',
        value: nonZero.length,
        unit: '',
        group,
        goal: { op: '<=', target: 0, source: SOURCE },
        note:
          nonZero.length > 0
            ? JSON.stringify(Object.fromEntries(nonZero))
            : `all 0: ${Object.keys(final.gauges).join(', ')} (after the warm-up too: ${Object.values(warmGauges).every((v) => v === 0) ? 'yes' : JSON.stringify(warmGauges)})`,
      },
      {
        name: 'event-loop delay p99 during the cycles (worst slice)',
        value: worstEventLoop.p99,
        unit: 'ms',
        group,
        goal: { op: '<=', target: 20, source: SOURCE },
        note: `max ${formatNumber(worstEventLoop.max)} ms, mean ${worstEventLoop.mean.toFixed(2)} ms`,
      },
    ];
    const notes = [
      `**Soak (B10; spec §10.2 G18).** The gateway (\`startGateway\`, NATS mode, default options) with ${options.workers} \`bench\` workers and ${options.generators} generator processes. Each cycle opens a WebSocket (vsn 2.0.0, source addresses rotating over 8 loopback addresses per generator), joins \`gen_api\`, makes ${options.requests} sequential \`bench.echo\` requests (each waits for its push and its reply), leaves and closes; each generator keeps ${options.concurrency} cycles in flight. A warm-up of ${formatNumber(options.warmupCycles)} cycles fills the JIT, the allocator and the pools; then a full GC gives the baseline RSS.`,
      `The ${formatNumber(options.cycles)} cycles run in ${options.slices} slices; after each slice the gauges must return to 0 (polled up to 10 s for the last closes), a full GC runs and the RSS is read (\`process.memoryUsage\` in the gateway), and the event-loop delay (\`monitorEventLoopDelay\`, 10 ms resolution, reset before the slice) is read. The goal compares the last slice's RSS with the warm-up's.`,
    ];
    return { metrics, notes };
  },
};

/**
 * B6 (issue 5; spec §10.2 G7/G8): broadcast fan-out. 10 000 subscriber sockets on 100 topics
 * (`fan:0` … `fan:99`, 100 each) from two generator processes, and 100 publisher sockets (one per
 * topic) on a third generator. Publishers push `pub` open loop; the gateway's `fan:*` channel
 * broadcasts the payload as `msg`, and subscribers time publish → receive from the send time `t`
 * in the payload. The broadcast rate is stepped up until a step loses more than 0.1 % of the
 * deliveries or its p99 passes 100 ms.
 */
import { availableParallelism } from 'node:os';
import { Child } from '../lib/ipc.js';
import { Fleet, SHARED, split } from '../lib/fleet.js';
import { merge, summary, type LatencySummary } from '../lib/hdr.js';
import { cpuMs } from '../lib/proc.js';
import { formatNumber } from '../lib/report.js';
import { fromRuns, repeat } from '../lib/repeat.js';
import { realTime } from '../../support/wait.js';
import { untilOrTimeout } from '../lib/runtime.js';
import type { BenchContext, Metric, Suite, SuiteOutput } from '../types.js';

const TOPICS = 100;
const SOURCE = 'issue 5 B6';
/** A step passes when at least this share of the offered deliveries arrived … */
const MIN_DELIVERED = 0.999;
/** … and its p99 publish → receive latency is at most this (ms). */
const MAX_P99_MS = 100;
/** The latency goal applies at this delivery rate (the step closest to it is reported). */
const LATENCY_AT = 100_000;
/**
 * Issue 15 B6: CPU per delivery on TOPICS topics at most this many times the figure of one topic
 * holding every subscriber, at the same deliveries/s (so the per-broadcast work is what differs).
 */
const MAX_TOPICS_RATIO = 1.5;

interface Options {
  subscribers: number;
  /** Broadcasts per second (all topics together), in order. */
  steps: number[];
  stepMs: number;
  reps: number;
  payloadBytes: number;
  /** The unmeasured warm-up step's length (0: none). */
  warmupMs: number;
  /** Subscriber generator processes (one more publishes). */
  subscriberGenerators: number;
}

const FULL: Options = {
  subscribers: 10_000,
  steps: [100, 250, 500, 1000, 2500, 5000],
  stepMs: 4000,
  reps: 3,
  payloadBytes: 100,
  warmupMs: 500,
  subscriberGenerators: 2,
};
/** Checks the scenario end to end (join, publish, deliveries counted and timed), not its numbers. */
const QUICK: Options = {
  subscribers: 400,
  steps: [250],
  stepMs: 500,
  reps: 1,
  payloadBytes: 100,
  warmupMs: 0,
  // The fleet all quick suites share: one subscriber generator and the publisher.
  subscriberGenerators: SHARED.generators - 1,
};

interface StepResult {
  broadcastsPerSec: number;
  /** Broadcasts the publishers sent (and that were answered ok / not). */
  sent: number;
  publishErrors: number;
  offered: number;
  delivered: number;
  deliveredShare: number;
  /** Delivered per second of the step's publishing window. */
  deliveriesPerSec: number;
  latency: LatencySummary;
  gatewayCpuMs: number;
  cpuPerDeliveryUs: number;
  /** Share of one core over the step (gateway, subscriber generators, publisher generator). */
  gatewayCore: number;
  subscriberCores: number[];
  publisherCore: number;
  wallMs: number;
  passed: boolean;
}

interface FanoutTake {
  deliveries: number;
  histogram: string;
}

interface PublishResult {
  sent: number;
  ok: number;
  errors: number;
}

/** One step: open-loop broadcasts for `stepMs`, then waits for the last deliveries. */
async function runStep(
  fleet: Fleet,
  subscriberGens: number[],
  publisherGen: number,
  rate: number,
  options: Options,
  perTopic: number,
  cpu: () => number,
): Promise<StepResult> {
  const generators = fleet.generators;
  // Discard whatever arrived before the step.
  await Promise.all(
    generators.map((generator) => generator.call<FanoutTake>('fanout', { reset: true })),
  );
  const genCpu0 = generators.map((generator) => cpuMs(generator.pid));
  const cpu0 = cpu();
  const t0 = performance.now();
  const published = await generators[publisherGen]!.call<PublishResult>(
    'publish',
    { pool: 'pub', rate, durationMs: options.stepMs, bytes: options.payloadBytes },
    options.stepMs + 30_000,
  );
  const offered = published.ok * perTopic;
  // Every reply is in, so the gateway has written every delivery: wait for the stragglers.
  const count = async () => {
    const takes = await Promise.all(
      subscriberGens.map((index) =>
        generators[index]!.call<FanoutTake>('fanout', { reset: false }),
      ),
    );
    return takes.reduce((sum, take) => sum + take.deliveries, 0);
  };
  // Until every offered delivery arrived, or none arrived for 1 s (the rest is lost), or 10 s.
  let last = -1;
  let lastChange = performance.now();
  await untilOrTimeout(
    async () => {
      const now = await count();
      if (now >= offered) return true;
      if (now !== last) {
        last = now;
        lastChange = performance.now();
        return false;
      }
      return performance.now() - lastChange > 1000;
    },
    'every offered delivery, or none for 1 s',
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  const wallMs = performance.now() - t0;
  const gatewayCpuMs = cpu() - cpu0;
  const genCpu = generators.map((generator, i) => cpuMs(generator.pid) - genCpu0[i]!);
  const takes = await Promise.all(
    generators.map((generator) => generator.call<FanoutTake>('fanout', { reset: true })),
  );
  const subscriberTakes = subscriberGens.map((index) => takes[index]!);
  const delivered = subscriberTakes.reduce((sum, take) => sum + take.deliveries, 0);
  const histogram = merge(subscriberTakes.map((take) => take.histogram));
  const latency = summary(histogram);
  histogram.destroy();
  const deliveredShare = offered === 0 ? 0 : delivered / offered;
  return {
    broadcastsPerSec: rate,
    sent: published.sent,
    publishErrors: published.errors,
    offered,
    delivered,
    deliveredShare,
    deliveriesPerSec: delivered / (options.stepMs / 1000),
    latency,
    gatewayCpuMs,
    cpuPerDeliveryUs: delivered === 0 ? Number.NaN : (gatewayCpuMs * 1000) / delivered,
    gatewayCore: gatewayCpuMs / wallMs,
    subscriberCores: subscriberGens.map((index) => genCpu[index]! / wallMs),
    publisherCore: genCpu[publisherGen]! / wallMs,
    wallMs,
    passed: published.errors === 0 && deliveredShare >= MIN_DELIVERED && latency.p99 <= MAX_P99_MS,
  };
}

/** Subscribers and publishers join `url`, then the broadcast rate steps up (`options.reps` times). */
async function ladder(
  ctx: BenchContext,
  fleet: Fleet,
  options: Options,
  perTopic: number,
  subscriberGens: number[],
  publisherGen: number,
  url: string,
  cpu: () => number,
  label: string,
  addressOffset = 0,
): Promise<{ reps: StepResult[][]; latencyStep: number; counts: number[] }> {
  const topics = Math.round(options.subscribers / perTopic);
  const counts = split(options.subscribers, subscriberGens.length);
  let offset = 0;
  const offsets = counts.map((count) => {
    const at = offset;
    offset += count;
    return at;
  });
  const joins = await Promise.all(
    subscriberGens.map((generator, i) =>
      fleet.generators[generator]!.call<{
        joined: number;
        failed: number;
        errors: string[];
        wallMs: number;
      }>(
        'connect',
        {
          pool: 'sub',
          url: url,
          count: counts[i],
          localAddress: Fleet.sourceAddress(generator + addressOffset),
          concurrency: 200,
          topic: 'fan:{i}',
          topics,
          offset: offsets[i],
          heartbeatMs: 30_000,
        },
        120_000,
      ),
    ),
  );
  const failed = joins.reduce((sum, join) => sum + join.failed, 0);
  if (failed > 0)
    throw new Error(
      `${failed} subscribers could not join: ${joins.flatMap((join) => join.errors).join('; ')}`,
    );
  const publishers = await fleet.generators[publisherGen]!.call<{
    joined: number;
    failed: number;
    errors: string[];
  }>('connect', {
    pool: 'pub',
    url: url,
    count: topics,
    localAddress: Fleet.sourceAddress(publisherGen + addressOffset),
    concurrency: 50,
    topic: 'fan:{i}',
    topics,
    heartbeatMs: 30_000,
  });
  if (publishers.failed > 0)
    throw new Error(`publishers could not join: ${publishers.errors.join('; ')}`);
  ctx.log(
    `${label}: ${formatNumber(options.subscribers)} subscribers joined in ${(Math.max(...joins.map((join) => join.wallMs)) / 1000).toFixed(1)} s, ${topics} publishers`,
  );
  // A short warm-up (JIT, buffers), not measured.
  if (options.warmupMs > 0)
    await runStep(
      fleet,
      subscriberGens,
      publisherGen,
      options.steps[0]!,
      { ...options, stepMs: options.warmupMs },
      perTopic,
      cpu,
    );

  const latencyStep = options.steps.reduce((best, rate) =>
    Math.abs(rate * perTopic - LATENCY_AT) < Math.abs(best * perTopic - LATENCY_AT) ? rate : best,
  );
  const reps = await repeat(options.reps, async (rep) => {
    const steps: StepResult[] = [];
    for (const rate of options.steps) {
      const step = await runStep(fleet, subscriberGens, publisherGen, rate, options, perTopic, cpu);
      steps.push(step);
      ctx.log(
        `${label} rep ${rep + 1}/${options.reps} ${formatNumber(rate)} broadcasts/s (${formatNumber(rate * perTopic)} deliveries/s offered): ` +
          `${formatNumber(step.deliveriesPerSec)}/s delivered (${(step.deliveredShare * 100).toFixed(2)} %), p50 ${step.latency.p50.toFixed(2)} ms, p99 ${step.latency.p99.toFixed(2)} ms, ` +
          `${label} ${step.cpuPerDeliveryUs.toFixed(2)} µs/delivery (${pct(step.gatewayCore)} of a core), subscriber generators ${step.subscriberCores.map(pct).join(' + ')}${step.passed ? '' : ' — FAILED the step criterion'}`,
      );
      // Above the latency reference step, the first failed step ends the ladder.
      if (!step.passed && rate >= latencyStep) break;
      // Full runs only: the gateway's after-work of a step (GC, socket buffers) stays out of the next.
      if (!ctx.quick) await realTime(300, 'cool-down between steps');
    }
    return steps;
  });

  return { reps, latencyStep, counts };
}

const pct = (share: number): string => `${(share * 100).toFixed(0)} %`;

export const suite: Suite = {
  name: 'fanout',
  title: 'Broadcast fan-out (B6)',
  async run(ctx: BenchContext): Promise<SuiteOutput> {
    const options = ctx.quick ? QUICK : FULL;
    const perTopic = options.subscribers / TOPICS;
    // Two subscriber generators (127.0.0.2, .3) and a publisher generator (127.0.0.4): the
    // subscriber processes only receive.
    const subscriberGens = Array.from({ length: options.subscriberGenerators }, (_, i) => i);
    const publisherGen = options.subscriberGenerators;
    const startMini = () =>
      Child.fork(new URL('../proc/mini-phoenix-main.ts', import.meta.url)).then((started) => {
        ctx.defer(() => started.child.stop());
        return started;
      });
    // The floor's server: in quick runs it starts with the fleet (before anything is measured); in
    // full runs right before its ladder, so it sits idle in no gateway measurement.
    const early = ctx.quick ? startMini() : null;
    const [fleet] = await Promise.all([
      Fleet.start(ctx, { workers: 0, generators: publisherGen + 1 }),
      early,
    ]);
    ctx.log(
      `fleet up (gateway pid ${fleet.gateway.pid}); connecting ${formatNumber(options.subscribers)} subscribers`,
    );

    const gatewayCpu = () => fleet.gatewayCpuMs();
    const { reps, latencyStep, counts } = await ladder(
      ctx,
      fleet,
      options,
      perTopic,
      subscriberGens,
      publisherGen,
      fleet.wsUrl,
      gatewayCpu,
      'gateway',
    );
    await Promise.all(
      fleet.generators.map((generator, i) =>
        generator.call('close', { pool: i === publisherGen ? 'pub' : 'sub' }, 120_000),
      ),
    );

    // The same gateway, sockets and deliveries/s with every subscriber on one topic (one publisher,
    // broadcasts/s ÷ TOPICS): what the deliveries cost when each broadcast reaches TOPICS times as
    // many sockets. Issue 15's B6 goal compares the two.
    const oneTopic = await ladder(
      ctx,
      fleet,
      { ...options, reps: 1, steps: options.steps.map((rate) => rate / TOPICS) },
      options.subscribers,
      subscriberGens,
      publisherGen,
      fleet.wsUrl,
      gatewayCpu,
      'gateway, one topic',
      20,
    );
    await Promise.all(
      fleet.generators.map((generator, i) =>
        generator.call('close', { pool: i === publisherGen ? 'pub' : 'sub' }, 120_000),
      ),
    );

    // The floor, same sockets and ladder: a bare ws server with just enough Phoenix (join, pub →
    // broadcast, encoded once), no sessions or channels.
    const { child: mini, ready: miniReady } = await (early ?? startMini());
    const miniUrl = `ws://127.0.0.1:${miniReady.port as number}/socket/websocket?vsn=2.0.0`;
    const floor = await ladder(
      ctx,
      fleet,
      { ...options, reps: 1 },
      perTopic,
      subscriberGens,
      publisherGen,
      miniUrl,
      () => cpuMs(mini.pid),
      'minimal ws server',
      10,
    );
    await Promise.all(
      fleet.generators.map((generator, i) =>
        generator.call('close', { pool: i === publisherGen ? 'pub' : 'sub' }, 120_000),
      ),
    );

    const metrics: Metric[] = [];
    const capacity = `B6 fan-out: capacity (${formatNumber(options.subscribers)} subscribers, ${TOPICS} topics)`;
    const best = reps.map((steps) => {
      const passed = steps.filter((step) => step.passed);
      return passed.length === 0 ? null : passed[passed.length - 1]!;
    });
    const bestRuns = best.map((step) => step?.deliveriesPerSec ?? 0);
    const bestSteps = best.map((step) => (step ? formatNumber(step.broadcastsPerSec) : 'none'));
    const firstFailed = reps.map((steps, i) =>
      steps.find(
        (step) => !step.passed && step.broadcastsPerSec > (best[i]?.broadcastsPerSec ?? 0),
      ),
    );
    const floorSteps = floor.reps[0]!;
    const floorPassed = floorSteps.filter((step) => step.passed);
    const floorBest = floorPassed.length === 0 ? null : floorPassed[floorPassed.length - 1]!;
    metrics.push(
      {
        name: 'minimal ws server: highest sustained deliveries/s',
        value: floorBest?.deliveriesPerSec ?? 0,
        unit: '/s',
        group: capacity,
        isBaseline: true,
        note: `same sockets and ladder, once; step ${floorBest ? formatNumber(floorBest.broadcastsPerSec) : 'none'} broadcasts/s`,
      },
      fromRuns('highest sustained deliveries/s', bestRuns, '/s', {
        group: capacity,
        goal: { op: '>=', target: 250_000, source: SOURCE },
        baseline: 'minimal ws server: highest sustained deliveries/s',
        ratioLabel: 'minimal ws server',
        note: `step (broadcasts/s) per run: ${bestSteps.join(', ')}; the next step failed with ${firstFailed.map((step) => (step ? `${(step.deliveredShare * 100).toFixed(2)} % delivered, p99 ${formatNumber(step.latency.p99)} ms` : 'none (top of the ladder)')).join('; ')}`,
      }),
      fromRuns(
        'gateway CPU per delivery at the highest sustained step',
        // No step passed (an overloaded box): the first step's figure, so the run still has a number.
        best.map((step, i) => (step ?? reps[i]![0]!).cpuPerDeliveryUs),
        'µs',
        {
          group: capacity,
          goal: { op: '<=', target: 2, source: SOURCE },
          note: `gateway at ${best.map((step) => (step ? pct(step.gatewayCore) : '-')).join(', ')} of a core`,
        },
      ),
      fromRuns(
        'delivered/offered at the highest sustained step',
        best.map((step) => (step ? step.deliveredShare * 100 : 0)),
        '%',
        {
          group: capacity,
          goal: { op: '>=', target: MIN_DELIVERED * 100, source: 'spec §10.2 G7 (step criterion)' },
        },
      ),
    );

    // CPU per delivery at each rate both ran: the minimal server's is the floor.
    const perDelivery = 'B6 fan-out: CPU per delivery at the same broadcast rate (same-run floor)';
    for (const floorStep of floorSteps) {
      const rate = floorStep.broadcastsPerSec;
      const gatewayRuns = reps
        .map((steps) => steps.find((step) => step.broadcastsPerSec === rate))
        .filter((step): step is StepResult => step !== undefined);
      if (gatewayRuns.length === 0 || !Number.isFinite(floorStep.cpuPerDeliveryUs)) continue;
      const label = `${formatNumber(rate * perTopic)} deliveries/s`;
      metrics.push(
        {
          name: `minimal ws server at ${label}`,
          value: floorStep.cpuPerDeliveryUs,
          unit: 'µs',
          group: perDelivery,
          isBaseline: true,
          note: `p99 ${formatNumber(floorStep.latency.p99)} ms, ${(floorStep.deliveredShare * 100).toFixed(2)} % delivered`,
        },
        fromRuns(
          `gateway at ${label}`,
          gatewayRuns.map((step) => step.cpuPerDeliveryUs),
          'µs',
          {
            group: perDelivery,
            baseline: `minimal ws server at ${label}`,
            ratioLabel: 'minimal ws server',
          },
        ),
      );
    }

    // CPU per delivery on TOPICS topics against one topic, at the same deliveries/s.
    const perTopicGroup = `B6 fan-out: CPU per delivery, ${TOPICS} topics × ${perTopic} against one topic × ${formatNumber(options.subscribers)} (same deliveries/s)`;
    for (const oneStep of oneTopic.reps[0]!) {
      const deliveries = oneStep.broadcastsPerSec * options.subscribers;
      const gatewayRuns = reps
        .map((steps) => steps.find((step) => step.broadcastsPerSec * perTopic === deliveries))
        .filter((step): step is StepResult => step !== undefined);
      if (gatewayRuns.length === 0 || !Number.isFinite(oneStep.cpuPerDeliveryUs)) continue;
      const label = `${formatNumber(deliveries)} deliveries/s`;
      metrics.push(
        {
          name: `one topic at ${label}`,
          value: oneStep.cpuPerDeliveryUs,
          unit: 'µs',
          group: perTopicGroup,
          isBaseline: true,
          note: `${formatNumber(oneStep.broadcastsPerSec)} broadcasts/s; p99 ${formatNumber(oneStep.latency.p99)} ms, ${(oneStep.deliveredShare * 100).toFixed(2)} % delivered; gateway ${pct(oneStep.gatewayCore)} of a core`,
        },
        fromRuns(
          `${TOPICS} topics at ${label}`,
          gatewayRuns.map((step) => step.cpuPerDeliveryUs),
          'µs',
          {
            group: perTopicGroup,
            baseline: `one topic at ${label}`,
            ratioLabel: 'one topic',
            goal: { op: '<=', target: MAX_TOPICS_RATIO, on: 'ratio', source: 'issue 15 B6' },
          },
        ),
      );
    }

    const latencyGroup = `B6 fan-out: publish → receive latency at ${formatNumber(latencyStep * perTopic)} deliveries/s`;
    const at = reps.map((steps) => steps.find((step) => step.broadcastsPerSec === latencyStep)!);
    metrics.push(
      fromRuns(
        'p50',
        at.map((step) => step.latency.p50),
        'ms',
        {
          group: latencyGroup,
          note: `${formatNumber(latencyStep)} broadcasts/s × ${perTopic} subscribers`,
        },
      ),
      fromRuns(
        'p99',
        at.map((step) => step.latency.p99),
        'ms',
        { group: latencyGroup, goal: { op: '<=', target: 50, source: SOURCE } },
      ),
      fromRuns(
        'p99.9',
        at.map((step) => step.latency.p999),
        'ms',
        { group: latencyGroup },
      ),
      fromRuns(
        'max',
        at.map((step) => step.latency.max),
        'ms',
        { group: latencyGroup },
      ),
      fromRuns(
        'delivered/offered',
        at.map((step) => step.deliveredShare * 100),
        '%',
        {
          group: latencyGroup,
          note: `${formatNumber(at[0]!.delivered)} of ${formatNumber(at[0]!.offered)} in run 1`,
        },
      ),
      fromRuns(
        'gateway CPU per delivery',
        at.map((step) => step.cpuPerDeliveryUs),
        'µs',
        {
          group: latencyGroup,
          note: `gateway ${at.map((step) => pct(step.gatewayCore)).join(', ')} of a core; subscriber generators ${at.map((step) => step.subscriberCores.map(pct).join(' + ')).join(', ')}`,
        },
      ),
    );

    const perStep = 'B6 fan-out: every step';
    for (const rate of options.steps) {
      const runs = reps
        .map((steps) => steps.find((step) => step.broadcastsPerSec === rate))
        .filter((step): step is StepResult => step !== undefined);
      if (runs.length === 0) continue;
      const label = `${formatNumber(rate)} broadcasts/s (${formatNumber(rate * perTopic)}/s offered)`;
      const verdicts = runs.map((step) => (step.passed ? 'pass' : 'fail')).join(', ');
      metrics.push(
        fromRuns(
          `${label}: delivered/s`,
          runs.map((step) => step.deliveriesPerSec),
          '/s',
          {
            group: perStep,
            note: `${(Math.min(...runs.map((step) => step.deliveredShare)) * 100).toFixed(2)} % delivered (worst run); step ${verdicts}`,
          },
        ),
        fromRuns(
          `${label}: p99`,
          runs.map((step) => step.latency.p99),
          'ms',
          {
            group: perStep,
            note: `p50 ${formatNumber(runs[0]!.latency.p50)} ms, max ${formatNumber(runs[0]!.latency.max)} ms (run 1)`,
          },
        ),
        fromRuns(
          `${label}: gateway CPU per delivery`,
          runs.map((step) => step.cpuPerDeliveryUs),
          'µs',
          {
            group: perStep,
            note: `gateway ${runs.map((step) => pct(step.gatewayCore)).join(', ')} of a core; subscriber generators ${runs.map((step) => step.subscriberCores.map(pct).join(' + ')).join(', ')}`,
          },
        ),
      );
    }

    const runsText =
      options.reps === 1
        ? 'once'
        : `${options.reps} times (the ladder again on the same sockets; figures are the median, with min / median / max)`;
    const notes = [
      `**Fan-out (B6; spec §10.2 G7/G8).** The gateway under test (\`startGateway\` in its own process, linked to a nats-server that this scenario does not use) with the bench \`fan:*\` channel: \`pub\` → \`channel.broadcast('msg', payload)\` → the local PubSub, which encodes each broadcast once per serializer and hands the same UTF-8 bytes to every subscriber's WebSocket. ${formatNumber(options.subscribers)} subscriber sockets joined to \`fan:0\` … \`fan:${TOPICS - 1}\` (${perTopic} per topic), from two generator processes (source addresses ${Fleet.sourceAddress(0)} and ${Fleet.sourceAddress(1)}, ${counts.join(' + ')} sockets) that only receive; ${TOPICS} publisher sockets, one per topic, on a third generator (${Fleet.sourceAddress(2)}). All sockets send a heartbeat every 30 s. Default socket options (message rate 1000/s per socket: a publisher pushes at most ${formatNumber(Math.max(...options.steps) / TOPICS)}/s).`,
      `**One topic (same run).** After the gateway's ladder every socket closes and the same ${formatNumber(options.subscribers)} subscribers join one topic (\`fan:0\`) on the same gateway, with one publisher socket; the ladder runs once at the same deliveries/s (${options.steps.map((rate) => formatNumber(rate / TOPICS)).join(', ')} broadcasts/s × ${formatNumber(options.subscribers)}). Each broadcast then reaches ${TOPICS} times as many sockets, so what a broadcast costs besides its deliveries (the publisher's frame and reply, encoding, the event-loop turn) is spread ${TOPICS} times thinner; the ratio to it is issue 15's B6 goal.`,
      `**Floor (same run).** After the gateway's ladders every socket closes and the same generators join the same topics on a minimal \`ws\` server in its own process (test/bench/proc/mini-phoenix-main.ts: just enough Phoenix V2 for the generators — join, leave, heartbeat, and \`pub\` broadcast to the topic's sockets, encoded once — with no sessions, channels, serializers, ordering or limits), which then runs the same ladder once. Its CPU per delivery at each rate is what any Node WebSocket server spends to write the same frames to the same sockets: on this box a write to a socket is a system call of several µs, and at these rates each subscriber gets about one frame per event-loop turn, so writes do not coalesce.`,
      `Each step publishes open loop at a fixed rate for ${options.stepMs / 1000} s: the publisher generator sends \`pub\` with a ~${options.payloadBytes} B payload carrying its send time \`t\` (epoch ms) round-robin over the topics, waits for every \`phx_reply\` (the reply follows the synchronous broadcast, so every delivery has been written by then), then the bench waits until all offered deliveries (${perTopic} per broadcast) arrived or none arrived for 1 s. Latency per delivery is receive time − \`t\` in the subscriber process (one clock, HDR histogram, both generators merged). A publisher is joined to its topic and gets the broadcast too; those deliveries are not counted (CPU per delivery divides the gateway's CPU by subscriber deliveries only, so it includes the inbound \`pub\` and its reply). Gateway CPU is user + system time from /proc over the whole step (publishing and drain).`,
      `Steps of ${options.steps.map(formatNumber).join(', ')} broadcasts/s (× ${perTopic} = ${options.steps.map((rate) => formatNumber(rate * perTopic)).join(', ')} deliveries/s offered). A step passes with ≥ ${MIN_DELIVERED * 100} % delivered, p99 ≤ ${MAX_P99_MS} ms and no publish errors; above the ${formatNumber(latencyStep * perTopic)}/s step the first failing step ends the ladder. "Highest sustained" = delivered/s of the highest passing step. ${options.warmupMs > 0 ? `A ${options.warmupMs / 1000} s warm-up step runs first.` : 'No warm-up step (quick).'} The ladder runs ${runsText}. Everything (gateway, three generators, nats-server) shares the box's ${availableParallelism()} cores: the generators' share of a core at each step is in the notes column; when they are near a full core the ceiling is the load generators', not the gateway's.`,
    ];
    return { metrics, notes };
  },
};

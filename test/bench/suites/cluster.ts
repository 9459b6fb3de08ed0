/**
 * Gateways on one NATS (issue 11, "Tests and benchmarks"). Four scenarios, each against a baseline
 * measured in the same run:
 *
 * 1. Cross-gateway fan-out: the same subscribers, topics and broadcast rate, first all on gateway
 *    A (B … idle on the same NATS), then spread over every gateway. Deliveries/s, p99 and gateway
 *    CPU per delivery (all gateways' CPU); goal: ≤ 1.3× the single gateway's.
 * 2. Interest: NATS messages an idle gateway (no subscriber of the topics) receives per broadcast
 *    while A fans out: its cluster PubSub's counter and nats-server's `/connz` for its connection.
 * 3. Presence convergence, as the Phoenix JS `Presence` client sees it on another gateway: after a
 *    join, and (full runs) after kill -9 of the gateway holding the entries.
 * 4. `gen-gateway --processes 2` against `--processes 1` on loads where one process is limited by
 *    its JS main thread and the generators stay cheap: closed loops of pre-encoded frames whose
 *    answers are counted, not parsed — in-process gen_api requests (the goal) and, full runs,
 *    channel echoes of a 3 KB JSON payload. Without goals (full runs): room fan-out to receive-only
 *    sockets and connect → join → leave → close cycles.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Presence, Socket, type Channel, type TransportConstructor } from 'phoenix';
import { Child } from '../lib/ipc.js';
import { Fleet, SHARED, split } from '../lib/fleet.js';
import { merge, summary, type LatencySummary } from '../lib/hdr.js';
import { MonitoredNats } from '../lib/monitored-nats.js';
import { cpuMs, machineBusyMs } from '../lib/proc.js';
import { formatNumber } from '../lib/report.js';
import { fromRuns, repeat } from '../lib/repeat.js';
import { median } from '../lib/stats.js';
import { untilOrTimeout } from '../lib/runtime.js';
import { ROOT } from '../../support/spawn.js';
import { realTime, until } from '../../support/wait.js';
import type { BenchContext, Metric, Suite, SuiteOutput } from '../types.js';

const SOURCE = 'issue 11';
const PROC = new URL('../proc/', import.meta.url);
/** A step passes with at least this share of the offered deliveries … */
const MIN_DELIVERED = 0.999;
/** … and a publish → receive p99 of at most this (ms). */
const MAX_P99_MS = 100;

/** What a closed loop measures: which frames, to which topic. */
interface LoopKind {
  name: string;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

/** gen_api requests to the in-process `bench.echo` (sync): a push with the result, then the reply. */
const GEN_API_LOOP: LoopKind = {
  name: 'in-process gen_api requests',
  topic: 'gen_api',
  event: 'phoenix_gen_api',
  payload: { request_id: '', service: 'bench', request_type: 'echo', args: { message: 'hello' } },
};

/**
 * `echo` on an `echo:<i>` channel with a ~3 KB JSON payload (a page of chat messages): the
 * gateway parses it and encodes it back in its reply.
 */
const ECHO_LOOP: LoopKind = {
  name: 'channel echoes (3 KB JSON)',
  topic: 'echo:{i}',
  event: 'echo',
  payload: {
    room: 'echo',
    messages: Array.from({ length: 16 }, (_, i) => ({
      id: `m${1000 + i}`,
      from: { id: `u${i % 5}`, name: `user ${i % 5}` },
      body: 'the quick brown fox jumps over the lazy dog, again and again',
      at: 1_765_000_000_000 + i * 1000,
      tags: ['chat', 'bench'],
      read: i % 2 === 0,
    })),
  },
};

interface Options {
  /** Gateways on the NATS server (the fan-out spreads over all of them). */
  gateways: number;
  subscribers: number;
  topics: number;
  /** Broadcasts per second (all topics together), stepped up. */
  steps: number[];
  stepMs: number;
  reps: number;
  /** Presence joins timed (one after the other). */
  presenceJoins: number;
  presenceTimeoutMs: number;
  /** Entries on the gateway killed for the leave measurement (0: not measured). */
  killEntries: number;
  /**
   * Room fan-out for --processes: receive-only sockets, over this many demo rooms (at most 10:
   * every delivery is then a frame of the same size, so counted bytes give the deliveries) …
   */
  sinks: number;
  rooms: number;
  /** … and the shouts per second (all rooms) the publisher offers, for how long. */
  shoutRate: number;
  shoutMs: number;
  /** Connection cycles per generator for the --processes comparison (0: not measured). */
  cycles: number;
  cycleConcurrency: number;
  generators: number;
  /**
   * The CPU-bound --processes comparisons (closed loops, runLoop): sockets per generator, each
   * with one batch in flight; warm-up, measured span; repetitions (1 and 2 processes in turn).
   */
  loopSockets: number;
  /** Frames per socket write (and in flight per socket). */
  loopBatch: number;
  loopWarmupMs: number;
  loopMs: number;
  loopReps: number;
  /** Which loops run; the first is the goal figure (full runs). */
  loops: LoopKind[];
  /** Whether the room fan-out (no goal) runs. */
  roomFanout: boolean;
}

const FULL: Options = {
  gateways: 3,
  subscribers: 6000,
  topics: 100,
  steps: [250, 500, 1000, 2000, 3000],
  stepMs: 3000,
  reps: 3,
  presenceJoins: 20,
  presenceTimeoutMs: 15_000,
  killEntries: 20,
  sinks: 2970,
  rooms: 9,
  shoutRate: 6000,
  shoutMs: 3000,
  cycles: 4000,
  cycleConcurrency: 50,
  generators: 3,
  loopSockets: 100,
  loopBatch: 4,
  loopWarmupMs: 1000,
  loopMs: 3000,
  loopReps: 3,
  loops: [GEN_API_LOOP, ECHO_LOOP],
  roomFanout: true,
};
/** Checks the scenarios end to end, not their numbers (the smoke adds ~10 s at most). */
const QUICK: Options = {
  gateways: 2,
  subscribers: 200,
  topics: 10,
  steps: [200],
  stepMs: 1000,
  reps: 1,
  presenceJoins: 1,
  presenceTimeoutMs: 2500,
  killEntries: 0,
  sinks: 200,
  rooms: 5,
  shoutRate: 200,
  shoutMs: 500,
  // Full runs only (the smoke's budget).
  cycles: 0,
  cycleConcurrency: 25,
  generators: SHARED.generators,
  loopSockets: 100,
  loopBatch: 4,
  loopWarmupMs: 200,
  loopMs: 500,
  loopReps: 1,
  loops: [GEN_API_LOOP],
  // Full runs only (the smoke's budget; it has no goal).
  roomFanout: false,
};

interface StepResult {
  rate: number;
  offered: number;
  delivered: number;
  deliveredShare: number;
  deliveriesPerSec: number;
  latency: LatencySummary;
  cpuMs: number;
  cpuPerDeliveryUs: number;
  /** What the idle gateways' cluster PubSub received per broadcast (phase "single" only). */
  idleReceived: number;
  /** Messages nats-server delivered to the idle gateways' cluster connections during the step. */
  idleNatsMsgs: number;
  broadcasts: number;
  wallMs: number;
  passed: boolean;
}

interface Gw {
  child: Child;
  port: number;
  nodeId: string;
  url: string;
}

const pct = (share: number): string => `${(share * 100).toFixed(0)} %`;

async function startGateway(ctx: BenchContext, natsUrl: string, nodeId: string): Promise<Gw> {
  const { child, ready } = await Child.fork(new URL('gateway-main.ts', PROC), {
    env: {
      BENCH_NATS_URL: natsUrl,
      BENCH_GATEWAY_CONFIG: JSON.stringify({ nodeId, demo: true }),
    },
    nodeArgs: ['--expose-gc'],
  });
  ctx.defer(() => child.stop(15_000));
  const port = ready.port as number;
  return {
    child,
    port,
    nodeId,
    url: `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=bench`,
  };
}

/** The generators: the quick run's shared fleet's, else this suite's own. */
async function generators(ctx: BenchContext, count: number): Promise<Child[]> {
  if (ctx.quick && ctx.deferToEnd) {
    const fleet = await Fleet.start(ctx, {
      workers: SHARED.workers,
      generators: SHARED.generators,
    });
    return fleet.generators;
  }
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const { child } = await Child.fork(new URL('generator-main.ts', PROC), {
        env: { BENCH_GENERATOR_ID: `c${i}` },
      });
      ctx.defer(() => child.stop(15_000));
      return child;
    }),
  );
}

/** One open-loop step: broadcasts at `rate` for `stepMs`, then the last deliveries. */
async function runStep(
  nats: MonitoredNats,
  gateways: Gw[],
  idle: Gw[],
  subscriberGens: Child[],
  publisherGen: Child,
  rate: number,
  options: Options,
  perTopic: number,
): Promise<StepResult> {
  const takeAll = (reset: boolean) =>
    Promise.all(
      subscriberGens.map((gen) =>
        gen.call<{ deliveries: number; histogram: string }>('fanout', { reset }),
      ),
    );
  await takeAll(true);
  const idleBefore = await Promise.all(
    idle.map(async (gw) => ({
      pubsub: (await gw.child.call<{ received: number }>('clusterPubSub'))?.received ?? 0,
      nats: (await nats.connection(`gen-gateway cluster ${gw.nodeId}`)).out_msgs,
    })),
  );
  const cpu = () => gateways.reduce((sum, gw) => sum + cpuMs(gw.child.pid), 0);
  const cpu0 = cpu();
  const t0 = performance.now();
  const published = await publisherGen.call<{ sent: number; ok: number; errors: number }>(
    'publish',
    { pool: 'pub', rate, durationMs: options.stepMs, bytes: 100 },
    options.stepMs + 30_000,
  );
  const offered = published.ok * perTopic;
  let last = -1;
  let lastChange = performance.now();
  await untilOrTimeout(
    async () => {
      const now = (await takeAll(false)).reduce((sum, take) => sum + take.deliveries, 0);
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
  const used = cpu() - cpu0;
  const takes = await takeAll(true);
  const take = {
    deliveries: takes.reduce((sum, one) => sum + one.deliveries, 0),
  };
  const histogram = merge(takes.map((one) => one.histogram));
  const latency = summary(histogram);
  histogram.destroy();
  const idleAfter = await Promise.all(
    idle.map(async (gw) => ({
      pubsub: (await gw.child.call<{ received: number }>('clusterPubSub'))?.received ?? 0,
      nats: (await nats.connection(`gen-gateway cluster ${gw.nodeId}`)).out_msgs,
    })),
  );
  const deliveredShare = offered === 0 ? 0 : take.deliveries / offered;
  return {
    rate,
    offered,
    delivered: take.deliveries,
    deliveredShare,
    deliveriesPerSec: take.deliveries / (options.stepMs / 1000),
    latency,
    cpuMs: used,
    cpuPerDeliveryUs: take.deliveries === 0 ? Number.NaN : (used * 1000) / take.deliveries,
    idleReceived: idleAfter.reduce(
      (sum, after, i) => sum + after.pubsub - idleBefore[i]!.pubsub,
      0,
    ),
    idleNatsMsgs: idleAfter.reduce((sum, after, i) => sum + after.nats - idleBefore[i]!.nats, 0),
    broadcasts: published.ok,
    wallMs,
    passed: published.errors === 0 && deliveredShare >= MIN_DELIVERED && latency.p99 <= MAX_P99_MS,
  };
}

/**
 * Subscribers join `on` (split evenly, every topic on every gateway), publishers join the first,
 * then the ladder runs `options.reps` times; every socket closes at the end.
 */
async function fanoutPhase(
  ctx: BenchContext,
  nats: MonitoredNats,
  all: Gw[],
  on: Gw[],
  subscriberGens: Child[],
  publisherGen: Child,
  options: Options,
  label: string,
): Promise<StepResult[][]> {
  // Every (gateway, subscriber generator) pair gets an equal share, every topic on each.
  const pairs = on.flatMap((gw) => subscriberGens.map((gen, g) => ({ gw, gen, g })));
  const counts = split(options.subscribers, pairs.length);
  let offset = 0;
  for (const [i, { gw, gen, g }] of pairs.entries()) {
    const joined = await gen.call<{ failed: number; errors: string[] }>(
      'connect',
      {
        pool: 'sub',
        url: gw.url,
        count: counts[i],
        localAddress: Fleet.sourceAddress(g),
        concurrency: 100,
        topic: 'fan:{i}',
        topics: options.topics,
        offset,
        heartbeatMs: 30_000,
      },
      120_000,
    );
    offset += counts[i]!;
    if (joined.failed > 0) throw new Error(`${label}: subscribers failed: ${joined.errors[0]}`);
  }
  const publishers = await publisherGen.call<{ failed: number; errors: string[] }>('connect', {
    pool: 'pub',
    url: on[0]!.url,
    count: options.topics,
    localAddress: Fleet.sourceAddress(5),
    concurrency: 50,
    topic: 'fan:{i}',
    topics: options.topics,
    heartbeatMs: 30_000,
  });
  if (publishers.failed > 0)
    throw new Error(`${label}: publishers failed: ${publishers.errors[0]}`);
  // Remote gateways subscribe to a topic on NATS as its first local subscriber joins: wait for
  // every gateway to hold its topics there before anything is measured.
  await until(async () => {
    const stats = await Promise.all(
      on.map((gw) => gw.child.call<{ topics: number } | null>('clusterPubSub')),
    );
    return stats.every((s) => (s?.topics ?? 0) >= options.topics);
  }, `${label}: every gateway subscribed to its topics on NATS`);
  const idle = all.filter((gw) => !on.includes(gw));
  const perTopic = options.subscribers / options.topics;
  const reps = await repeat(options.reps, async (rep) => {
    const steps: StepResult[] = [];
    for (const rate of options.steps) {
      const step = await runStep(
        nats,
        on,
        idle,
        subscriberGens,
        publisherGen,
        rate,
        options,
        perTopic,
      );
      steps.push(step);
      ctx.log(
        `${label} rep ${rep + 1}/${options.reps} ${formatNumber(rate)} broadcasts/s: ${formatNumber(step.deliveriesPerSec)} deliveries/s (${(step.deliveredShare * 100).toFixed(2)} %), p99 ${step.latency.p99.toFixed(2)} ms, ${step.cpuPerDeliveryUs.toFixed(2)} µs gateway CPU/delivery (${pct(step.cpuMs / step.wallMs)} of a core)${step.passed ? '' : ' — FAILED the step criterion'}`,
      );
      if (!step.passed) break;
    }
    return steps;
  });
  await Promise.all([
    ...subscriberGens.map((gen) => gen.call('close', { pool: 'sub' }, 120_000)),
    publisherGen.call('close', { pool: 'pub' }, 120_000),
  ]);
  return reps;
}

// ---- Presence -------------------------------------------------------------------------------

/** A Phoenix JS client socket (the real client) with its room channel and Presence. */
async function presenceClient(
  gw: Gw,
  topic: string,
  name: string,
): Promise<{ socket: Socket; channel: Channel; presence: Presence }> {
  const socket = new Socket(`ws://127.0.0.1:${gw.port}/socket`, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: name },
  });
  socket.connect();
  const channel = socket.channel(topic, { name });
  const presence = new Presence(channel);
  await new Promise<void>((resolve, reject) => {
    channel
      .join()
      .receive('ok', () => resolve())
      .receive('error', (reason: unknown) => reject(new Error(`join: ${JSON.stringify(reason)}`)))
      .receive('timeout', () => reject(new Error('join timeout')));
  });
  return { socket, channel, presence };
}

/** ms until `presence` (the JS client's view) satisfies `holds`, or null at the deadline. */
async function convergence(
  presence: Presence,
  holds: (keys: Set<string>) => boolean,
  started: number,
  timeoutMs: number,
): Promise<number | null> {
  const converged = await untilOrTimeout(
    () => holds(new Set(presence.list((key) => key))),
    'Presence to converge',
    { timeoutMs, intervalMs: 2 },
  );
  return converged ? performance.now() - started : null;
}

interface PresenceResult {
  joins: (number | null)[];
  leaves: (number | null)[];
  kill: number | null;
}

async function presenceScenario(
  options: Options,
  observerOn: Gw,
  joinerOn: Gw,
  victim: Gw | null,
): Promise<PresenceResult> {
  const topic = 'room:bench-presence';
  const observer = await presenceClient(observerOn, topic, 'observer');
  const opened: Socket[] = [observer.socket];
  try {
    const joins: (number | null)[] = [];
    const leaves: (number | null)[] = [];
    for (let i = 0; i < options.presenceJoins; i++) {
      const name = `joiner-${i}`;
      const started = performance.now();
      const joiner = await presenceClient(joinerOn, topic, name);
      const joined = await convergence(
        observer.presence,
        (keys) => keys.has(name),
        started,
        options.presenceTimeoutMs,
      );
      joins.push(joined);
      // Not converged (e.g. Presence that stays on its node): the next ones would not either.
      if (joined === null) {
        joiner.socket.disconnect();
        leaves.push(null);
        break;
      }
      const left = performance.now();
      joiner.socket.disconnect();
      // A leave is only seen after the join was.
      leaves.push(
        await convergence(
          observer.presence,
          (keys) => !keys.has(name),
          left,
          options.presenceTimeoutMs,
        ),
      );
    }
    let kill: number | null = null;
    if (victim && options.killEntries > 0) {
      const names = Array.from({ length: options.killEntries }, (_, i) => `doomed-${i}`);
      for (const name of names) opened.push((await presenceClient(victim, topic, name)).socket);
      const seen = await convergence(
        observer.presence,
        (keys) => names.every((name) => keys.has(name)),
        performance.now(),
        options.presenceTimeoutMs,
      );
      // Entries the observer never saw cannot be seen leaving.
      if (seen === null) return { joins, leaves, kill: null };
      const killedAt = performance.now();
      victim.child.process.kill('SIGKILL');
      kill = await convergence(
        observer.presence,
        (keys) => names.every((name) => !keys.has(name)),
        killedAt,
        options.presenceTimeoutMs,
      );
    }
    return { joins, leaves, kill };
  } finally {
    for (const socket of opened) socket.disconnect();
  }
}

// ---- --processes ----------------------------------------------------------------------------

interface CliGateway {
  processes: number;
  /** The command's processes: with N > 1 the primary (first) and the N gateway processes. */
  pids: () => number[];
  port: number;
  stop: () => Promise<void>;
}

/**
 * `gen-gateway --processes N` on a free port (dist/ when the runner built it, else src/ via tsx),
 * configured by test/bench/proc/processes-config.mjs (the demo, plus the in-process `bench`
 * service and the `echo:*` channel).
 */
async function startCli(
  ctx: BenchContext,
  natsUrl: string,
  processes: number,
): Promise<CliGateway> {
  const config = fileURLToPath(new URL('processes-config.mjs', PROC));
  const built = process.env.BENCH_BUILT === '1';
  const entry = built ? 'dist/cli/gen-gateway.js' : 'src/cli/gen-gateway.ts';
  const child = spawn(
    process.execPath,
    [
      ...(built ? [] : ['--import', 'tsx']),
      entry,
      ...['--config', config, '--port', '0', '--nats', natsUrl, '--log-level', 'info'],
      ...['--processes', String(processes)],
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', BENCH_NODE_ID: `bench-p${processes}` },
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  ctx.defer(stop);
  const listening = () =>
    out
      .split('\n')
      .filter((line) => line.includes('"msg":"gateway listening"'))
      .map((line) => JSON.parse(line) as { port: number; pid: number });
  const lines = await until(
    () => (listening().length >= processes ? listening() : null),
    () => `--processes ${processes} to listen: ${out.slice(-2000)}${err}`,
    { timeoutMs: 60_000, intervalMs: 20 },
  );
  return {
    processes,
    port: lines[0]!.port,
    // The primary accepts and hands out connections: its CPU counts too.
    pids: () =>
      [child.pid!, ...listening().map((line) => line.pid)].filter((p, i, a) => a.indexOf(p) === i),
    stop,
  };
}

interface LoopResult {
  perSec: number;
  completed: number;
  /** Batches never wholly answered, and sockets that got other bytes than the answers. */
  lost: number;
  misaligned: number;
  p50: number;
  p99: number;
  wallMs: number;
  /** CPU ms of each of the command's processes (primary first with N > 1). */
  processCpuMs: number[];
  generatorCpuMs: number;
  natsCpuMs: number;
  /** The whole machine's busy CPU ms (all cores) over the span. */
  machineMs: number;
  sockets: number;
  answerBytes: number[];
}

/**
 * A closed loop from every generator (`loopSockets` sockets each, one batch of `loopBatch` frames
 * in flight per socket; the answers counted by their bytes, never parsed) against one command:
 * after a warm-up, the requests answered per second over `loopMs`, and where the CPU went.
 */
async function runLoop(
  ctx: BenchContext,
  gens: Child[],
  nats: MonitoredNats,
  gateway: CliGateway,
  kind: LoopKind,
  options: Options,
): Promise<LoopResult> {
  const label = `--processes ${gateway.processes}: ${kind.name}`;
  const base = `ws://127.0.0.1:${gateway.port}/socket/websocket?vsn=2.0.0`;
  await Promise.all(
    gens.map(async (gen, g) => {
      const joined = await gen.call<{ failed: number; errors: string[] }>('connect', {
        pool: 'loop',
        url: `${base}&user_id=loop{i}`,
        count: options.loopSockets,
        localAddress: Fleet.sourceAddress(30 + g),
        concurrency: 20,
        topic: kind.topic,
        offset: g * options.loopSockets,
      });
      if (joined.failed > 0) throw new Error(`${label}: sockets failed: ${joined.errors[0]}`);
    }),
  );
  const started = await Promise.all(
    gens.map((gen) =>
      gen.call<{ sockets: number; answerBytes: number[] }>('loopStart', {
        pool: 'loop',
        event: kind.event,
        payload: kind.payload,
        batch: options.loopBatch,
      }),
    ),
  );
  await realTime(
    options.loopWarmupMs,
    'the closed loop warms up (JIT, caches) before it is measured',
  );
  const take = (reset: boolean) =>
    Promise.all(
      gens.map((gen) => gen.call<{ completed: number; histogram: string }>('loopTake', { reset })),
    );
  const processCpu = () => gateway.pids().map((pid) => cpuMs(pid));
  const generatorCpu = () => gens.reduce((sum, gen) => sum + cpuMs(gen.pid), 0);
  await take(true);
  const cpu0 = processCpu();
  const gen0 = generatorCpu();
  const nats0 = cpuMs(nats.pid);
  const machine0 = machineBusyMs();
  const t0 = performance.now();
  await realTime(options.loopMs, 'the closed loop runs its measured span');
  const takes = await take(true);
  const wallMs = performance.now() - t0;
  const cpu1 = processCpu();
  const result = {
    processCpuMs: cpu1.map((ms, i) => ms - (cpu0[i] ?? 0)),
    generatorCpuMs: generatorCpu() - gen0,
    natsCpuMs: cpuMs(nats.pid) - nats0,
    machineMs: machineBusyMs() - machine0,
  };
  const stopped = await Promise.all(
    gens.map((gen) => gen.call<{ lost: number; misaligned: number }>('loopStop')),
  );
  await Promise.all(gens.map((gen) => gen.call('close', { pool: 'loop' }, 60_000)));
  const histogram = merge(takes.map((one) => one.histogram));
  const latency = summary(histogram);
  histogram.destroy();
  const completed = takes.reduce((sum, one) => sum + one.completed, 0);
  const loop: LoopResult = {
    perSec: completed / (wallMs / 1000),
    completed,
    lost: stopped.reduce((sum, one) => sum + one.lost, 0),
    misaligned: stopped.reduce((sum, one) => sum + one.misaligned, 0),
    p50: latency.p50,
    p99: latency.p99,
    wallMs,
    ...result,
    sockets: started.reduce((sum, one) => sum + one.sockets, 0),
    answerBytes: [...new Set(started.flatMap((one) => one.answerBytes))],
  };
  ctx.log(
    `${label}: ${formatNumber(loop.perSec)}/s over ${loop.sockets} sockets (answers of ${loop.answerBytes.join(', ')} bytes), p99 ${formatNumber(loop.p99)} ms, ${loop.lost} lost, ${loop.misaligned} misaligned; ${cpuNote(loop)}`,
  );
  return loop;
}

/** Where the cores went during a closed loop, as shares of one core. */
function cpuNote(loop: LoopResult): string {
  const share = (ms: number) => pct(ms / loop.wallMs);
  const processes =
    loop.processCpuMs.length === 1
      ? `gateway ${share(loop.processCpuMs[0]!)}`
      : `primary ${share(loop.processCpuMs[0]!)}, gateway processes ${loop.processCpuMs
          .slice(1)
          .map(share)
          .join(' + ')}`;
  const perRequest = (ms: number) => `${formatNumber((ms * 1000) / loop.completed)} µs`;
  const gatewayMs = loop.processCpuMs.reduce((sum, ms) => sum + ms, 0);
  return `CPU (share of one core): ${processes}; generators ${share(loop.generatorCpuMs)}; nats-server ${share(loop.natsCpuMs)}; whole machine ${share(loop.machineMs)} of ${availableParallelism() * 100} %. Per request: gateway ${perRequest(gatewayMs)}, generators ${perRequest(loop.generatorCpuMs)}`;
}

interface RoomFanoutResult {
  deliveriesPerSec: number;
  offered: number;
  delivered: number;
  shouts: number;
  cpuMs: number;
  /** The receiving generators' CPU over the same span. */
  sinkCpuMs: number;
  wallMs: number;
}

/**
 * Receive-only sockets (frames counted, not parsed) in the demo rooms, a publisher per room
 * pushing `shout` open loop: deliveries per second of the whole run (drain included). The
 * gateway writes every delivery; the clients barely read: what one process can write is the limit.
 */
async function runRoomFanout(
  ctx: BenchContext,
  gens: Child[],
  gateway: CliGateway,
  options: Options,
  label: string,
): Promise<RoomFanoutResult> {
  const base = `ws://127.0.0.1:${gateway.port}/socket/websocket?vsn=2.0.0`;
  const sinkGens = gens.slice(0, -1);
  const publisher = gens.at(-1)!;
  const counts = split(options.sinks, sinkGens.length);
  let offset = 0;
  await Promise.all(
    sinkGens.map(async (gen, g) => {
      const at = offset;
      offset += counts[g]!;
      const joined = await gen.call<{ failed: number; errors: string[] }>(
        'connect',
        {
          pool: 'sink',
          url: `${base}&user_id=sink{i}`,
          count: counts[g],
          localAddress: Fleet.sourceAddress(10 + g),
          concurrency: 50,
          topic: 'room:fan-{i}',
          topics: options.rooms,
          offset: at,
          heartbeatMs: 30_000,
          sink: true,
        },
        120_000,
      );
      if (joined.failed > 0) throw new Error(`${label}: sinks failed: ${joined.errors[0]}`);
    }),
  );
  const shouters = await publisher.call<{ failed: number; errors: string[] }>('connect', {
    pool: 'shout',
    url: `${base}&user_id=shout{i}`,
    count: options.rooms,
    localAddress: Fleet.sourceAddress(9),
    concurrency: 20,
    topic: 'room:fan-{i}',
    topics: options.rooms,
    heartbeatMs: 30_000,
  });
  if (shouters.failed > 0) throw new Error(`${label}: publishers failed: ${shouters.errors[0]}`);
  const sunk = async (reset: boolean) =>
    (await Promise.all(sinkGens.map((gen) => gen.call<number>('sunk', { reset })))).reduce(
      (sum, n) => sum + n,
      0,
    );
  // The joins' Presence diffs reach the sinks too: wait until none arrives for 300 ms.
  let last = -1;
  let since = performance.now();
  await until(
    async () => {
      const now = await sunk(false);
      if (now !== last) {
        last = now;
        since = performance.now();
        return false;
      }
      return performance.now() - since > 300;
    },
    `${label}: the joins' Presence traffic to settle`,
    { timeoutMs: 60_000, intervalMs: 50 },
  );
  await sunk(true);
  const perRoom = options.sinks / options.rooms;
  // The frame every sink of room i gets per shout (V2 JSON, server frames unmasked, 2-byte header).
  const frameBytes =
    2 + JSON.stringify([null, null, 'room:fan-0', 'shout', { from: 'shout0', body: null }]).length;
  const cpu = () => gateway.pids().reduce((sum, pid) => sum + cpuMs(pid), 0);
  const sinkCpu = () => sinkGens.reduce((sum, gen) => sum + cpuMs(gen.pid), 0);
  const cpu0 = cpu();
  const sinkCpu0 = sinkCpu();
  const t0 = performance.now();
  const published = await publisher.call<{ ok: number; errors: number }>(
    'publish',
    { pool: 'shout', event: 'shout', rate: options.shoutRate, durationMs: options.shoutMs },
    options.shoutMs + 30_000,
  );
  const offered = published.ok * perRoom;
  const offeredBytes = offered * frameBytes;
  let seen = -1;
  let changed = performance.now();
  let lastArrival = performance.now();
  await untilOrTimeout(
    async () => {
      const now = await sunk(false);
      if (now >= offeredBytes) {
        lastArrival = performance.now();
        return true;
      }
      if (now !== seen) {
        seen = now;
        changed = lastArrival = performance.now();
        return false;
      }
      return performance.now() - changed > 1000;
    },
    `${label}: every offered delivery, or none for 1 s`,
    { timeoutMs: 30_000, intervalMs: 20 },
  );
  const wallMs = lastArrival - t0;
  const used = cpu() - cpu0;
  const sinkUsed = sinkCpu() - sinkCpu0;
  const delivered = Math.round((await sunk(true)) / frameBytes);
  await Promise.all([
    ...sinkGens.map((gen) => gen.call('close', { pool: 'sink' }, 120_000)),
    publisher.call('close', { pool: 'shout' }, 60_000),
  ]);
  const result = {
    deliveriesPerSec: delivered / (wallMs / 1000),
    offered,
    delivered,
    shouts: published.ok,
    cpuMs: used,
    sinkCpuMs: sinkUsed,
    wallMs,
  };
  ctx.log(
    `${label}: room fan-out ${formatNumber(result.deliveriesPerSec)} deliveries/s (${formatNumber(delivered)} of ${formatNumber(offered)} in ${(wallMs / 1000).toFixed(2)} s), ${pct(used / wallMs)} of a core; receiving generators ${pct(sinkUsed / wallMs)}`,
  );
  return result;
}

interface CycleResult {
  cyclesPerSec: number;
  errors: number;
  p99: number;
  cpuMs: number;
  wallMs: number;
}

/** Connect → join gen_api → leave → close cycles from every generator at once. */
async function runCycles(
  gens: Child[],
  gateway: CliGateway,
  options: Options,
): Promise<CycleResult> {
  const url = `ws://127.0.0.1:${gateway.port}/socket/websocket?vsn=2.0.0&user_id=bench`;
  const cpu = () => gateway.pids().reduce((sum, pid) => sum + cpuMs(pid), 0);
  const cpu0 = cpu();
  const t0 = performance.now();
  const results = await Promise.all(
    gens.map((gen, g) =>
      gen.call<{ done: number; errors: number; errorSamples: string[]; histogram: string }>(
        'cycles',
        {
          url,
          count: options.cycles,
          concurrency: options.cycleConcurrency,
          topic: 'gen_api',
          requests: 0,
          // Closed sockets linger in TIME_WAIT: a few source addresses per generator.
          localAddresses: [0, 1, 2, 3].map((a) => Fleet.sourceAddress(20 + g * 4 + a)),
        },
        300_000,
      ),
    ),
  );
  const wallMs = performance.now() - t0;
  const histogram = merge(results.map((result) => result.histogram));
  const latency = summary(histogram);
  histogram.destroy();
  const done = results.reduce((sum, result) => sum + result.done, 0);
  return {
    cyclesPerSec: done / (wallMs / 1000),
    errors: results.reduce((sum, result) => sum + result.errors, 0),
    p99: latency.p99,
    cpuMs: cpu() - cpu0,
    wallMs,
  };
}

// ---- the suite ------------------------------------------------------------------------------

/** The highest passing step of each repetition (or the first step, when none passed). */
function best(reps: StepResult[][]): StepResult[] {
  return reps.map((steps) => steps.filter((step) => step.passed).at(-1) ?? steps[0]!);
}

export const suite: Suite = {
  name: 'cluster',
  title: 'Gateways on one NATS (issue 11)',
  async run(ctx: BenchContext): Promise<SuiteOutput> {
    const options = ctx.quick ? QUICK : FULL;
    const nats = await MonitoredNats.start();
    ctx.defer(() => nats.stop());
    const names = Array.from({ length: options.gateways }, (_, i) => `bench-${'abc'[i]}`);
    const [gateways, gens, cliOne, cliTwo] = await Promise.all([
      Promise.all(names.map((name) => startGateway(ctx, nats.url, name))),
      generators(ctx, options.generators),
      startCli(ctx, nats.url, 1),
      startCli(ctx, nats.url, 2),
    ]);
    // The last generator publishes; the others (one in quick runs) only receive.
    const publisherGen = gens.at(-1)!;
    const subscriberGens = gens.slice(0, -1);
    ctx.log(`${options.gateways} gateways, gen-gateway --processes 1 and 2 up on one nats-server`);

    // What the idle gateways' cluster connections get without any broadcast (Presence heartbeats
    // and the like): the background subtracted from what they get during phase 1.
    const idleNames = names.slice(1).map((name) => `gen-gateway cluster ${name}`);
    const idleMsgs = async () =>
      (await Promise.all(idleNames.map((name) => nats.connection(name)))).reduce(
        (sum, conn) => sum + conn.out_msgs,
        0,
      );
    const backgroundMs = options.stepMs;
    const background0 = await idleMsgs();
    const backgroundT0 = performance.now();
    await realTime(
      backgroundMs,
      "a span without broadcasts: the idle gateways' background NATS traffic",
    );
    const backgroundPerMs = ((await idleMsgs()) - background0) / (performance.now() - backgroundT0);

    // 1 + 2: the same fan-out on one gateway (the others idle), then over all of them.
    const single = await fanoutPhase(
      ctx,
      nats,
      gateways,
      [gateways[0]!],
      subscriberGens,
      publisherGen,
      options,
      'one gateway',
    );
    const spread = await fanoutPhase(
      ctx,
      nats,
      gateways,
      gateways,
      subscriberGens,
      publisherGen,
      options,
      `${options.gateways} gateways`,
    );

    // 3: Presence, observer on A, joiners on B; the last gateway is killed (full runs).
    const presence = await presenceScenario(
      options,
      gateways[0]!,
      gateways[1]!,
      options.killEntries > 0 ? gateways.at(-1)! : null,
    );
    ctx.log(
      `presence: join ${presence.joins.map((ms) => (ms === null ? 'none' : ms.toFixed(0))).join(', ')} ms; leave ${presence.leaves.map((ms) => (ms === null ? 'none' : ms.toFixed(0))).join(', ')} ms; kill ${presence.kill === null ? 'n/a' : presence.kill.toFixed(0)} ms`,
    );

    // 4: --processes 2 against 1, the same load (the other command sits idle meanwhile). First
    // the CPU-bound closed loops, 1 and 2 processes in turn (the order flips every repetition, so
    // that a drift of the box's load favours neither), then the other loads.
    const loops = new Map<LoopKind, { one: LoopResult[]; two: LoopResult[] }>(
      options.loops.map((kind) => [kind, { one: [], two: [] }]),
    );
    for (let rep = 0; rep < options.loopReps; rep++)
      for (const [kind, results] of loops) {
        const order = rep % 2 === 0 ? [cliOne, cliTwo] : [cliTwo, cliOne];
        for (const cli of order)
          (cli === cliOne ? results.one : results.two).push(
            await runLoop(ctx, gens, nats, cli, kind, options),
          );
      }
    const roomOne = options.roomFanout
      ? await runRoomFanout(ctx, gens, cliOne, options, '--processes 1')
      : null;
    const roomTwo = options.roomFanout
      ? await runRoomFanout(ctx, gens, cliTwo, options, '--processes 2')
      : null;
    const cycles =
      options.cycles > 0
        ? {
            one: await runCycles(gens, cliOne, options),
            two: await runCycles(gens, cliTwo, options),
          }
        : null;
    if (cycles)
      ctx.log(
        `cycles/s: --processes 1 ${formatNumber(cycles.one.cyclesPerSec)} (${cycles.one.errors} errors), --processes 2 ${formatNumber(cycles.two.cyclesPerSec)} (${cycles.two.errors} errors)`,
      );

    const metrics: Metric[] = [];
    const perTopic = options.subscribers / options.topics;
    const fanGroup = `Cross-gateway fan-out (${formatNumber(options.subscribers)} subscribers, ${options.topics} topics, publishers on gateway A)`;
    const singleBest = best(single);
    const spreadBest = best(spread);
    // CPU per delivery at the highest rate both sustained.
    const common = Math.min(...[...singleBest, ...spreadBest].map((step) => step.rate));
    const at = (reps: StepResult[][]) =>
      reps.map((steps) => steps.find((step) => step.rate === common) ?? steps[0]!);
    metrics.push(
      fromRuns(
        'one gateway: highest sustained deliveries/s',
        singleBest.map((step) => step.deliveriesPerSec),
        '/s',
        {
          group: fanGroup,
          isBaseline: true,
          note: `p99 ${singleBest.map((s) => formatNumber(s.latency.p99)).join(', ')} ms at ${singleBest.map((s) => formatNumber(s.rate)).join(', ')} broadcasts/s`,
        },
      ),
      fromRuns(
        `${options.gateways} gateways: highest sustained deliveries/s`,
        spreadBest.map((step) => step.deliveriesPerSec),
        '/s',
        {
          group: fanGroup,
          baseline: 'one gateway: highest sustained deliveries/s',
          ratioLabel: 'one gateway',
          note: `p99 ${spreadBest.map((s) => formatNumber(s.latency.p99)).join(', ')} ms at ${spreadBest.map((s) => formatNumber(s.rate)).join(', ')} broadcasts/s`,
        },
      ),
      fromRuns(
        `one gateway: p99 at ${formatNumber(common * perTopic)} deliveries/s`,
        at(single).map((step) => step.latency.p99),
        'ms',
        { group: fanGroup, isBaseline: true },
      ),
      fromRuns(
        `${options.gateways} gateways: p99 at ${formatNumber(common * perTopic)} deliveries/s`,
        at(spread).map((step) => step.latency.p99),
        'ms',
        {
          group: fanGroup,
          baseline: `one gateway: p99 at ${formatNumber(common * perTopic)} deliveries/s`,
          ratioLabel: 'one gateway',
          goal: { op: '<=', target: MAX_P99_MS, source: SOURCE },
        },
      ),
      fromRuns(
        `one gateway: CPU per delivery at ${formatNumber(common * perTopic)} deliveries/s`,
        at(single).map((step) => step.cpuPerDeliveryUs),
        'µs',
        {
          group: fanGroup,
          isBaseline: true,
          note: `${at(single)
            .map((s) => pct(s.cpuMs / s.wallMs))
            .join(', ')} of a core`,
        },
      ),
      fromRuns(
        `${options.gateways} gateways: CPU per delivery (all gateways) at ${formatNumber(common * perTopic)} deliveries/s`,
        at(spread).map((step) => step.cpuPerDeliveryUs),
        'µs',
        {
          group: fanGroup,
          baseline: `one gateway: CPU per delivery at ${formatNumber(common * perTopic)} deliveries/s`,
          ratioLabel: 'one gateway',
          goal: { op: '<=', target: 1.3, on: 'ratio', source: SOURCE },
          note: `${at(spread)
            .map((s) => pct(s.cpuMs / s.wallMs))
            .join(', ')} of a core (sum)`,
        },
      ),
    );

    const interest = 'Interest: a gateway without subscribers of the topics';
    const idleSteps = single.flat();
    const broadcasts = idleSteps.reduce((sum, step) => sum + step.broadcasts, 0);
    const idleCount = options.gateways - 1;
    metrics.push(
      {
        name: 'broadcasts its cluster PubSub received, per broadcast',
        value: idleSteps.reduce((sum, step) => sum + step.idleReceived, 0) / broadcasts / idleCount,
        unit: '',
        group: interest,
        goal: { op: '<=', target: 0, source: SOURCE },
        note: `${formatNumber(broadcasts)} broadcasts on gateway A; ${idleCount} idle gateway(s)`,
      },
      {
        name: 'NATS messages to its cluster connection without broadcasts',
        value: (backgroundPerMs * 1000) / idleCount,
        unit: '/s',
        group: interest,
        isBaseline: true,
        note: `nats-server /connz out_msgs over ${backgroundMs / 1000} s before the fan-out (cluster heartbeats and the like), per idle gateway: subtracted below`,
      },
      {
        name: 'NATS messages to its cluster connection, per broadcast',
        value:
          idleSteps.reduce(
            (sum, step) => sum + step.idleNatsMsgs - backgroundPerMs * step.wallMs,
            0,
          ) /
          broadcasts /
          idleCount,
        unit: '',
        group: interest,
        goal: { op: '<=', target: 0.01, source: SOURCE },
        note: `/connz out_msgs over the steps (${formatNumber(idleSteps.reduce((sum, step) => sum + step.idleNatsMsgs, 0))} in all) minus the background rate above`,
      },
    );

    const presenceGroup = 'Presence convergence (Phoenix JS Presence on another gateway)';
    const timed = (values: (number | null)[]) =>
      values.map((ms) => ms ?? options.presenceTimeoutMs);
    const missing = (values: (number | null)[]) => values.filter((ms) => ms === null).length;
    const joinNote = (values: (number | null)[], what: string) =>
      missing(values) > 0
        ? `did not converge within ${options.presenceTimeoutMs / 1000} s (counted as the deadline; the other joins were skipped)`
        : `${values.length} ${what}, max ${formatNumber(Math.max(...timed(values)))} ms`;
    metrics.push(
      fromRuns('after a join on another gateway', timed(presence.joins), 'ms', {
        group: presenceGroup,
        goal: { op: '<=', target: 2000, source: `${SOURCE} (demo contract)` },
        note: joinNote(presence.joins, 'joins'),
      }),
      fromRuns('after a leave on another gateway', timed(presence.leaves), 'ms', {
        group: presenceGroup,
        goal: { op: '<=', target: 2000, source: SOURCE },
        note: joinNote(presence.leaves, 'leaves'),
      }),
    );
    if (presence.kill !== null || options.killEntries > 0) {
      metrics.push({
        name: `after kill -9 of the gateway holding ${options.killEntries} entries`,
        value: presence.kill ?? options.presenceTimeoutMs,
        unit: 'ms',
        group: presenceGroup,
        goal: { op: '<=', target: 5000, source: `${SOURCE} (default removal of a dead node)` },
        note:
          presence.kill === null
            ? `did not converge within ${options.presenceTimeoutMs / 1000} s (counted as the deadline)`
            : 'until the observer lists none of them',
      });
    }

    const processesGroup = `gen-gateway --processes (same run, same load)`;
    for (const [index, [kind, results]] of [...loops].entries()) {
      const oneName = `--processes 1: ${kind.name}/s`;
      const loopNote = (runs: LoopResult[]) => {
        const mid =
          runs.find((run) => run.perSec === median(runs.map((r) => r.perSec))) ?? runs[0]!;
        return `${runs.length > 1 ? 'median run: ' : ''}p50 ${formatNumber(mid.p50)} ms, p99 ${formatNumber(mid.p99)} ms per batch, ${mid.lost} batches lost, ${mid.misaligned} sockets misaligned; ${cpuNote(mid)}`;
      };
      // Each repetition's 2-process figure against its own 1-process one (measured next to it).
      const ratios = results.two.map((two, i) => two.perSec / results.one[i]!.perSec);
      metrics.push(
        fromRuns(
          oneName,
          results.one.map((run) => run.perSec),
          '/s',
          { group: processesGroup, isBaseline: true, note: loopNote(results.one) },
        ),
        fromRuns(
          `--processes 2: ${kind.name}/s`,
          results.two.map((run) => run.perSec),
          '/s',
          {
            group: processesGroup,
            baseline: oneName,
            ratio: median(ratios),
            ratioLabel: `--processes 1${ratios.length > 1 ? ` (median of ${ratios.map((r) => formatNumber(r)).join(', ')})` : ''}`,
            // The goal line: the first loop, in full runs (a quick run's 0.5 s is noise).
            ...(index === 0 && !ctx.quick
              ? { goal: { op: '>=' as const, target: 1.1, on: 'ratio' as const, source: SOURCE } }
              : {}),
            note: loopNote(results.two),
          },
        ),
      );
    }
    if (roomOne && roomTwo) {
      const roomNote = (result: RoomFanoutResult) =>
        `${formatNumber(result.delivered)} of ${formatNumber(result.offered)} in ${(result.wallMs / 1000).toFixed(2)} s; ${pct(result.cpuMs / result.wallMs)} of a core (receiving generators ${pct(result.sinkCpuMs / result.wallMs)})`;
      metrics.push(
        {
          name: '--processes 1: room fan-out deliveries/s',
          value: roomOne.deliveriesPerSec,
          unit: '/s',
          group: processesGroup,
          isBaseline: true,
          note: roomNote(roomOne),
        },
        {
          name: '--processes 2: room fan-out deliveries/s',
          value: roomTwo.deliveriesPerSec,
          unit: '/s',
          group: processesGroup,
          baseline: '--processes 1: room fan-out deliveries/s',
          ratioLabel: '--processes 1',
          note: `${roomNote(roomTwo)} (primary + 2)`,
        },
      );
    }
    if (cycles)
      metrics.push(
        {
          name: '--processes 1: connect → join → leave → close cycles/s',
          value: cycles.one.cyclesPerSec,
          unit: '/s',
          group: processesGroup,
          isBaseline: true,
          note: `${options.generators} × ${formatNumber(options.cycles)} cycles, ${options.cycleConcurrency} at once per generator; p99 ${formatNumber(cycles.one.p99)} ms, ${cycles.one.errors} errors, ${pct(cycles.one.cpuMs / cycles.one.wallMs)} of a core`,
        },
        {
          name: '--processes 2: connect → join → leave → close cycles/s',
          value: cycles.two.cyclesPerSec,
          unit: '/s',
          group: processesGroup,
          baseline: '--processes 1: connect → join → leave → close cycles/s',
          ratioLabel: '--processes 1',
          note: `p99 ${formatNumber(cycles.two.p99)} ms, ${cycles.two.errors} errors, ${pct(cycles.two.cpuMs / cycles.two.wallMs)} of a core (primary + 2)`,
        },
      );

    const notes = [
      `**Cross-gateway fan-out.** ${options.gateways} gateway processes (test/bench/proc/gateway-main.ts: \`startGateway\` with the bench \`fan:*\` channel, \`demo: true\`) on one nats-server. Phase 1: ${formatNumber(options.subscribers)} subscriber sockets on ${options.topics} topics (${perTopic} per topic) all on gateway A, ${options.topics} publisher sockets on A; the other gateways are up on the same NATS with no subscriber. Phase 2: the same subscribers spread evenly over all ${options.gateways} gateways (every topic on every gateway), publishers still on A, so each broadcast crosses NATS once per other gateway. Each step publishes open loop for ${options.stepMs / 1000} s (steps ${options.steps.map(formatNumber).join(', ')} broadcasts/s, ${options.reps === 1 ? 'once' : `${options.reps} times, median with min / median / max`}); a step passes with ≥ ${MIN_DELIVERED * 100} % delivered and p99 ≤ ${MAX_P99_MS} ms, and the first failing step ends the ladder. Latency is publish → receive in the subscriber generator. Gateway CPU is the sum of every gateway process's user + system time over the step, divided by the deliveries.`,
      "**Interest.** While phase 1 runs, the idle gateways have no subscriber of any `fan:*` topic: their cluster PubSub counter (`received`) and nats-server's `/connz` `out_msgs` for their cluster connection (`gen-gateway cluster <node id>`) must not move with the broadcasts.",
      `**Presence.** The real Phoenix JS client and its \`Presence\` (\`presence.list()\` after \`onSync\`) on \`room:bench-presence\` (the demo \`room:*\` channel). An observer on gateway A; ${options.presenceJoins} times, a client joins on gateway B (time from its join until the observer lists it) and disconnects (until it is gone).${options.killEntries > 0 ? ` Then ${options.killEntries} clients join on gateway ${'abc'[options.gateways - 1]!.toUpperCase()}, which is killed with SIGKILL: time until the observer lists none of them.` : " The kill -9 measurement runs in full runs only (a dead gateway's entries leave after the 5 s default)."} A convergence that does not happen within ${options.presenceTimeoutMs / 1000} s counts as the deadline.`,
      `**--processes.** The real command (\`gen-gateway --processes N --nats … --config test/bench/proc/processes-config.mjs\`: the demo, plus an in-process \`bench\` service registered by the config's \`setup\` hook and an \`echo:*\` channel; built dist/ in full runs), 1 and 2 processes, the same load from the same ${options.generators} generator processes. **Goal figure: in-process gen_api requests**, a load where one gateway process is limited by its JS main thread while the load generators stay cheap. Each generator holds ${options.loopSockets} long-lived sockets (${options.loopSockets * options.generators} in all; the primary hands each accepted connection to a process, then stays out of the way) joined to \`gen_api\`; each socket runs a closed loop: one write of ${options.loopBatch} pre-encoded, pre-masked \`phoenix_gen_api\` frames (sync \`bench.echo\`, \`{"message":"hello"}\`, a \`request_id\` per socket and frame), and as soon as all their answers (a push with the result, then the phx_reply) arrived, counted by their bytes and never parsed, the same write again. Each socket first sends its batch twice parsed (every reply ok, every push a success, both answered with the same number of bytes: that size delimits the answers from then on; a socket that receives anything else is counted as misaligned). The function runs in the gateway process (\`genApi.register\`: \`nodes: "local"\`), so NATS carries none of it: the gateway parses, validates, checks permission and rate limits, runs the function and encodes the push and the reply; the notes give the CPU per request on each side. After ${options.loopWarmupMs / 1000} s of warm-up, requests answered per second over ${options.loopMs / 1000} s; ${options.loopReps === 1 ? 'once' : `${options.loopReps} repetitions, 1 and 2 processes in turn (the order flips every repetition), median; the ratio is the median of each repetition's 2-process figure over its 1-process one`}. So many sockets keep each one under the default per-socket message rate (1,000 frames/s; a denial would show as a misaligned socket). ${options.loops.length > 1 ? `Then (no goal) the same closed loop on \`echo:<i>\` (one channel per socket) with \`echo\` and a ${formatNumber(JSON.stringify(ECHO_LOOP.payload).length)}-byte JSON payload (16 chat messages) that the gateway parses and encodes back in its reply.` : 'The echo loop runs in full runs only.'} The CPU notes give every process's share of one core over the measured span (/proc user + system): the command's processes (with 2: the primary and each gateway process), the generators, nats-server, and the whole machine (/proc/stat, all cores; what is left is the bench runner, the idle gateways of the scenarios above and other jobs). ${options.roomFanout ? `Without goal: room fan-out. ${formatNumber(options.sinks)} receive-only sockets (generator sockets that, once joined, only count the bytes they receive) join ${options.rooms} demo rooms \`room:fan-<i>\` (${options.sinks / options.rooms} per room; the demo room tracks Presence, whose join traffic settles before the measurement), and one publisher socket per room pushes \`shout\` open loop, ${formatNumber(options.shoutRate)}/s in all for ${options.shoutMs / 1000} s (${formatNumber((options.shoutRate * options.sinks) / options.rooms)} deliveries/s offered); the figure is deliveries per second from the first shout to the last delivery. With 2 processes the sockets of a room are spread over both and every shout also crosses NATS to the other process. One process already uses up to ~1.2 cores on fan-out (kernel socket writes, GC threads), so a second one finds little idle CPU on this box; and the figure counts bytes, so Presence traffic of the joins that reaches the sinks during the measurement (a loaded box) counts as deliveries: delivered above offered in the note means the figure is too high.` : 'Room fan-out runs in full runs only.'} ${options.cycles > 0 ? `And each generator runs ${formatNumber(options.cycles)} connect → join \`gen_api\` → leave → close cycles, ${options.cycleConcurrency} at once (no goal: every connection passes through the primary, which accepts it and hands it to a process round robin over IPC).` : 'Connection cycles run in full runs only.'} This box has ${availableParallelism()} cores shared with the generators and nats-server: 2 processes can only win the CPU the rest leaves free.${ctx.quick ? ' Quick runs (the smoke): 0.5 s spans, one repetition, no goal (a check that the scenario runs, not a measurement).' : ''}`,
    ];
    return { metrics, notes, environment: { cores: String(availableParallelism()) } };
  },
};

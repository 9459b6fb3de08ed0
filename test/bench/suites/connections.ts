/**
 * Connections (issue 5 B1, B2, B9): 19 000 clients connect and join `gen_api` as fast as the
 * gateway accepts them (join rate, connect → join latency), then sit idle with Phoenix's 30 s
 * heartbeats while the gateway's CPU is measured (idle CPU per connection) and, after a full GC,
 * its RSS against the same process with no clients (memory per idle joined connection).
 */
import { Child } from '../lib/ipc.js';
import { Fleet, SHARED, split } from '../lib/fleet.js';
import { merge, summary, type LatencySummary } from '../lib/hdr.js';
import { cpuMs, slabBytes } from '../lib/proc.js';
import { fromRuns, repeat } from '../lib/repeat.js';
import { formatNumber } from '../lib/report.js';
import { realTime, until } from '../../support/wait.js';
import type { BenchContext, Metric, Suite, SuiteOutput } from '../types.js';

interface Options {
  /** Sockets in all (split over the generators). */
  total: number;
  generators: number;
  rounds: number;
  /** Connects in flight per generator. */
  concurrency: number;
  /** Idle time after the ramp before the CPU window. */
  settleMs: number;
  /** The idle CPU window. */
  windowMs: number;
  heartbeatMs: number;
}

const FULL: Options = {
  total: 19_000,
  generators: 2,
  rounds: 3,
  concurrency: 64,
  settleMs: 10_000,
  windowMs: 60_000,
  heartbeatMs: 30_000,
};
/** Checks the scenario end to end (ramp, idle window, GC, floors), not its numbers. */
const QUICK: Options = {
  total: 300,
  generators: SHARED.generators,
  rounds: 1,
  concurrency: 64,
  settleMs: 100,
  windowMs: 500,
  heartbeatMs: 30_000,
};

const POOL = 'idle';
const KB = 1024;
const MB = 1024 * 1024;

interface ConnectResult {
  joined: number;
  failed: number;
  errors: string[];
  wallMs: number;
  joinLatency: string;
}

interface Round {
  joined: number;
  failed: number;
  errorSamples: string[];
  joinsPerSec: number;
  rampMs: number;
  rampCpuUsPerJoin: number;
  /** Generator CPU (all generators) per client during the ramp. */
  rampGeneratorCpuUsPerJoin: number;
  latency: LatencySummary;
  rss0: number;
  rssN: number;
  heap0: number;
  heapN: number;
  external0: number;
  externalN: number;
  slabDelta: number;
  idleCpuMs: number;
  idleWindowMs: number;
  /** Sockets the gateway held at the start and the end of the idle window. */
  socketsBefore: number;
  socketsAfter: number;
  /** Sockets the generators still had open at the end. */
  openAfter: number;
}

/** CPU time of every generator process so far, ms. */
function generatorCpuMs(fleet: Fleet): number {
  return fleet.generators.reduce((sum, generator) => sum + cpuMs(generator.pid), 0);
}

/** Polls the gateway's gauges until `done` holds (or throws after `timeoutMs`). */
async function waitForGauges(
  fleet: Fleet,
  done: (gauges: Record<string, number>) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Record<string, number>> {
  let last: Record<string, number> = {};
  return until(
    async () => {
      last = await fleet.gauges();
      return done(last) ? last : null;
    },
    () => `${what} (gauges ${JSON.stringify(last)})`,
    { timeoutMs, intervalMs: 20 },
  );
}

async function round(
  ctx: BenchContext,
  fleet: Fleet,
  options: Options,
  index: number,
): Promise<Round> {
  await waitForGauges(
    fleet,
    (g) => g.sockets === 0 && g.channels === 0,
    30_000,
    'empty gateway before the round',
  );
  // The baseline: the same gateway process, no clients, after a full GC.
  const empty = await fleet.gc();
  const slab0 = slabBytes();
  const counts = split(options.total, options.generators);
  const offsets = counts.map((_, g) => counts.slice(0, g).reduce((a, b) => a + b, 0));
  const cpu0 = fleet.gatewayCpuMs();
  const generatorCpu0 = generatorCpuMs(fleet);
  const results = await fleet.onGenerators<ConnectResult>(
    'connect',
    (g) => ({
      pool: POOL,
      // A distinct user (and socket id) per client, as in production.
      url: fleet.wsUrl.replace('user_id=bench', `user_id=u${index}-{i}`),
      count: counts[g],
      // A fresh source address per generator and round: no TIME_WAIT left over from the last round.
      localAddress: Fleet.sourceAddress(g + index * options.generators),
      concurrency: options.concurrency,
      topic: 'gen_api',
      offset: offsets[g],
      heartbeatMs: options.heartbeatMs,
    }),
    120_000,
  );
  const rampCpuMs = fleet.gatewayCpuMs() - cpu0;
  const rampGeneratorCpuMs = generatorCpuMs(fleet) - generatorCpu0;
  const joined = results.reduce((sum, r) => sum + r.joined, 0);
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  const slowest = Math.max(...results.map((r) => r.wallMs));
  const histogram = merge(results.map((r) => r.joinLatency));
  const latency = summary(histogram);
  histogram.destroy();
  const joinsPerSec = joined / (slowest / 1000);
  ctx.log(
    `round ${index + 1}: ${joined} joined, ${failed} failed in ${formatNumber(slowest)} ms (${formatNumber(joinsPerSec)}/s), connect→join p50 ${latency.p50.toFixed(1)} ms p99 ${latency.p99.toFixed(1)} ms`,
  );

  // Idle: heartbeats only. Settle, then the CPU window.
  await realTime(
    options.settleMs,
    'settle: leftovers of the ramp (GC, late handshakes) stay out of the idle CPU window',
  );
  const socketsBefore = (await fleet.gauges()).sockets ?? Number.NaN;
  const idle0 = fleet.gatewayCpuMs();
  const w0 = performance.now();
  await realTime(options.windowMs, 'the idle CPU window: heartbeats only, measured as it passes');
  const idleCpuMs = fleet.gatewayCpuMs() - idle0;
  const idleWindowMs = performance.now() - w0;
  const socketsAfter = (await fleet.gauges()).sockets ?? Number.NaN;

  // Memory with every client joined and idle, after a full GC.
  const loaded = await fleet.gc();
  const slabDelta = slabBytes() - slab0;
  const open = await fleet.onGenerators<number>('open', () => ({ pool: POOL }));
  const openAfter = open.reduce((a, b) => a + b, 0);
  ctx.log(
    `round ${index + 1}: idle CPU ${formatNumber(idleCpuMs)} ms over ${formatNumber(idleWindowMs)} ms; RSS ${formatNumber(empty.rss / MB)} → ${formatNumber(loaded.rss / MB)} MB; slab +${formatNumber(slabDelta / MB)} MB`,
  );

  await fleet.onGenerators('close', () => ({ pool: POOL }), 60_000);
  await waitForGauges(
    fleet,
    (g) => g.sockets === 0 && g.channels === 0,
    30_000,
    'sockets closed after the round',
  );
  return {
    joined,
    failed,
    errorSamples: results.flatMap((r) => r.errors).slice(0, 5),
    joinsPerSec,
    rampMs: slowest,
    rampCpuUsPerJoin: (rampCpuMs * 1000) / Math.max(1, joined),
    rampGeneratorCpuUsPerJoin: (rampGeneratorCpuMs * 1000) / Math.max(1, joined),
    latency,
    rss0: empty.rss,
    rssN: loaded.rss,
    heap0: empty.heapUsed,
    heapN: loaded.heapUsed,
    external0: empty.external,
    externalN: loaded.external,
    slabDelta,
    idleCpuMs,
    idleWindowMs,
    socketsBefore,
    socketsAfter,
    openAfter,
  };
}

export const suite: Suite = {
  name: 'connections',
  title: 'Connections: join rate, idle memory and idle CPU (B1, B2, B9)',
  async run(ctx): Promise<SuiteOutput> {
    const options = ctx.quick ? QUICK : FULL;
    const startServer = (file: string) =>
      Child.fork(new URL(file, import.meta.url)).then((started) => {
        ctx.defer(() => started.child.stop());
        return started;
      });
    // The floors' servers: in quick runs they start with the fleet (before anything is measured);
    // in full runs right before their own part, so they sit idle in no gateway measurement.
    const early = ctx.quick
      ? {
          mini: startServer('../proc/mini-phoenix-main.ts'),
          echo: startServer('../proc/echo-main.ts'),
        }
      : null;
    const [fleet] = await Promise.all([
      // Joining gen_api needs no worker (the gateway authorizes it locally): quick runs ask none.
      Fleet.start(ctx, { workers: ctx.quick ? 0 : 1, generators: options.generators }),
      early?.mini,
      early?.echo,
    ]);
    const rounds = await repeat(options.rounds, (index) => round(ctx, fleet, options, index));

    // B9's floor, same run: the same clients connecting and joining a minimal ws server that
    // speaks just enough Phoenix (upgrade, join reply), no sessions or channels.
    const { child: mini, ready: miniReady } = await (early?.mini ??
      startServer('../proc/mini-phoenix-main.ts'));
    const floorCounts = split(options.total, options.generators);
    const floorRuns = await repeat(options.rounds, async (index) => {
      const cpu0 = cpuMs(mini.pid);
      const results = await fleet.onGenerators<ConnectResult>(
        'connect',
        (g) => ({
          pool: 'floor',
          url: `ws://127.0.0.1:${miniReady.port as number}/socket/websocket?vsn=2.0.0`,
          count: floorCounts[g],
          localAddress: Fleet.sourceAddress(40 + g + index * options.generators),
          concurrency: options.concurrency,
          topic: 'gen_api',
        }),
        120_000,
      );
      const cpu = cpuMs(mini.pid) - cpu0;
      const joined = results.reduce((sum, r) => sum + r.joined, 0);
      await fleet.onGenerators('close', () => ({ pool: 'floor' }), 60_000);
      return {
        joinsPerSec: joined / (Math.max(...results.map((r) => r.wallMs)) / 1000),
        cpuUsPerJoin: (cpu * 1000) / Math.max(1, joined),
      };
    });

    // B2's floor, same run: a bare `ws` echo server answering the same heartbeat traffic (the same
    // frames per second, in the same once-a-second bursts) from 100 sockets per generator.
    const { child: echo, ready: echoReady } = await (early?.echo ??
      startServer('../proc/echo-main.ts'));
    const heartbeatsPerSecond = Math.round(options.total / (options.heartbeatMs / 1000));
    const echoWindowMs = Math.min(options.windowMs, 20_000);
    const echoSockets = ctx.quick ? 10 : 100;
    const echoRuns = await repeat(options.rounds, async () => {
      const cpu0 = cpuMs(echo.pid);
      const t0 = performance.now();
      const perGenerator = split(heartbeatsPerSecond, options.generators);
      const answered = await fleet.onGenerators<{ sent: number; received: number }>(
        'echoBursts',
        (g) => ({
          url: `ws://127.0.0.1:${echoReady.port as number}`,
          count: echoSockets,
          perSecond: perGenerator[g],
          durationMs: echoWindowMs,
          localAddress: Fleet.sourceAddress(30 + g),
        }),
      );
      const cpu = cpuMs(echo.pid) - cpu0;
      const seconds = (performance.now() - t0) / 1000;
      if (answered.some((a) => a.received < a.sent))
        throw new Error(`the echo server missed frames: ${JSON.stringify(answered)}`);
      return (cpu * 1000) / options.total / seconds;
    });

    const n = (r: Round) => r.joined;
    const runs = (f: (r: Round) => number) => rounds.map(f);
    const metrics: Metric[] = [];

    const b9 = `B9: connect + join rate, ${formatNumber(options.total)} clients`;
    metrics.push(
      fromRuns(
        'minimal ws server: joins/s',
        floorRuns.map((r) => r.joinsPerSec),
        '/s',
        {
          group: b9,
          isBaseline: true,
          note: 'same clients, same generators (test/bench/proc/mini-phoenix-main.ts)',
        },
      ),
      fromRuns(
        'joins/s (sustained over the ramp)',
        runs((r) => r.joinsPerSec),
        '/s',
        {
          group: b9,
          goal: { op: '>=', target: 3000, source: 'issue 5 B9' },
          baseline: 'minimal ws server: joins/s',
          ratioLabel: 'minimal ws server',
          note: `${options.generators} generators × ${options.concurrency} connects in flight`,
        },
      ),
      fromRuns(
        'TCP connect → join ok p50',
        runs((r) => r.latency.p50),
        'ms',
        { group: b9 },
      ),
      fromRuns(
        'TCP connect → join ok p99',
        runs((r) => r.latency.p99),
        'ms',
        { group: b9 },
      ),
      fromRuns(
        'TCP connect → join ok max',
        runs((r) => r.latency.max),
        'ms',
        { group: b9 },
      ),
      fromRuns(
        'connect or join failures',
        runs((r) => r.failed),
        '',
        {
          group: b9,
          goal: { op: '<=', target: 0, source: 'issue 5 B9 (0 expected)' },
          ...(rounds.some((r) => r.errorSamples.length > 0)
            ? {
                note: rounds
                  .flatMap((r) => r.errorSamples)
                  .slice(0, 2)
                  .join('; '),
              }
            : {}),
        },
      ),
      fromRuns(
        'ramp wall time',
        runs((r) => r.rampMs / 1000),
        's',
        { group: b9 },
      ),
      fromRuns(
        'minimal ws server CPU per connect + join',
        floorRuns.map((r) => r.cpuUsPerJoin),
        'µs',
        { group: b9, isBaseline: true, note: 'HTTP upgrade, ws handshake, join reply' },
      ),
      fromRuns(
        'gateway CPU per connect + join',
        runs((r) => r.rampCpuUsPerJoin),
        'µs',
        {
          group: b9,
          baseline: 'minimal ws server CPU per connect + join',
          ratioLabel: 'minimal ws server',
          note: 'upgrade, connect hook, session, join, reply',
        },
      ),
      fromRuns(
        'generator CPU per connect + join',
        runs((r) => r.rampGeneratorCpuUsPerJoin),
        'µs',
        { group: b9, note: 'the load generators share the 2 cores' },
      ),
    );

    const b1 = `B1: memory per idle joined connection, ${formatNumber(options.total)} sockets`;
    const rssPerConn = runs((r) => (r.rssN - r.rss0) / n(r) / KB);
    metrics.push(
      fromRuns('gateway RSS per idle joined connection', rssPerConn, 'KB', {
        group: b1,
        goal: { op: '<=', target: 8, source: 'issue 5 B1' },
        note: `stretch ≤ 5 KB: ${Math.max(...rssPerConn) <= 5 ? 'pass' : Math.min(...rssPerConn) <= 5 ? 'some runs' : 'miss'}`,
      }),
      fromRuns(
        'gateway JS heap per connection',
        runs((r) => (r.heapN - r.heap0) / n(r) / KB),
        'KB',
        { group: b1, note: 'heapUsed after GC' },
      ),
      fromRuns(
        'gateway external memory per connection',
        runs((r) => (r.externalN - r.external0) / n(r) / KB),
        'KB',
        { group: b1, note: 'Buffers etc. outside the heap' },
      ),
      fromRuns(
        'kernel slab per socket',
        runs((r) => r.slabDelta / (2 * n(r)) / KB),
        'KB',
        {
          group: b1,
          note: 'box-wide Slab delta / 2N (both ends on this box; noisy when other jobs run)',
        },
      ),
      fromRuns(
        'empty gateway RSS (after GC)',
        runs((r) => r.rss0 / MB),
        'MB',
        { group: b1, isBaseline: true },
      ),
      fromRuns(
        `gateway RSS with ${formatNumber(options.total)} idle sockets (after GC)`,
        runs((r) => r.rssN / MB),
        'MB',
        { group: b1 },
      ),
    );

    const b2 = `B2: idle CPU, ${formatNumber(options.total)} sockets`;
    const idleUs = runs((r) => (r.idleCpuMs * 1000) / n(r) / (r.idleWindowMs / 1000));
    metrics.push(
      fromRuns(
        `raw ws echo server answering the same ${formatNumber(heartbeatsPerSecond)} heartbeats/s, per connection per second`,
        echoRuns,
        'µs',
        {
          group: b2,
          isBaseline: true,
          note: `${formatNumber(echoWindowMs / 1000)} s, ${echoSockets * options.generators} sockets, one burst a second`,
        },
      ),
      fromRuns('gateway CPU per idle connection per second', idleUs, 'µs', {
        group: b2,
        goal: { op: '<=', target: 1, source: 'issue 5 B2' },
        baseline: `raw ws echo server answering the same ${formatNumber(heartbeatsPerSecond)} heartbeats/s, per connection per second`,
        ratioLabel: 'raw ws echo, same heartbeats',
        note: `${formatNumber(options.windowMs / 1000)} s window; CPU ticks are 10 ms`,
      }),
      fromRuns(
        'gateway CPU while idle',
        runs((r) => (r.idleCpuMs / r.idleWindowMs) * 100),
        '% of a core',
        { group: b2 },
      ),
      fromRuns(
        'connections lost while idle',
        runs((r) => r.joined - Math.min(r.socketsAfter, r.openAfter)),
        '',
        {
          group: b2,
          goal: { op: '<=', target: 0, source: 'heartbeats answered (spec G2)' },
        },
      ),
    );

    const notes = [
      `**Setup.** One fleet for the whole suite: nats-server, 1 \`bench\` worker, the gateway in its own process (\`startGateway\`, default config: no connect limit, WebSocket idle timeout 60 s, timer wheel 250 ms), ${options.generators} generator processes, each on its own loopback source address (a fresh pair of addresses per round, 127.0.0.2+, so no TIME_WAIT is inherited). Every client has its own \`user_id\` in the connect params (so its own socket id in the registry) and joins \`gen_api\`, which the gateway authorizes locally (no worker round trip; the join handler is the default "everyone may join").`,
      `**Rounds.** ${options.rounds} round(s) of: empty gateway (gauges 0) → full GC → baseline RSS/heap and box Slab → ramp ${formatNumber(options.total)} clients → idle ${formatNumber(options.settleMs / 1000)} s settle + ${formatNumber(options.windowMs / 1000)} s CPU window → full GC → RSS/heap/Slab → close all → gauges back to 0. Figures are min / median / max over rounds.`,
      `**B9 floor (same run).** After the rounds, the same generators connect and join the same number of clients, the same way, to a minimal \`ws\` server in its own process that speaks just enough Phoenix V2 (upgrade, join reply; test/bench/proc/mini-phoenix-main.ts), once per round: the rate and CPU per connect any Node WebSocket server has on this box, without the gateway's handshake rules, sessions and channels.`,
      `**B9.** Closed loop by design (the scenario is "as fast as the gateway accepts"): each generator keeps ${options.concurrency} connect+join sequences in flight (${options.generators * options.concurrency} in all; more only queues in the listen backlog and inflates latency without raising the rate); both generators start together. joins/s = clients joined ÷ wall time of the slower generator. Latency per client from just before the TCP connect to the \`phx_reply\` ok of its \`phx_join\` (HDR histograms merged over generators), i.e. it includes the HTTP upgrade and any queueing in the gateway's accept backlog. Gateway CPU per join = gateway CPU time (/proc user+system) during the ramp ÷ clients.`,
      `**B1.** (RSS after full GC with N idle joined clients − RSS of the same process after full GC with 0 clients) ÷ N; the empty baseline is re-taken before each round (later rounds start from a process that already held N sockets once, so its allocator and heap are pre-grown; round 1 is the "cold" figure). Heap/external per connection likewise from \`process.memoryUsage()\`. Kernel slab (socket buffers live there, outside any RSS) from /proc/meminfo, divided by 2N since both ends of every socket are on this box; it is box-wide, so concurrent jobs add noise.`,
      `**B2.** Gateway CPU (user+system from /proc/<pid>/stat, 10 ms ticks) over a ${formatNumber(options.windowMs / 1000)} s window after ${formatNumber(options.settleMs / 1000)} s of settling, while every client sends a Phoenix heartbeat every ${options.heartbeatMs / 1000} s (≈${formatNumber(options.total / (options.heartbeatMs / 1000))} heartbeats/s in all, each generator sending its share in one burst a second; each is answered by the gateway). Divided by N and by the window in seconds. The baseline is a bare \`ws\` echo server (its own process) answering the same frames per second, in the same bursts, from ${echoSockets * options.generators} sockets, over up to 20 s: the floor for answering that traffic at all, without sessions, JSON or timers. "Connections lost" = joined − min(gateway socket gauge, sockets the generators still hold open) at the end of the window.`,
    ];
    if (ctx.quick)
      notes.push(
        `**Quick mode** (${formatNumber(options.total)} clients, ${options.windowMs / 1000} s window, 1 round): checks the suite runs; with so few sockets the idle CPU is near the 10 ms tick resolution.`,
      );
    return { metrics, notes };
  },
};

/**
 * The gateway under test, in its own process: `startGateway` (what `gen-gateway` runs) with the
 * config from BENCH_GATEWAY_CONFIG and NATS at BENCH_NATS_URL. The bench process reads its CPU and
 * RSS from /proc and drives it over IPC: gc, gauges, event-loop delay, CPU profiles.
 */
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { GatewayConfig } from '../../../src/config/file.js';
import { emit, serveCommands } from '../lib/ipc.js';
import { productModule } from '../lib/product.js';
import { profilingCommands } from '../lib/profiling.js';
import { gc } from '../lib/runtime.js';
import type * as LogLoggerModule from '../../../src/log/logger.js';
import type * as ServerModule from '../../../src/server.js';
import type * as ChannelTypesModule from '../../../src/channel/types.js';
import type * as DemoChatModule from '../../../src/demo/chat.js';

// The product from dist/ when the runner built it (as `npm start` runs it), else from src/.
const { createLogger } = (await import(productModule('log/logger.js'))) as typeof LogLoggerModule;
const { startGateway } = (await import(productModule('server.js'))) as typeof ServerModule;
const { defineChannel, error, ok } = (await import(
  productModule('channel/types.js')
)) as typeof ChannelTypesModule;
const { demoConnect } = (await import(productModule('demo/chat.js'))) as typeof DemoChatModule;

/** `fan:*`: join anything; `pub` broadcasts its payload as `msg` to the topic (fan-out scenarios). */
const fanChannel = defineChannel({
  join: () => ok(),
  handleIn(event, payload, channel) {
    if (event !== 'pub') return error({ reason: `unknown event ${event}` });
    channel.broadcast('msg', payload);
    return ok();
  },
});

const nats = process.env.BENCH_NATS_URL;
const fileConfig = JSON.parse(process.env.BENCH_GATEWAY_CONFIG ?? '{}') as GatewayConfig;
// Identity from connect params (as the demo), plus the fan-out channel: code a JSON file cannot hold.
// With an `auth` section the token decides identity (the two may not be combined).
const config: GatewayConfig = {
  ...fileConfig,
  socket: {
    checkOrigin: false,
    ...(fileConfig.auth === undefined ? { connect: demoConnect } : {}),
    ...fileConfig.socket,
  },
  channels: [{ pattern: 'fan:*', handler: fanChannel }],
  // The bench measures the gateway, not worker authentication: its NATS is a trusted network.
  ...(nats ? { nats: { trustedNetwork: true, ...fileConfig.nats, servers: nats } } : {}),
};
const logger = createLogger({
  level: (process.env.BENCH_LOG_LEVEL as 'error' | undefined) ?? 'error',
});

const running = await startGateway({
  config,
  fromFile: true,
  logger,
  host: '127.0.0.1',
  port: 0,
  ...(nats ? { nats } : {}),
});
const { gateway, genApi } = running;

// Off until a suite asks: its 10 ms timer wakes the process 100 times a second, which on this
// box alone costs ~15 ms of CPU per second (it would count as the gateway's idle CPU).
const eventLoop = monitorEventLoopDelay({ resolution: 10 });

/** Garbage-collection pauses since the last read (kind → count, total and longest ms). */
let gcPauses: Record<string, { count: number; totalMs: number; maxMs: number }> = {};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = String((entry as { detail?: { kind?: number } }).detail?.kind ?? entry.name);
    const stats = (gcPauses[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
    stats.count++;
    stats.totalMs += entry.duration;
    stats.maxMs = Math.max(stats.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });

/** Everything that must be back to 0 when no client is connected (soak checks). */
function gauges() {
  const nats = genApi.nats?.health();
  return {
    sockets: gateway.stats.sockets,
    channels: gateway.stats.channels,
    longpollSessions: gateway.stats.longpollSessions,
    topics: gateway.pubsub.topicCount(),
    subscriptions: gateway.pubsub.subscriberCount(),
    presences: gateway.presence.size,
    timers: gateway.wheel.size,
    inflight: genApi.executor.stats.inflight,
    streams: genApi.executor.stats.streams,
    natsPending: nats?.pendingRequests ?? 0,
    natsStreams: nats?.streams ?? 0,
  };
}

serveCommands(
  {
    gc: () => {
      gc();
      const usage = process.memoryUsage();
      return {
        rss: usage.rss,
        heapUsed: usage.heapUsed,
        external: usage.external,
        arrayBuffers: usage.arrayBuffers,
      };
    },
    memory: () => process.memoryUsage(),
    gauges,
    stats: () => ({
      gateway: { ...gateway.stats },
      executor: { ...genApi.executor.stats },
      nats: genApi.nats?.health() ?? null,
    }),
    /** Event-loop delay since eventLoopReset, in ms; the monitor stops. */
    eventLoop: () => {
      const delay = {
        p50: eventLoop.percentile(50) / 1e6,
        p99: eventLoop.percentile(99) / 1e6,
        max: eventLoop.max / 1e6,
        mean: eventLoop.mean / 1e6,
      };
      eventLoop.disable();
      return delay;
    },
    /** Starts (or restarts) the event-loop delay monitor. */
    eventLoopReset: () => {
      eventLoop.reset();
      eventLoop.enable();
    },
    /** GC pauses since the last call, by kind (1 scavenge, 2 mark-compact, 4 incremental, 8 weak callbacks). */
    gcPauses: () => {
      const taken = gcPauses;
      gcPauses = {};
      return taken;
    },
    /** The cluster PubSub's counters (broadcasts published, received, dropped; topics on NATS). */
    clusterPubSub: () =>
      (gateway.pubsub as { stats?: () => Record<string, number> }).stats?.() ?? null,
    ...profilingCommands(),
  },
  () => gateway.close(),
);

emit('ready', { port: running.address.port, pid: process.pid });

import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Registry,
  type CounterConfiguration,
  type GaugeConfiguration,
} from 'prom-client';
import type { AuthStats } from '../auth/connect.js';
import type { Gateway, HttpRoute } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';
import type { GatewayStats } from '../socket/stats.js';
import { GenApiRequestMetrics } from './genapi-requests.js';
import { resolveMetricsOptions, type MetricsOptions } from './options.js';
import { metricsRoute } from './route.js';

/** Every metric name starts with it. */
export const METRIC_PREFIX = 'gen_gateway_';

/** What `gatewayMetrics` reads besides the gateway and gen_api. */
export interface GatewayMetricsSources {
  /** The config's authentication counters (`auth` in the config file), or null. */
  auth?: AuthStats | null;
}

/** `gatewayMetrics(...)`: the registry, a route serving it, and `close()` to detach. */
export interface GatewayMetrics {
  /** This gateway's own registry (never prom-client's global one). */
  readonly registry: Registry;
  /** Serves the registry in the Prometheus text format (GET and HEAD); mount it with `gateway.route`. */
  readonly route: HttpRoute;
  /** Detaches the telemetry handlers (the gateway's `close()` does it too). */
  close(): void;
}

/** Socket close reasons counted from `GatewayStats` (`socket_closes_total{reason}`). */
const CLOSE_REASONS = [
  ['slow_consumer', 'slowConsumers'],
  ['flood', 'floods'],
  ['token_expired', 'tokenExpired'],
  ['invalid_frame', 'invalidFrames'],
  ['internal_error', 'internalErrors'],
] as const satisfies readonly (readonly [string, keyof GatewayStats])[];

const BREAKER_STATES = ['closed', 'open', 'half_open', 'isolated', 'stalled'] as const;
const NATS_STATES = ['connected', 'reconnecting', 'disconnected', 'closed'] as const;
const OTHER = 'other';

/** A counter whose value is read at scrape time (from counters the gateway keeps anyway). */
function readCounter(
  registry: Registry,
  config: Omit<CounterConfiguration<string>, 'registers' | 'collect'>,
  read: (set: (labels: Record<string, string>, value: number) => void) => void,
): Counter {
  return new Counter({
    ...config,
    registers: [registry],
    collect(this: Counter) {
      this.reset();
      read((labels, value) => this.inc(labels, value));
    },
  });
}

/** A gauge whose value is read at scrape time. */
function readGauge(
  registry: Registry,
  config: Omit<GaugeConfiguration<string>, 'registers' | 'collect'>,
  read: (set: (labels: Record<string, string>, value: number) => void) => void | Promise<void>,
): Gauge {
  return new Gauge({
    ...config,
    registers: [registry],
    collect(this: Gauge) {
      this.reset();
      return read((labels, value) => this.set(labels, value));
    },
  });
}

/** Keeps at most `limit` distinct values; the rest read as `other`. */
class BoundedLabels {
  private readonly seen = new Set<string>();
  constructor(private readonly limit: number) {}

  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit) return OTHER;
    this.seen.add(value);
    return value;
  }
}

/**
 * The Prometheus metrics of `gateway` (and its gen_api layer), names prefixed `gen_gateway_`, in
 * a registry of their own, so two gateways in one process never clash. Gauges and most counters
 * are read from the gateway's counters when scraped (nothing on the hot path); joins, connects
 * and gen_api requests come from `gateway.telemetry`. `startGateway` mounts the route at
 * `/metrics`; a library user mounts `route` wherever they like (README "Metrics").
 */
export function gatewayMetrics(
  gateway: Gateway,
  genApi: GenApi | null = null,
  options: MetricsOptions = {},
  sources: GatewayMetricsSources = {},
): GatewayMetrics {
  const resolved = resolveMetricsOptions(options);
  const registry = new Registry();
  const p = METRIC_PREFIX;
  const stats = gateway.stats;
  if (resolved.processMetrics) collectDefaultMetrics({ register: registry, prefix: p });

  // ---- sockets and channels ----------------------------------------------------------------
  readGauge(
    registry,
    { name: `${p}sockets`, help: 'Open sockets by transport.', labelNames: ['transport'] },
    (set) => {
      set({ transport: 'websocket' }, stats.sockets - stats.longpollSessions);
      set({ transport: 'longpoll' }, stats.longpollSessions);
    },
  );
  readGauge(
    registry,
    { name: `${p}channels`, help: 'Joined channels by transport.', labelNames: ['transport'] },
    (set) => {
      set({ transport: 'websocket' }, stats.channels - stats.longpollChannels);
      set({ transport: 'longpoll' }, stats.longpollChannels);
    },
  );
  readCounter(registry, { name: `${p}messages_in_total`, help: 'Client frames received.' }, (set) =>
    set({}, stats.messagesIn),
  );
  readCounter(
    registry,
    { name: `${p}messages_out_total`, help: 'Frames sent to clients.' },
    (set) => set({}, stats.messagesOut),
  );
  readCounter(
    registry,
    { name: `${p}bytes_in_total`, help: 'Bytes of client frames received (payloads).' },
    (set) => set({}, stats.bytesIn),
  );
  readCounter(
    registry,
    { name: `${p}bytes_out_total`, help: 'Bytes of frames sent to clients (payloads).' },
    (set) => set({}, stats.bytesOut),
  );
  readCounter(
    registry,
    {
      name: `${p}socket_closes_total`,
      help: 'Sockets the gateway closed, by reason (slow_consumer, flood, token_expired, invalid_frame, internal_error).',
      labelNames: ['reason'],
    },
    (set) => {
      for (const [reason, field] of CLOSE_REASONS) set({ reason }, stats[field]);
    },
  );
  readCounter(
    registry,
    { name: `${p}dropped_frames_total`, help: 'Frames not sent: the client cannot carry them.' },
    (set) => set({}, stats.droppedFrames),
  );
  readCounter(
    registry,
    {
      name: `${p}rate_limited_messages_total`,
      help: 'Client messages refused by the per-socket message rate.',
    },
    (set) => set({}, stats.rateLimitedMessages),
  );
  readCounter(
    registry,
    {
      name: `${p}rate_limited_connects_total`,
      help: 'Connects refused by the per-IP connect limit.',
    },
    (set) => set({}, stats.rateLimitedConnects),
  );
  readCounter(
    registry,
    {
      name: `${p}channel_errors_total`,
      help: 'Channel callbacks that threw or rejected (join, handleIn, handleOut, terminate).',
    },
    (set) => set({}, stats.channelErrors),
  );
  readCounter(
    registry,
    { name: `${p}connect_errors_total`, help: 'Connect hooks that threw (HTTP 500).' },
    (set) => set({}, stats.connectErrors),
  );

  // ---- from telemetry: connects, joins, gen_api requests -----------------------------------
  const telemetry = gateway.telemetry;
  const connects = new Counter({
    name: `${p}connects_total`,
    help: 'Connect attempts by transport and result; status is the HTTP status of a refusal.',
    labelNames: ['transport', 'result', 'status'],
    registers: [registry],
  });
  const joins = new Counter({
    name: `${p}channel_joins_total`,
    help: 'Channel joins by result; reason is the refusal reason ("" when joined).',
    labelNames: ['result', 'reason'],
    registers: [registry],
  });
  const reasons = new BoundedLabels(resolved.maxReasonLabels);
  const requests = new GenApiRequestMetrics(resolved.durationBuckets, resolved.maxFunctionLabels);
  requests.register(registry, p);
  const detach = [
    telemetry.on('socket_connected', (event) =>
      connects.inc({
        transport: event.transport,
        result: event.result,
        status: event.status === undefined ? '' : String(event.status),
      }),
    ),
    telemetry.on('channel_joined', (event) =>
      joins.inc({ result: event.result, reason: reasons.of(event.reason ?? '') }),
    ),
    telemetry.on('genapi_request', (event) => requests.record(event)),
  ];

  // ---- gen_api, NATS, discovery, breakers, rate limits -------------------------------------
  if (genApi !== null) {
    const executor = genApi.executor.stats;
    readGauge(
      registry,
      { name: `${p}genapi_inflight`, help: 'gen_api requests running now.' },
      (set) => set({}, executor.inflight),
    );
    readGauge(
      registry,
      { name: `${p}genapi_streams`, help: 'gen_api streams being relayed now.' },
      (set) => set({}, executor.streams),
    );
    readGauge(
      registry,
      {
        name: `${p}genapi_functions`,
        help: 'Function configs known (in-process and from workers).',
      },
      (set) => set({}, genApi.registry.count()),
    );
    readGauge(
      registry,
      {
        name: `${p}nats_connected`,
        help: 'Whether the NATS link is connected (1) or not (0: down, not connected yet, or no NATS configured).',
      },
      (set) => set({}, genApi.nats?.connected === true ? 1 : 0),
    );
    new Gauge({
      name: `${p}nats_rtt_seconds`,
      help: 'Round trip to the NATS server, seconds (NaN when not connected or no answer in time).',
      registers: [registry],
      async collect(this: Gauge) {
        const link = genApi.nats;
        if (link === null) {
          this.reset();
          return;
        }
        const ms = await link.rtt(resolved.natsRttTimeoutMs);
        this.set(ms === null ? Number.NaN : ms / 1000);
      },
    });
    readGauge(
      registry,
      {
        name: `${p}nats_status`,
        help: 'The NATS link state: 1 for the current one of connected, reconnecting, disconnected, closed.',
        labelNames: ['status'],
      },
      (set) => {
        const link = genApi.nats;
        if (link === null) return;
        const current = link.health().status;
        for (const status of NATS_STATES) set({ status }, status === current ? 1 : 0);
      },
    );
    readCounter(
      registry,
      { name: `${p}nats_reconnects_total`, help: 'NATS reconnects since start.' },
      (set) => {
        const link = genApi.nats;
        if (link !== null) set({}, link.health().reconnects);
      },
    );
    readGauge(
      registry,
      { name: `${p}nats_pending_requests`, help: 'Requests waiting for a worker reply.' },
      (set) => {
        const link = genApi.nats;
        if (link !== null) set({}, link.health().pendingRequests);
      },
    );
    readGauge(
      registry,
      {
        name: `${p}discovered_instances`,
        help: 'Live worker instances discovery knows, by service.',
        labelNames: ['service'],
      },
      (set) => {
        const link = genApi.nats;
        if (link === null) return;
        const byService = new Map<string, number>();
        for (const instance of link.discovery.all())
          byService.set(instance.service, (byService.get(instance.service) ?? 0) + 1);
        for (const [service, count] of byService) set({ service }, count);
      },
    );
    readGauge(
      registry,
      {
        name: `${p}breaker_state`,
        help: 'Circuit breakers: 1 for the current state (closed, open, half_open, isolated, stalled), by scope (service, instance) and name.',
        labelNames: ['scope', 'name', 'state'],
      },
      (set) => {
        const { services, instances } = genApi.resilience.snapshot();
        for (const [scope, states] of [
          ['service', services],
          ['instance', instances],
        ] as const) {
          for (const [name, current] of Object.entries(states))
            for (const state of BREAKER_STATES)
              set({ scope, name, state }, state === current ? 1 : 0);
        }
      },
    );
    const limits = genApi.rateLimits;
    if (limits !== null) {
      readCounter(
        registry,
        {
          name: `${p}ratelimit_checks_total`,
          help: 'Rate-limit checks by policy.',
          labelNames: ['policy'],
        },
        (set) => {
          for (const policy of limits.health().policies)
            set({ policy: policy.config.id }, policy.stats.checks);
        },
      );
      readCounter(
        registry,
        {
          name: `${p}ratelimit_decisions_total`,
          help: 'Rate-limit decisions other than allow, by policy and outcome (denied, would_deny, fail_open, fail_closed, deny_cache_hit, store_error).',
          labelNames: ['policy', 'outcome'],
        },
        (set) => {
          for (const { config, stats: s } of limits.health().policies) {
            const policy = config.id;
            set({ policy, outcome: 'denied' }, s.denied);
            set({ policy, outcome: 'would_deny' }, s.wouldDeny);
            set({ policy, outcome: 'fail_open' }, s.failOpen);
            set({ policy, outcome: 'fail_closed' }, s.failClosed);
            set({ policy, outcome: 'deny_cache_hit' }, s.denyCacheHits);
            set({ policy, outcome: 'store_error' }, s.storeErrors);
          }
        },
      );
    }
  }

  // ---- cluster and Presence ----------------------------------------------------------------
  readGauge(
    registry,
    {
      name: `${p}cluster_connected`,
      help: 'Whether the cluster connection is up (1) or not (0); absent when the gateway runs alone.',
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.connected ? 1 : 0);
    },
  );
  readCounter(
    registry,
    {
      name: `${p}cluster_broadcasts_total`,
      help: 'Broadcasts across gateways by event (published, received, delivered, dropped, publish_failed, local_only).',
      labelNames: ['event'],
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster === null) return;
      const s = cluster.pubsub;
      set({ event: 'published' }, s.published);
      set({ event: 'received' }, s.received);
      set({ event: 'delivered' }, s.delivered);
      set({ event: 'dropped' }, s.dropped);
      set({ event: 'publish_failed' }, s.publishFailed);
      set({ event: 'local_only' }, s.localOnly);
    },
  );
  readGauge(
    registry,
    { name: `${p}cluster_topics`, help: 'Topics this gateway subscribes to on NATS.' },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.pubsub.topics);
    },
  );
  readGauge(
    registry,
    {
      name: `${p}presence_nodes`,
      help: 'Other gateways whose Presence entries this one replicates.',
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.presence.nodes);
    },
  );
  readGauge(
    registry,
    { name: `${p}presence_remote_entries`, help: 'Presence entries of other gateways held here.' },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.presence.entries);
    },
  );
  readCounter(
    registry,
    {
      name: `${p}presence_replication_total`,
      help: 'Presence replication by event (deltas_published, received, dropped, publish_failed, syncs_requested, syncs_served, syncs_refused, syncs_failed, expired, departed, over_limit).',
      labelNames: ['event'],
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster === null) return;
      const s = cluster.presence;
      set({ event: 'deltas_published' }, s.deltasPublished);
      set({ event: 'received' }, s.received);
      set({ event: 'dropped' }, s.dropped);
      set({ event: 'publish_failed' }, s.publishFailed);
      set({ event: 'syncs_requested' }, s.syncsRequested);
      set({ event: 'syncs_served' }, s.syncsServed);
      set({ event: 'syncs_refused' }, s.syncsRefused);
      set({ event: 'syncs_failed' }, s.syncsFailed);
      set({ event: 'expired' }, s.expired);
      set({ event: 'departed' }, s.departed);
      set({ event: 'over_limit' }, s.overLimit);
    },
  );
  readCounter(
    registry,
    {
      name: `${p}cluster_disconnects_total`,
      help: 'Cluster-wide disconnects by event (published, received, closed, dropped).',
      labelNames: ['event'],
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster === null) return;
      const s = cluster.disconnects;
      set({ event: 'published' }, s.published);
      set({ event: 'received' }, s.received);
      set({ event: 'closed' }, s.closed);
      set({ event: 'dropped' }, s.dropped);
    },
  );

  // ---- authentication ----------------------------------------------------------------------
  const auth = sources.auth ?? null;
  if (auth !== null) {
    readCounter(
      registry,
      {
        name: `${p}auth_connects_total`,
        help: 'Connects decided by the config authentication: accepted, or refused by reason.',
        labelNames: ['strategy', 'result', 'reason'],
      },
      (set) => {
        set({ strategy: auth.strategy, result: 'accepted', reason: '' }, auth.accepted);
        for (const [reason, count] of Object.entries(auth.refused))
          set({ strategy: auth.strategy, result: 'refused', reason }, count);
      },
    );
  }

  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const off of detach) off();
  };
  gateway.onClose(close);
  return { registry, route: metricsRoute(registry), close };
}

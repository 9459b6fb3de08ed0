import type { Gateway } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';
import type { NatsStatus } from '../bus/nats/link.js';
import { ClusterPresence } from '../cluster/presence.js';
import type { PolicyScope } from '../ratelimit/types.js';
import { DASHBOARD_LIMITS, type ResolvedDashboardOptions } from './options.js';
import type { FunctionFigures, RequestWindow } from './request-window.js';
import { TopK } from './top.js';

/** One topic of the top list. */
export interface TopicFigure {
  topic: string;
  /** Subscribers on this gateway. */
  subscribers: number;
}

/** Worker instances of one service at one version. */
export interface WorkerGroup {
  service: string;
  version: string;
  /** Live instances. */
  instances: number;
  /** The config versions they report (usually one). */
  configVersions: string[];
}

/** One rate-limit key close to (or over) its limit. */
export interface KeyFigure {
  key: string;
  /** Quota left for the next request. */
  remaining: number;
  limit: number;
  /** The next request would be denied. */
  blocked: boolean;
}

/** One rate-limit policy. */
export interface PolicyFigure {
  id: string;
  scope: PolicyScope;
  key: string;
  algorithm: string;
  mode: string;
  limit: number;
  windowMs: number;
  shadow: boolean;
  /** Keys held on this gateway. */
  keys: number;
  checks: number;
  denied: number;
  /** Keys with the least quota left, blocked first (from the first DASHBOARD_LIMITS.keyScan keys). */
  topKeys: KeyFigure[];
}

/** One gateway node of the cluster. */
export interface NodeFigure {
  node: string;
  /** This gateway. */
  self: boolean;
  /** That node's Presence entries as replicated here; null for this node. */
  presenceEntries: number | null;
}

/**
 * What the dashboard channel pushes (`snapshot` event) every interval (protocol/dashboard.md §4;
 * schema: protocol/schemas/dashboard-snapshot.schema.json).
 */
export interface DashboardSnapshot {
  /** Epoch ms when it was taken. */
  at: number;
  node: string;
  uptimeMs: number;
  intervalMs: number;
  /** Open connections: all mounts, and the dashboard's own viewers among them. */
  sockets: { total: number; websocket: number; longpoll: number; dashboard: number };
  /** Joined channels, topics with local subscribers, and the busiest topics. */
  channels: {
    joined: number;
    topics: number;
    subscriptions: number;
    top: TopicFigure[];
    /** Topics not looked at for the top list (over DASHBOARD_LIMITS.topicScan). */
    unscanned: number;
  };
  genApi: {
    windowMs: number;
    /** Per function over the window (counted while someone watches), busiest first. */
    functions: FunctionFigures[];
    inflight: number;
    streams: number;
    requests: number;
    failures: number;
    services: string[];
  };
  /** Worker instances by service and version, from discovery (empty without NATS). */
  workers: { instances: number; groups: WorkerGroup[] };
  /** Circuit breakers: every service's, and instances whose breaker is not closed. */
  breakers: { services: Record<string, string>; instances: Record<string, string> };
  /** Rate limits, or null when none are configured. */
  rateLimits: { shadow: boolean; keys: number; policies: PolicyFigure[] } | null;
  /** The NATS link, or null without NATS. */
  nats: {
    status: NatsStatus;
    server: string | null;
    since: number;
    reconnects: number;
    lastError: string | null;
    rttMs: number | null;
    pendingRequests: number;
  } | null;
  /** The gateway cluster, or null when this gateway runs alone. */
  cluster: {
    connected: boolean;
    server: string | null;
    nodes: NodeFigure[];
    broadcastsPublished: number;
    broadcastsReceived: number;
  } | null;
}

/** What a snapshot is built from besides the gateway and gen_api. */
export interface SnapshotSources {
  readonly gateway: Gateway;
  readonly genApi: GenApi;
  readonly options: ResolvedDashboardOptions;
  readonly requests: RequestWindow;
  readonly viewers: number;
  /** The last NATS round trip measured (refreshed in the background), or null. */
  readonly natsRttMs: number | null;
}

function topTopics(gateway: Gateway, k: number): DashboardSnapshot['channels'] {
  const pubsub = gateway.pubsub;
  const top = new TopK<TopicFigure>(
    k,
    (a, b) => b.subscribers - a.subscribers || (a.topic < b.topic ? -1 : 1),
  );
  const total = pubsub.topicCount();
  let scanned = 0;
  if (k > 0) {
    // One probe object for the scan: an entry is built only for a topic that makes the list.
    const probe = { topic: '', subscribers: 0 };
    for (const topic of pubsub.topicNames()) {
      if (scanned++ >= DASHBOARD_LIMITS.topicScan) break;
      probe.topic = topic;
      probe.subscribers = pubsub.subscriberCount(topic);
      if (top.wants(probe)) top.offer({ ...probe });
    }
  }
  return {
    joined: gateway.stats.channels,
    topics: total,
    subscriptions: pubsub.subscriberCount(),
    top: top.list(),
    unscanned: k > 0 ? Math.max(0, total - DASHBOARD_LIMITS.topicScan) : 0,
  };
}

function workers(genApi: GenApi): DashboardSnapshot['workers'] {
  const link = genApi.nats;
  if (!link) return { instances: 0, groups: [] };
  const groups = new Map<string, WorkerGroup>();
  const all = link.discovery.all();
  for (const instance of all) {
    const id = `${instance.service}\u0000${instance.version}`;
    let group = groups.get(id);
    if (!group) {
      if (groups.size >= DASHBOARD_LIMITS.workerGroups) continue;
      group = {
        service: instance.service,
        version: instance.version,
        instances: 0,
        configVersions: [],
      };
      groups.set(id, group);
    }
    group.instances++;
    const config = instance.configVersion;
    if (config !== null && !group.configVersions.includes(config))
      group.configVersions.push(config);
  }
  const list = [...groups.values()].sort(
    (a, b) => a.service.localeCompare(b.service) || a.version.localeCompare(b.version),
  );
  return { instances: all.length, groups: list };
}

function breakers(genApi: GenApi): DashboardSnapshot['breakers'] {
  const { services, instances } = genApi.resilience.snapshot();
  const open: Record<string, string> = {};
  let listed = 0;
  for (const [id, state] of Object.entries(instances)) {
    if (state === 'closed') continue;
    if (listed++ >= DASHBOARD_LIMITS.instanceBreakers) break;
    open[id] = state;
  }
  return { services, instances: open };
}

function keyName(dimension: unknown): string {
  return typeof dimension === 'string' ? dimension : `arg:${(dimension as { arg: string }).arg}`;
}

function rateLimits(genApi: GenApi, k: number): DashboardSnapshot['rateLimits'] {
  const limits = genApi.rateLimits;
  if (!limits) return null;
  const limiter = limits.limiter;
  const policies = limiter.policies().map((policy): PolicyFigure => {
    const top = new TopK<KeyFigure>(
      k,
      (a, b) => Number(b.blocked) - Number(a.blocked) || a.remaining - b.remaining,
    );
    let scanned = 0;
    if (k > 0) {
      const probe: KeyFigure = { key: '', remaining: 0, limit: 0, blocked: false };
      for (const [key] of policy.store.entries()) {
        if (scanned++ >= DASHBOARD_LIMITS.keyScan) break;
        // The same reading as the admin API's key status: nothing is consumed.
        const decision = limiter.status(policy.id, key);
        if (!decision) break;
        probe.key = key;
        probe.remaining = decision.remaining;
        probe.limit = decision.limit;
        probe.blocked = !decision.allowed;
        if (top.wants(probe)) top.offer({ ...probe });
      }
    }
    const { config } = policy;
    return {
      id: policy.id,
      scope: policy.scope,
      key: keyName(policy.key),
      algorithm: policy.algorithm.name,
      mode: policy.mode,
      limit: config.limit,
      windowMs: config.windowMs,
      shadow: policy.shadow || limiter.shadow,
      keys: policy.store.size,
      checks: policy.stats.checks,
      denied: policy.stats.denied,
      topKeys: top.list(),
    };
  });
  return { shadow: limiter.shadow, keys: limiter.keys, policies };
}

function nats(genApi: GenApi, rttMs: number | null): DashboardSnapshot['nats'] {
  const link = genApi.nats;
  if (!link) return null;
  const health = link.health();
  return {
    status: health.status,
    server: health.server,
    since: health.since,
    reconnects: health.reconnects,
    lastError: health.lastError,
    rttMs: health.status === 'connected' ? rttMs : null,
    pendingRequests: health.pendingRequests,
  };
}

function cluster(gateway: Gateway): DashboardSnapshot['cluster'] {
  const health = gateway.clusterHealth();
  if (!health) return null;
  const nodes: NodeFigure[] = [{ node: gateway.nodeId, self: true, presenceEntries: null }];
  // Nodes are known from Presence heartbeats: every gateway of the cluster sends them.
  if (gateway.presence instanceof ClusterPresence) {
    for (const [node, peer] of gateway.presence.peers()) {
      if (nodes.length >= DASHBOARD_LIMITS.nodes) break;
      nodes.push({ node, self: false, presenceEntries: peer.entries });
    }
  }
  return {
    connected: health.connected,
    server: health.server,
    nodes,
    broadcastsPublished: health.pubsub.published,
    broadcastsReceived: health.pubsub.received,
  };
}

/** Reads everything the dashboard shows; cheap enough to run every interval (bounded scans). */
export function takeSnapshot(sources: SnapshotSources): DashboardSnapshot {
  const { gateway, genApi, options } = sources;
  const stats = gateway.stats;
  const executor = genApi.executor.stats;
  return {
    at: Date.now(),
    node: gateway.nodeId,
    uptimeMs: Math.round(process.uptime() * 1000),
    intervalMs: options.intervalMs,
    sockets: {
      total: stats.sockets,
      websocket: stats.sockets - stats.longpollSessions,
      longpoll: stats.longpollSessions,
      dashboard: sources.viewers,
    },
    channels: topTopics(gateway, options.topTopics),
    genApi: {
      windowMs: options.windowMs,
      functions: sources.requests.figures(),
      inflight: executor.inflight,
      streams: executor.streams,
      requests: executor.requests,
      failures: executor.failures,
      services: genApi.registry.services(),
    },
    workers: workers(genApi),
    breakers: breakers(genApi),
    rateLimits: rateLimits(genApi, options.topKeys),
    nats: nats(genApi, sources.natsRttMs),
    cluster: cluster(gateway),
  };
}

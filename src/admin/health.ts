import type { Gateway, GatewayClusterHealth } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';
import type { ExecutorStats } from '../genapi/executor.js';
import type { NatsHealth } from '../bus/nats/link.js';
import type { GatewayStats } from '../socket/stats.js';
import type { RelayStats } from '../genapi/relay.js';
import type { AuthStats } from '../auth/connect.js';

/** How long a health request waits for the NATS round trip. */
export const HEALTH_RTT_TIMEOUT_MS = 1_000;

/**
 * What `GET /admin/health` answers (protocol/gen_api.md §8). `degraded`: NATS is configured and
 * not connected, not even once yet (`nats` is then null), or the gateway cluster connection is
 * down; requests to NATS workers fail fast with `Service temporarily unavailable`.
 */
export interface HealthReport {
  status: 'ok' | 'degraded';
  node: string;
  /** Process uptime. */
  uptimeMs: number;
  gateway: GatewayStats;
  genApi: {
    functions: number;
    services: string[];
    failedConfigs: number;
    executor: ExecutorStats;
    breakers: { services: Record<string, string>; instances: Record<string, string> };
    /** Relay groups, or null when relay is off. */
    relay: RelayStats | null;
  };
  /** null when the gateway runs without NATS (embedded services only). */
  nats: (NatsHealth & { rttMs: number | null }) | null;
  /** The gateway cluster (broadcasts, Presence, disconnects across gateways); null when alone. */
  cluster: GatewayClusterHealth | null;
  /** The config's authentication (strategy, accepted, refused by reason); null without `auth`. */
  auth: AuthStats | null;
}

/** A snapshot of the gateway's and gen_api's gauges, with a fresh NATS round-trip time. */
export async function healthReport(
  gateway: Gateway,
  genApi: GenApi,
  auth: AuthStats | null = null,
): Promise<HealthReport> {
  const { functions, services, failedConfigs, executor, breakers, nats, relay } = genApi.health();
  const cluster = gateway.clusterHealth();
  const link = genApi.nats;
  const rttMs = link ? await link.rtt(HEALTH_RTT_TIMEOUT_MS) : null;
  return {
    status:
      genApi.natsPending ||
      (nats !== null && nats.status !== 'connected') ||
      (cluster !== null && !cluster.connected)
        ? 'degraded'
        : 'ok',
    node: gateway.nodeId,
    uptimeMs: Math.round(process.uptime() * 1000),
    gateway: { ...gateway.stats },
    genApi: { functions, services, failedConfigs, executor, breakers, relay },
    nats:
      nats === null
        ? null
        : { ...nats, rttMs: rttMs === null ? null : Math.round(rttMs * 100) / 100 },
    cluster,
    auth: auth === null ? null : { ...auth, refused: { ...auth.refused } },
  };
}

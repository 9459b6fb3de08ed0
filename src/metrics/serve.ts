import type { AddressInfo } from 'node:net';
import type { Gateway } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';
import { PROBE_PATHS, probeRoutes } from '../admin/probes.js';
import {
  gatewayMetrics,
  type GatewayMetrics,
  type GatewayMetricsSources,
} from './gateway-metrics.js';
import { resolveMetricsOptions, type MetricsOptions } from './options.js';
import { startOpsListener } from './ops.js';

/** What `serveMetrics` set up. */
export interface ServedMetrics {
  /** The registry and its route. */
  readonly metrics: GatewayMetrics;
  /** The ops listener's address, or null without `ops`. */
  readonly ops: AddressInfo | null;
}

/**
 * What `startGateway` does with `metrics` options: the metrics of `gateway` at `path` on the
 * gateway's port (unless `enabled: false`) and, with `ops`, a separate listener serving them next
 * to `/healthz` and `/readyz`.
 */
export async function serveMetrics(
  gateway: Gateway,
  genApi: GenApi,
  options: MetricsOptions = {},
  sources: GatewayMetricsSources = {},
): Promise<ServedMetrics> {
  const resolved = resolveMetricsOptions(options);
  const metrics = gatewayMetrics(gateway, genApi, options, sources);
  if (resolved.enabled) gateway.route(resolved.path, metrics.route);
  if (resolved.ops === null) return { metrics, ops: null };
  const probes = probeRoutes(gateway, genApi);
  const ops = await startOpsListener(
    gateway,
    {
      [resolved.path]: metrics.route,
      [PROBE_PATHS.health]: probes.health,
      [PROBE_PATHS.ready]: probes.ready,
    },
    resolved.ops,
  );
  return { metrics, ops };
}

import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import type { AuthStats } from '../auth/connect.js';
import type { Gateway, HttpRoute } from '../gateway.js';
import type { GenApi } from '../genapi/gen-api.js';
import { registerAuthMetrics } from './auth-metrics.js';
import { registerClusterMetrics } from './cluster-metrics.js';
import { registerGenApiMetrics } from './genapi-metrics.js';
import { GenApiRequestMetrics } from './genapi-requests.js';
import { resolveMetricsOptions, type MetricsOptions } from './options.js';
import { BoundedLabels } from './read-at-scrape.js';
import { metricsRoute } from './route.js';
import { registerSocketMetrics } from './socket-metrics.js';

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

  // ---- sockets and channels (socket-metrics.ts) ---------------------------------------------
  registerSocketMetrics(registry, p, stats);

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

  // ---- gen_api, NATS, discovery, breakers, rate limits (genapi-metrics.ts) ------------------
  if (genApi !== null) registerGenApiMetrics(registry, p, genApi, resolved.natsRttTimeoutMs);

  // ---- cluster and Presence (cluster-metrics.ts) --------------------------------------------
  registerClusterMetrics(registry, p, gateway);

  // ---- authentication (auth-metrics.ts) -----------------------------------------------------
  const auth = sources.auth ?? null;
  if (auth !== null) registerAuthMetrics(registry, p, auth);

  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const off of detach) off();
  };
  gateway.onClose(close);
  return { registry, route: metricsRoute(registry), close };
}

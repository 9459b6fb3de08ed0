import { ConfigError } from '../config/errors.js';

/** Where the separate operations listener binds (`MetricsOptions.ops`). */
export interface OpsListenerOptions {
  /** Interface to listen on. Default 127.0.0.1 (keep it private). */
  host?: string;
  /** Port; 0 picks a free one. Required. */
  port: number;
}

/**
 * Prometheus metrics of a gateway (`metrics` in the config file, README "Metrics"). Every default
 * is in `METRICS_DEFAULTS`.
 */
export interface MetricsOptions {
  /** Serve `path` on the gateway's own port. Default true. */
  enabled?: boolean;
  /** The scrape path. Default `/metrics`. */
  path?: string;
  /**
   * A separate listener for operations (`/metrics`, `/healthz`, `/readyz`), for deployments that
   * keep them off the public port (set `enabled: false` then). Default none.
   */
  ops?: OpsListenerOptions | null;
  /** Node's default process metrics (CPU, memory, event loop lag, GC), prefixed. Default true. */
  processMetrics?: boolean;
  /** How long a scrape waits for the NATS round trip, ms. Default 250. */
  natsRttTimeoutMs?: number;
  /**
   * Distinct join refusal reasons kept as label values; later ones are counted as `other` (a
   * channel may put anything in its reason). Default 50.
   */
  maxReasonLabels?: number;
  /**
   * Distinct service/function label pairs of gen_api requests kept; later ones are counted as
   * `other` (functions come and go with workers). Default 1000.
   */
  maxFunctionLabels?: number;
  /** Histogram buckets of gen_api request durations, seconds. Default 1 ms … 10 s. */
  durationBuckets?: readonly number[];
}

/** The defaults of `MetricsOptions`. */
export const METRICS_DEFAULTS = {
  enabled: true,
  path: '/metrics',
  ops: null,
  processMetrics: true,
  natsRttTimeoutMs: 250,
  maxReasonLabels: 50,
  maxFunctionLabels: 1000,
  durationBuckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
} as const satisfies Required<Omit<MetricsOptions, 'ops'>> & { ops: null };

/** `MetricsOptions` with the defaults applied. */
export interface ResolvedMetricsOptions {
  readonly enabled: boolean;
  readonly path: string;
  readonly ops: { readonly host: string; readonly port: number } | null;
  readonly processMetrics: boolean;
  readonly natsRttTimeoutMs: number;
  readonly maxReasonLabels: number;
  readonly maxFunctionLabels: number;
  readonly durationBuckets: readonly number[];
}

const KEYS = new Set([
  'enabled',
  'path',
  'ops',
  'processMetrics',
  'natsRttTimeoutMs',
  'maxReasonLabels',
  'maxFunctionLabels',
  'durationBuckets',
]);

function positive(name: string, value: unknown, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (allowZero ? 0 : 1))
    throw new ConfigError(
      `metrics.${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(value)}`,
    );
  return value;
}

/** Checks `options` (from code or the config file) and applies the defaults. */
export function resolveMetricsOptions(options: MetricsOptions = {}): ResolvedMetricsOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new ConfigError('"metrics" must be an object');
  for (const key of Object.keys(options))
    if (!KEYS.has(key)) throw new ConfigError(`unknown setting "metrics.${key}"`);
  const enabled = options.enabled ?? METRICS_DEFAULTS.enabled;
  if (typeof enabled !== 'boolean') throw new ConfigError('metrics.enabled must be true or false');
  const path = options.path ?? METRICS_DEFAULTS.path;
  if (typeof path !== 'string' || !path.startsWith('/') || path.length < 2)
    throw new ConfigError(`metrics.path must start with "/", got ${JSON.stringify(path)}`);
  const processMetrics = options.processMetrics ?? METRICS_DEFAULTS.processMetrics;
  if (typeof processMetrics !== 'boolean')
    throw new ConfigError('metrics.processMetrics must be true or false');
  let ops: ResolvedMetricsOptions['ops'] = null;
  if (options.ops !== undefined && options.ops !== null) {
    const given = options.ops;
    if (typeof given !== 'object' || Array.isArray(given))
      throw new ConfigError('metrics.ops must be an object { host?, port }');
    for (const key of Object.keys(given))
      if (key !== 'host' && key !== 'port')
        throw new ConfigError(`unknown setting "metrics.ops.${key}"`);
    const port = positive('ops.port', given.port, true);
    if (port > 65_535) throw new ConfigError(`metrics.ops.port must be at most 65535, got ${port}`);
    const host = given.host ?? '127.0.0.1';
    if (typeof host !== 'string' || host === '')
      throw new ConfigError('metrics.ops.host must be a non-empty string');
    ops = { host, port };
  }
  const buckets = options.durationBuckets ?? METRICS_DEFAULTS.durationBuckets;
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    buckets.some((b, i) => typeof b !== 'number' || !(b > 0) || (i > 0 && b <= buckets[i - 1]!))
  )
    throw new ConfigError('metrics.durationBuckets must be increasing positive numbers (seconds)');
  return {
    enabled,
    path,
    ops,
    processMetrics,
    natsRttTimeoutMs: positive(
      'natsRttTimeoutMs',
      options.natsRttTimeoutMs ?? METRICS_DEFAULTS.natsRttTimeoutMs,
    ),
    maxReasonLabels: positive(
      'maxReasonLabels',
      options.maxReasonLabels ?? METRICS_DEFAULTS.maxReasonLabels,
    ),
    maxFunctionLabels: positive(
      'maxFunctionLabels',
      options.maxFunctionLabels ?? METRICS_DEFAULTS.maxFunctionLabels,
    ),
    durationBuckets: [...(buckets as number[])],
  };
}

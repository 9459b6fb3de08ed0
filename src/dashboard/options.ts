import { OptionError } from '../config/errors.js';

/**
 * The live dashboard (`dashboard` in the config file; README: Dashboard). It is served when an
 * admin token is configured (the page asks for it) or in the demo (loopback clients only); every
 * value has a default (DASHBOARD_DEFAULTS).
 */
export interface DashboardOptions {
  /**
   * `false` turns the dashboard off; `true` insists on it (a config without `admin.token` and
   * without the demo is then an error). Default: on when `admin.token` is set or in the demo.
   */
  enabled?: boolean;
  /** Where the page is served. Default `/dashboard`. */
  path?: string;
  /** The socket mount the page connects to (WebSocket only). Default `/admin/socket`. */
  socketPath?: string;
  /** How often a snapshot is pushed to the viewers. Default 1000 ms (at least 100). */
  intervalMs?: number;
  /** The sliding window of gen_api rates and latencies. Default 10 000 ms (whole seconds, 1–300 s). */
  windowMs?: number;
  /** gen_api functions tracked at once; calls to others are counted under `(other)`. Default 100. */
  maxFunctions?: number;
  /** Topics listed by subscriber count. Default 10. */
  topTopics?: number;
  /** Keys listed per rate-limit policy (those closest to their limit). Default 5. */
  topKeys?: number;
  /** Dashboard connections at once (the socket mount's `maxConnections`); more get 503. Default 16. */
  maxViewers?: number;
}

/** The defaults of `DashboardOptions`. */
export const DASHBOARD_DEFAULTS = {
  path: '/dashboard',
  socketPath: '/admin/socket',
  intervalMs: 1_000,
  windowMs: 10_000,
  maxFunctions: 100,
  topTopics: 10,
  topKeys: 5,
  maxViewers: 16,
} as const;

/**
 * Work one snapshot may do, whatever the gateway holds: topics and rate-limit keys looked at (the
 * top lists are then drawn from the first ones met, and the snapshot says how many it skipped),
 * worker groups and breakers listed.
 */
export const DASHBOARD_LIMITS = {
  /** Topics scanned for the top list per snapshot. */
  topicScan: 100_000,
  /** Keys scanned per rate-limit policy per snapshot. */
  keyScan: 10_000,
  /** (service, version) worker groups listed. */
  workerGroups: 100,
  /** Instance breakers listed (those not closed). */
  instanceBreakers: 50,
  /** Gateway nodes listed. */
  nodes: 100,
} as const;

/** The shortest snapshot interval accepted. */
export const DASHBOARD_MIN_INTERVAL_MS = 100;

/** `DashboardOptions` with the defaults applied (everything but `enabled`). */
export type ResolvedDashboardOptions = {
  readonly [K in keyof typeof DASHBOARD_DEFAULTS]: (typeof DASHBOARD_DEFAULTS)[K] extends string
    ? string
    : number;
};

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new OptionError(
      `dashboard.${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  return value;
}

function path(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/.test(value))
    throw new OptionError(
      `dashboard.${name} must be a path like "/dashboard", got ${JSON.stringify(value)}`,
    );
  return value;
}

/** Validates `options` and applies the defaults; throws OptionError naming the option. */
export function resolveDashboardOptions(options: DashboardOptions = {}): ResolvedDashboardOptions {
  const d = DASHBOARD_DEFAULTS;
  if (options.enabled !== undefined && typeof options.enabled !== 'boolean')
    throw new OptionError(
      `dashboard.enabled must be a boolean, got ${JSON.stringify(options.enabled)}`,
    );
  const windowMs = integer('windowMs', options.windowMs, d.windowMs, 1_000, 300_000);
  if (windowMs % 1_000 !== 0)
    throw new OptionError(`dashboard.windowMs must be whole seconds, got ${windowMs}`);
  const resolved = {
    path: path('path', options.path, d.path),
    socketPath: path('socketPath', options.socketPath, d.socketPath),
    intervalMs: integer(
      'intervalMs',
      options.intervalMs,
      d.intervalMs,
      DASHBOARD_MIN_INTERVAL_MS,
      60_000,
    ),
    windowMs,
    maxFunctions: integer('maxFunctions', options.maxFunctions, d.maxFunctions, 1, 10_000),
    topTopics: integer('topTopics', options.topTopics, d.topTopics, 0, 1_000),
    topKeys: integer('topKeys', options.topKeys, d.topKeys, 0, 1_000),
    maxViewers: integer('maxViewers', options.maxViewers, d.maxViewers, 1, 1_000),
  };
  if (resolved.path === resolved.socketPath)
    throw new OptionError('dashboard.path and dashboard.socketPath must differ');
  return resolved;
}

import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Gateway } from '../gateway.js';
import type { GenApi, GenApiOptions } from '../genapi/gen-api.js';
import type { NatsGatewayOptions } from '../bus/nats/link.js';
import type { Assigns, ChannelHandler } from '../channel/types.js';
import type { SocketOptions } from './socket-options.js';
import type { RateLimitsOptions } from '../ratelimit/rate-limits.js';
import type { AdminOptions } from '../admin/admin.js';
import type { GatewayOptions } from '../gateway.js';
import { ConfigError } from './errors.js';
import type { NatsCredentials } from '../nats/connection.js';
import { checkConfig, checkNatsSection, LOG_LEVELS } from './file-check.js';
import type { AuthConfig } from '../auth/config.js';
import type { DashboardOptions } from '../dashboard/options.js';
import type { MetricsOptions } from '../metrics/options.js';

export { ConfigError };

export { LOG_LEVELS };
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The gateway config file. JSON files hold the plain settings; a `.js`/`.mjs` module exporting
 * the same object (default export) may also give functions: `socket.connect`, a
 * `socket.checkOrigin` predicate, `channels` and a `setup(gateway)` hook.
 */
export interface GatewayConfig {
  host?: string;
  port?: number;
  logLevel?: LogLevel;
  /** Node id; with `processes` > 1 each process is `<nodeId>-<index>` (default: the host name). */
  nodeId?: string;
  /**
   * Gateway processes sharing the port, each a node of the cluster: a count, or "auto" for one per
   * core. More than 1 needs NATS (`nats.servers` or `--nats`). Default 1; `--processes` wins.
   */
  processes?: number | 'auto';
  /** LongPoll token key; give every node the same one. */
  secret?: string;
  /** Serve the dev demo (identity from connect params; dev only). Default false; `--demo` wins. */
  demo?: boolean;
  /** The socket endpoint: its path (default /socket) and SocketOptions. */
  socket?: SocketOptions<Assigns> & { path?: string };
  /** The gen_api channel and executor (topics, event, limits, detail_error, push token, ...). */
  genApi?: GenApiOptions;
  /** Rate limits: gen_api policies, the per-IP connect limit, cluster modes (protocol/ratelimit.md). */
  rateLimits?: RateLimitsOptions;
  /** The admin HTTP API (bearer token; off without one). */
  admin?: AdminOptions;
  /** The live dashboard (on with `admin` or in the demo; README: Dashboard). */
  dashboard?: DashboardOptions;
  /**
   * Authentication without code: `phoenixToken`, `jwt` or `worker`, join rules, token refresh
   * (README: Authentication). Checked where it is applied; identity then comes from the token only.
   */
  auth?: AuthConfig;
  /** Prometheus metrics: `/metrics` on the gateway port, an optional `ops` listener (README: Metrics). */
  metrics?: MetricsOptions;
  /** Run `nodes: "nats"` functions on NATS workers (and join the gateway cluster on it). */
  nats?: Partial<NatsGatewayOptions> & { servers?: string | string[] };
  /** Limits of broadcasts across gateways (`maxBroadcastBytes`, `maxTopicBytes`, …; nats.md §9). */
  cluster?: GatewayOptions['cluster'];
  /** Presence: event names and `cluster` replication timings and limits (presence.md). */
  presence?: GatewayOptions['presence'];
  /**
   * Graceful drain on SIGTERM/SIGINT: `batchSize`, `batchIntervalMs`, `shutdownMs`,
   * `requestDeadlineMs` (defaults in `DRAIN_DEFAULTS`; README: Operations).
   */
  drain?: GatewayOptions['drain'];
  /** Channel routes (JS config modules only). */
  channels?: readonly { pattern: string; handler: ChannelHandler<Assigns> }[];
  /** Runs once the gateway exists, before it connects and listens (JS config modules only). */
  setup?: (gateway: Gateway, genApi: GenApi) => void | Promise<void>;
}

/** Checks the top level and the settings each section knows; values are checked where applied. */
export function validateConfig(file: string, value: unknown): GatewayConfig {
  checkConfig(file, value);
  return value as GatewayConfig;
}

/**
 * Environment variables that set the gateway's NATS credentials, so secrets stay out of config
 * files: `GEN_GATEWAY_NATS_CREDS` (a `.creds` file path), `GEN_GATEWAY_NATS_USER` +
 * `GEN_GATEWAY_NATS_PASS`, `GEN_GATEWAY_NATS_TOKEN`.
 */
export const NATS_CREDENTIAL_ENV = {
  credsFile: 'GEN_GATEWAY_NATS_CREDS',
  user: 'GEN_GATEWAY_NATS_USER',
  pass: 'GEN_GATEWAY_NATS_PASS',
  token: 'GEN_GATEWAY_NATS_TOKEN',
} as const;

/** Every way to authenticate a config's `nats` section can hold (env credentials replace them all). */
const NATS_AUTH_KEYS = ['user', 'pass', 'token', 'nkeySeed', 'nkeySeedFile', 'credsFile'] as const;

/**
 * The config with NATS credentials from the environment (NATS_CREDENTIAL_ENV): when any of those
 * variables is set (non-empty), they replace every credential the config gives, so a deployment
 * can switch e.g. from a token to a `.creds` file without editing the file. Throws ConfigError
 * when the variables contradict each other.
 */
export function withNatsCredentialEnv(
  config: GatewayConfig,
  env: Readonly<Record<string, string | undefined>>,
): GatewayConfig {
  const fromEnv: NatsCredentials = {};
  for (const [key, name] of Object.entries(NATS_CREDENTIAL_ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '')
      fromEnv[key as keyof typeof NATS_CREDENTIAL_ENV] = value;
  }
  if (Object.keys(fromEnv).length === 0) return config;
  const nats: Record<string, unknown> = { ...config.nats };
  for (const key of NATS_AUTH_KEYS) delete nats[key];
  const merged = { ...nats, ...fromEnv } as NonNullable<GatewayConfig['nats']>;
  checkNatsSection(`environment (${Object.values(NATS_CREDENTIAL_ENV).join(', ')})`, merged);
  return { ...config, nats: merged };
}

export async function loadConfig(path: string): Promise<GatewayConfig> {
  const absolute = resolve(path);
  const ext = extname(absolute);
  let raw: unknown;
  if (ext === '.json') {
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config ${path}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${path}: invalid JSON: ${(err as Error).message}`);
    }
  } else if (ext === '.js' || ext === '.mjs') {
    try {
      const module = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
      raw = module.default;
    } catch (err) {
      throw new ConfigError(`cannot load config ${path}: ${(err as Error).message}`);
    }
  } else {
    throw new ConfigError(`${path}: config files must be .json, .js or .mjs`);
  }
  return validateConfig(path, raw);
}

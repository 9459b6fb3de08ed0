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
import { InvalidArgumentError } from '../errors.js';
import { checkNatsCredentials, type NatsCredentials } from '../nats/connection.js';
import type { AuthConfig } from '../auth/config.js';
import type { DashboardOptions } from '../dashboard/options.js';
import { resolveMetricsOptions, type MetricsOptions } from '../metrics/options.js';

export { ConfigError };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
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

const KEYS = new Set([
  'auth',
  'host',
  'port',
  'logLevel',
  'nodeId',
  'processes',
  'secret',
  'demo',
  'socket',
  'genApi',
  'rateLimits',
  'admin',
  'dashboard',
  'metrics',
  'nats',
  'cluster',
  'presence',
  'drain',
  'channels',
  'setup',
]);
const GEN_API_KEYS = new Set([
  'topics',
  'event',
  'cancelEvent',
  'requireVerifiedUserId',
  'overrideUserId',
  'overrideDeviceId',
  'trustClientRoles',
  'trustClientUserId',
  'trustClientDeviceId',
  'maxPayloadBytes',
  'maxInflight',
  'streamHighWaterBytes',
  'identity',
  'join',
  'detailError',
  'argLimits',
  'streamCredit',
  'resilience',
  'pushToken',
  'rateLimiter',
  'relay',
]);
const NATS_KEYS = new Set([
  'servers',
  'prefix',
  'user',
  'pass',
  'token',
  'nkeySeed',
  'nkeySeedFile',
  'credsFile',
  'tls',
  'inboxPrefix',
  'reconnectTimeWaitMs',
  'discovery',
  'sync',
  'deadlineTickMs',
  'cluster',
  'trustedNetwork',
]);

function checkSection(file: string, name: string, value: unknown, keys: ReadonlySet<string>): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(`${file}: "${name}" must be an object`);
  for (const key of Object.keys(value)) {
    if (!keys.has(key)) throw new ConfigError(`${file}: unknown setting "${name}.${key}"`);
  }
}

function expectType(file: string, key: string, value: unknown, type: string): void {
  if (value !== undefined && typeof value !== type) {
    throw new ConfigError(`${file}: "${key}" must be a ${type}, got ${JSON.stringify(value)}`);
  }
}

/** Checks the top level; socket options are validated where they are applied. */
export function validateConfig(file: string, value: unknown): GatewayConfig {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${file}: the config must be an object`);
  }
  const config = value as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (!KEYS.has(key)) throw new ConfigError(`${file}: unknown setting "${key}"`);
  }
  expectType(file, 'host', config.host, 'string');
  expectType(file, 'nodeId', config.nodeId, 'string');
  expectType(file, 'secret', config.secret, 'string');
  expectType(file, 'demo', config.demo, 'boolean');
  expectType(file, 'setup', config.setup, 'function');
  if (
    config.port !== undefined &&
    (!Number.isInteger(config.port) ||
      (config.port as number) < 0 ||
      (config.port as number) > 65535)
  ) {
    throw new ConfigError(`${file}: "port" must be an integer from 0 to 65535`);
  }
  if (
    config.processes !== undefined &&
    config.processes !== 'auto' &&
    !(Number.isInteger(config.processes) && (config.processes as number) >= 1)
  ) {
    throw new ConfigError(`${file}: "processes" must be "auto" or a positive integer`);
  }
  if (config.logLevel !== undefined && !LOG_LEVELS.includes(config.logLevel as LogLevel)) {
    throw new ConfigError(`${file}: "logLevel" must be one of ${LOG_LEVELS.join(', ')}`);
  }
  if (
    config.socket !== undefined &&
    (config.socket === null || typeof config.socket !== 'object')
  ) {
    throw new ConfigError(`${file}: "socket" must be an object`);
  }
  checkSection(file, 'genApi', config.genApi, GEN_API_KEYS);
  checkSection(file, 'nats', config.nats, NATS_KEYS);
  expectType(
    file,
    'nats.trustedNetwork',
    (config.nats as { trustedNetwork?: unknown } | undefined)?.trustedNetwork,
    'boolean',
  );
  // Values are checked where they are applied (OutOfRangeError names the option).
  checkSection(
    file,
    'cluster',
    config.cluster,
    new Set(['maxBroadcastBytes', 'maxTopicBytes', 'warningIntervalMs']),
  );
  checkSection(file, 'presence', config.presence, new Set(['events', 'fetch', 'cluster']));
  // Values are checked where they are applied (OutOfRangeError names the option).
  checkSection(
    file,
    'drain',
    config.drain,
    new Set(['batchSize', 'batchIntervalMs', 'shutdownMs', 'requestDeadlineMs']),
  );
  // rateLimits is validated in full where it is applied (PolicyError names the setting).
  checkSection(
    file,
    'rateLimits',
    config.rateLimits,
    new Set([
      'policies',
      'shadow',
      'connect',
      'eventual',
      'strict',
      'sweepMs',
      'maxKeys',
      'clusterSecret',
    ]),
  );
  checkSection(
    file,
    'admin',
    config.admin,
    new Set(['token', 'path', 'maxAuthFailures', 'authFailureWindowMs', 'trustedProxies']),
  );
  // Values are checked where they are applied (OptionError names the option).
  checkSection(
    file,
    'dashboard',
    config.dashboard,
    new Set([
      'enabled',
      'path',
      'socketPath',
      'intervalMs',
      'windowMs',
      'maxFunctions',
      'topTopics',
      'topKeys',
      'maxViewers',
    ]),
  );
  if (config.metrics !== undefined) {
    try {
      resolveMetricsOptions(config.metrics as MetricsOptions);
    } catch (err) {
      throw new ConfigError(`${file}: ${(err as Error).message}`);
    }
  }
  const admin = config.admin as { token?: unknown; path?: unknown } | undefined;
  if (admin && (typeof admin.token !== 'string' || admin.token.length < 16)) {
    throw new ConfigError(`${file}: "admin.token" must be a string of at least 16 characters`);
  }
  const servers = (config.nats as { servers?: unknown } | undefined)?.servers;
  if (
    servers !== undefined &&
    typeof servers !== 'string' &&
    !(Array.isArray(servers) && servers.every((s) => typeof s === 'string'))
  ) {
    throw new ConfigError(`${file}: "nats.servers" must be a URL or a list of URLs`);
  }
  if (config.nats !== undefined) checkNatsSection(file, config.nats as NatsCredentials);
  if (config.channels !== undefined) {
    // A config file is user input: check it as unknown, whatever its declared type says.
    const channels: unknown = config.channels;
    const isRoute = (value: unknown): boolean => {
      const route = value as { pattern?: unknown; handler?: unknown } | null | undefined;
      return typeof route?.pattern === 'string' && typeof route?.handler === 'object';
    };
    if (!Array.isArray(channels) || !channels.every(isRoute)) {
      throw new ConfigError(`${file}: "channels" must be a list of { pattern, handler }`);
    }
  }
  return config;
}

/** Credential, TLS and inbox settings of `nats` (contradictions too), as a ConfigError. */
function checkNatsSection(where: string, nats: NatsCredentials): void {
  try {
    checkNatsCredentials(nats);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    throw new ConfigError(`${where}: nats: ${err.message}`, { cause: err });
  }
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

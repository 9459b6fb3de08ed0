/**
 * Checking the gateway config file: its top level and the settings each section knows, by the
 * validator compiled from protocol/schemas/gateway-config.schema.json; the first failure is worded
 * here. What a schema cannot say stays in code: the functions a JS config module may give
 * (`setup`, `channels`), the metrics section (its own resolver) and the NATS credentials that
 * contradict each other. Values inside the other sections are checked where they are applied.
 */
import { InvalidArgumentError } from '../errors.js';
import { resolveMetricsOptions, type MetricsOptions } from '../metrics/options.js';
import { checkNatsCredentials, type NatsCredentials } from '../nats/connection.js';
import { decodePointer, validateGatewayConfigShape, type SchemaError } from '../schema/validate.js';
import { ConfigError } from './errors.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** The checks in the order they are reported (the first failing one is thrown). */
const CHECK_ORDER = [
  'root',
  'unknown',
  'host',
  'nodeId',
  'secret',
  'demo',
  'setup',
  'port',
  'processes',
  'logLevel',
  'socket',
  'genApi',
  'nats',
  'nats.trustedNetwork',
  'cluster',
  'presence',
  'drain',
  'rateLimits',
  'admin',
  'dashboard',
  'metrics',
  'admin.token',
  'nats.servers',
];
const rank = (check: string): number => CHECK_ORDER.indexOf(check);

/** Which check a schema failure belongs to. */
function checkOf(error: SchemaError): string {
  const [top = '', sub] = error.instancePath.split('/').slice(1).map(decodePointer);
  if (top === '') return error.keyword === 'additionalProperties' ? 'unknown' : 'root';
  if (top === 'admin' && (sub === 'token' || error.keyword === 'required')) return 'admin.token';
  if (top === 'nats' && (sub === 'servers' || sub === 'trustedNetwork')) return `nats.${sub}`;
  return top;
}

const got = (value: unknown): string => `, got ${JSON.stringify(value)}`;

function messageOf(check: string, errors: readonly SchemaError[], config: Record<string, unknown>) {
  const first = errors[0];
  switch (check) {
    case 'root':
      return 'the config must be an object';
    case 'unknown':
      return `unknown setting "${String(first?.params.additionalProperty)}"`;
    case 'host':
    case 'nodeId':
    case 'secret':
    case 'demo':
      return `"${check}" must be a ${String(first?.params.type)}${got(config[check])}`;
    case 'port':
      return '"port" must be an integer from 0 to 65535';
    case 'processes':
      return '"processes" must be "auto" or a positive integer';
    case 'logLevel':
      return `"logLevel" must be one of ${LOG_LEVELS.join(', ')}`;
    case 'nats.trustedNetwork':
      return `"nats.trustedNetwork" must be a boolean${got((config.nats as Record<string, unknown>).trustedNetwork)}`;
    case 'admin.token':
      return '"admin.token" must be a string of at least 16 characters';
    case 'nats.servers':
      return '"nats.servers" must be a URL or a list of URLs';
    default: {
      // A section: not an object, or a setting it does not know.
      const unknown = errors.find((error) => error.keyword === 'propertyNames');
      return unknown === undefined || errors.some((error) => error.keyword === 'type')
        ? `"${check}" must be an object`
        : `unknown setting "${check}.${String(unknown.params.propertyName)}"`;
    }
  }
}

/** The failures a schema cannot find, by check: a JS module's `setup`, the metrics section. */
function codeFailures(config: Record<string, unknown>): Map<string, string> {
  const failures = new Map<string, string>();
  if (config.setup !== undefined && typeof config.setup !== 'function')
    failures.set('setup', `"setup" must be a function${got(config.setup)}`);
  if (config.metrics !== undefined) {
    try {
      resolveMetricsOptions(config.metrics as MetricsOptions);
    } catch (err) {
      failures.set('metrics', (err as Error).message);
    }
  }
  return failures;
}

/** The first failure of the schema and the code checks, in CHECK_ORDER; null when none. */
function firstFailure(config: Record<string, unknown>): string | null {
  const failures = codeFailures(config);
  if (!validateGatewayConfigShape(config)) {
    const byCheck = new Map<string, SchemaError[]>();
    for (const error of validateGatewayConfigShape.errors ?? []) {
      const check = checkOf(error);
      // An array has always passed as `socket` (with no keys, it sets nothing).
      if (check === 'socket' && Array.isArray(config.socket)) continue;
      byCheck.set(check, [...(byCheck.get(check) ?? []), error]);
    }
    for (const [check, errors] of byCheck) failures.set(check, messageOf(check, errors, config));
  }
  const first = [...failures.keys()].sort((a, b) => rank(a) - rank(b))[0];
  return first === undefined ? null : (failures.get(first) ?? null);
}

/** Credential, TLS and inbox settings of `nats` (contradictions too), as a ConfigError. */
export function checkNatsSection(where: string, nats: NatsCredentials): void {
  try {
    checkNatsCredentials(nats);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    throw new ConfigError(`${where}: nats: ${err.message}`, { cause: err });
  }
}

/** Throws a ConfigError (`<file>: <what is wrong>`) for the first problem of a config. */
export function checkConfig(file: string, value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${file}: the config must be an object`);
  }
  const config = value as Record<string, unknown>;
  const failure = firstFailure(config);
  if (failure !== null) throw new ConfigError(`${file}: ${failure}`);
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
}

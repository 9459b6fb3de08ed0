/**
 * FunConfig validation and resolution (PhoenixGenApi `FunConfig.validate_with_details/1`, spec §2),
 * adapted to the gateway's JSON wire form (src/genapi/types.ts FunConfig).
 *
 * Differences from PhoenixGenApi, all deliberate (spec §11.3):
 * - documented defaults are applied instead of rejecting a missing field;
 * - version "" and "0.0.0" mean "unversioned" instead of being invalid;
 * - the argument-validation error carries its detail;
 * - `list`, `datetime`, `naive_datetime` and `any` are valid argument types.
 *
 * `null` is accepted exactly where the wire type allows it (version, arg_types, arg_orders,
 * permission_callback, retry, before_execute, after_execute) and means "absent" there. Elsewhere
 * `null` is an invalid value (the field's error is reported).
 */
import type {
  CheckPermission,
  ChooseNodeMode,
  FunConfig,
  NodeMode,
  PermissionMode,
  ResolvedFunConfig,
  RetryConfig,
  RetryMode,
} from '../types.js';
import { fieldOf, validateFunConfigShape } from '../../schema/validate.js';
import { FUN_CONFIG_DEFAULTS } from '../../nats/fun-config.js';
import { isPlainObject, parseArgTypes } from './arg-spec.js';

export { FUN_CONFIG_DEFAULTS };

export interface ValidateOptions {
  /** `nodes` when the config does not say. */
  nodesDefault: 'local' | 'nats';
  /** When given, before_execute/after_execute must name one of these. */
  hookNames?: ReadonlySet<string>;
}

export type ValidateResult =
  { ok: true; config: ResolvedFunConfig } | { ok: false; errors: string[] };

export const DEFAULT_TIMEOUT_MS = FUN_CONFIG_DEFAULTS.timeoutMs;
export const INFINITY_TIMEOUT_MS = FUN_CONFIG_DEFAULTS.infinityTimeoutMs;
export const MIN_TIMEOUT_MS = 100;
export const MAX_TIMEOUT_MS = 300_000;
export const DEFAULT_HOOK_TIMEOUT_MS = FUN_CONFIG_DEFAULTS.hookTimeoutMs;
export const DEFAULT_STICKY_TTL_MS = FUN_CONFIG_DEFAULTS.stickyTtlMs;

export const ERR = {
  notObject: 'fun_config must be an object',
  requestType: 'request_type must be a non-empty string without whitespace, ".", "*" or ">"',
  service: 'service must be a non-empty string without whitespace, ".", "*" or ">"',
  nodes: 'nodes must be "local" or "nats"',
  chooseNodeMode:
    'choose_node_mode must be "random", "hash", "round_robin", {"hash": key}, {"sticky": key, "ttl_ms"?: ms} or {"weighted": {version: weight}}',
  timeout: 'timeout must be an integer between 100 and 300000, or "infinity"',
  args: 'argument validation failed',
  responseType: 'response_type must be "sync", "async", "stream" or "none"',
  checkPermission:
    'check_permission must be false, "any_authenticated", {"arg": name} or {"role": [roles]}',
  permissionCallback: 'permission_callback must be a boolean',
  requestInfo: 'request_info must be a boolean',
  version: 'version must be a string',
  retry: 'retry must be null, a positive number, {"same_node": n} or {"all_nodes": n}',
  retryOn: 'retry_on must be "transport" or "any"',
  beforeExecute: 'before_execute must be null or the name of a registered hook',
  afterExecute: 'after_execute must be null or the name of a registered hook',
  hookTimeout: 'hook_timeout must be a positive integer',
  disabled: 'disabled must be a boolean',
} as const;

/** The FunConfig fields the gateway knows; anything else a worker sends is dropped. */
const KNOWN_FIELDS: readonly (keyof FunConfig)[] = [
  'service',
  'request_type',
  'version',
  'nodes',
  'choose_node_mode',
  'timeout',
  'arg_types',
  'arg_orders',
  'response_type',
  'check_permission',
  'permission_callback',
  'request_info',
  'disabled',
  'retry',
  'retry_on',
  'before_execute',
  'after_execute',
  'hook_timeout',
];

/**
 * A NATS subject token: non-empty, no whitespace, no ".", "*" or ">" (subject separators and
 * wildcards), and no control characters (fun-config.schema.json#/$defs/token).
 */
const SUBJECT_TOKEN = /^[^\s.*>\p{Cc}]+$/u;

export function isSubjectToken(value: unknown): value is string {
  return typeof value === 'string' && SUBJECT_TOKEN.test(value);
}

/** PhoenixGenApi `FunConfig.version/1` / `ensure_version`: null, "", "0.0.0" (and non-strings) → null. */
export function normalizeVersion(version: unknown): string | null {
  return typeof version === 'string' && version !== '' && version !== '0.0.0' ? version : null;
}

const has = (obj: Record<string, unknown>, key: string): boolean =>
  Object.prototype.hasOwnProperty.call(obj, key);

/** The fields' messages, in the order they are reported. arg_types/arg_orders: parseArgTypes. */
const FIELD_MESSAGES: readonly (readonly [keyof FunConfig, string])[] = [
  ['request_type', ERR.requestType],
  ['service', ERR.service],
  ['nodes', ERR.nodes],
  ['choose_node_mode', ERR.chooseNodeMode],
  ['timeout', ERR.timeout],
  ['arg_types', ERR.args],
  ['response_type', ERR.responseType],
  ['check_permission', ERR.checkPermission],
  ['permission_callback', ERR.permissionCallback],
  ['request_info', ERR.requestInfo],
  ['version', ERR.version],
  ['retry', ERR.retry],
  ['retry_on', ERR.retryOn],
  ['before_execute', ERR.beforeExecute],
  ['after_execute', ERR.afterExecute],
  ['hook_timeout', ERR.hookTimeout],
  ['disabled', ERR.disabled],
];

/** The objects a FunConfig may hold where a JSON object is expected (not a Date or a Map). */
const OBJECT_FIELDS = ['choose_node_mode', 'check_permission', 'retry'] as const;

/** The fields that fail fun-config.schema.json or one of the rules it cannot say. */
function failedFields(raw: Record<string, unknown>, options: ValidateOptions): Set<string> {
  const failed = new Set<string>();
  if (!validateFunConfigShape(raw))
    for (const error of validateFunConfigShape.errors ?? []) failed.add(fieldOf(error));
  for (const field of OBJECT_FIELDS) {
    const value = raw[field];
    if (typeof value === 'object' && value !== null && !isPlainObject(value)) failed.add(field);
  }
  const weights = (raw.choose_node_mode as { weighted?: unknown } | undefined)?.weighted;
  if (typeof weights === 'object' && weights !== null && !isPlainObject(weights))
    failed.add('choose_node_mode');
  const hookNames = options.hookNames;
  if (hookNames !== undefined) {
    for (const field of ['before_execute', 'after_execute'] as const) {
      const name = raw[field];
      if (typeof name === 'string' && !hookNames.has(name)) failed.add(field);
    }
  }
  return failed;
}

function nodeModeOf(value: ChooseNodeMode | undefined): NodeMode {
  if (value === undefined || value === 'random') return { kind: 'random' };
  if (value === 'hash') return { kind: 'hash' };
  if (value === 'round_robin') return { kind: 'round_robin' };
  if ('hash' in value) return { kind: 'hash_arg', key: value.hash };
  if ('sticky' in value) {
    return {
      kind: 'sticky',
      key: value.sticky,
      ttlMs: value.ttl_ms ?? FUN_CONFIG_DEFAULTS.stickyTtlMs,
    };
  }
  const map = new Map<string, number>();
  let defaultWeight = 0;
  for (const [version, weight] of Object.entries(value.weighted)) {
    if (version === '*') defaultWeight = weight;
    else map.set(version, weight);
  }
  return { kind: 'weighted', weights: map, defaultWeight };
}

function timeoutOf(value: number | 'infinity' | undefined): number {
  if (value === undefined) return FUN_CONFIG_DEFAULTS.timeoutMs;
  return value === 'infinity' ? FUN_CONFIG_DEFAULTS.infinityTimeoutMs : value;
}

function permissionOf(value: CheckPermission | undefined): PermissionMode {
  if (value === undefined || value === false) return { kind: 'none' };
  if (value === 'any_authenticated') return { kind: 'any_authenticated' };
  if ('arg' in value) return { kind: 'arg', arg: value.arg };
  return { kind: 'role', roles: Object.freeze([...value.role]) };
}

function retryOf(value: RetryConfig | undefined): RetryMode {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return { kind: 'all_nodes', attempts: Math.trunc(value) };
  if ('same_node' in value) return { kind: 'same_node', attempts: Math.trunc(value.same_node) };
  return { kind: 'all_nodes', attempts: Math.trunc(value.all_nodes) };
}

/** Copies the known fields the worker sent, normalising the version. */
function normalisedSource(raw: Record<string, unknown>): FunConfig {
  const source: Record<string, unknown> = {};
  for (const field of KNOWN_FIELDS) {
    if (has(raw, field) && raw[field] !== undefined) source[field] = copyJson(raw[field]);
  }
  source.version = normalizeVersion(raw.version);
  return source as unknown as FunConfig;
}

/** A defensive deep copy, so later changes to the worker's object do not reach the registry. */
function copyJson(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}

/**
 * Validates a worker's FunConfig (snake_case JSON) and resolves it with the documented defaults.
 * The shape is checked by the validator compiled from fun-config.schema.json; the registered hook
 * names and arg_types against arg_orders in code. All errors are collected, in a fixed order.
 */
export function validateFunConfig(raw: unknown, options: ValidateOptions): ValidateResult {
  if (!isPlainObject(raw)) return { ok: false, errors: [ERR.notObject] };
  const failed = failedFields(raw, options);
  const args = parseArgTypes(raw.arg_types, raw.arg_orders);
  const errors: string[] = [];
  for (const [field, message] of FIELD_MESSAGES) {
    if (field === 'arg_types') {
      if (!args.ok) errors.push(`${message}: ${args.detail}`);
    } else if (failed.has(field)) errors.push(message);
  }
  if (errors.length > 0 || !args.ok) return { ok: false, errors };

  const config = raw as unknown as FunConfig;
  const resolved: ResolvedFunConfig = {
    service: config.service,
    requestType: config.request_type,
    version: normalizeVersion(config.version),
    nodes: config.nodes ?? options.nodesDefault,
    nodeMode: nodeModeOf(config.choose_node_mode),
    timeoutMs: timeoutOf(config.timeout),
    args: args.rules === null ? null : Object.freeze(args.rules),
    argsAsMap: config.arg_orders === 'map',
    responseType: config.response_type ?? FUN_CONFIG_DEFAULTS.responseType,
    permission: permissionOf(config.check_permission),
    permissionCallback: config.permission_callback ?? false,
    requestInfo: config.request_info ?? false,
    disabled: config.disabled ?? false,
    retry: retryOf(config.retry),
    retryOn: config.retry_on ?? FUN_CONFIG_DEFAULTS.retryOn,
    beforeExecute: config.before_execute ?? null,
    afterExecute: config.after_execute ?? null,
    hookTimeoutMs: config.hook_timeout ?? FUN_CONFIG_DEFAULTS.hookTimeoutMs,
    source: normalisedSource(raw),
  };
  return { ok: true, config: Object.freeze(resolved) };
}

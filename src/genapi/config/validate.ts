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
  ArgRule,
  FunConfig,
  NodeMode,
  PermissionMode,
  ResolvedFunConfig,
  ResponseType,
  RetryMode,
} from '../types.js';
import { isPlainObject, parseArgTypes } from './arg-spec.js';

export interface ValidateOptions {
  /** `nodes` when the config does not say. */
  nodesDefault: 'local' | 'nats';
  /** When given, before_execute/after_execute must name one of these. */
  hookNames?: ReadonlySet<string>;
}

export type ValidateResult =
  { ok: true; config: ResolvedFunConfig } | { ok: false; errors: string[] };

export const DEFAULT_TIMEOUT_MS = 5000;
export const INFINITY_TIMEOUT_MS = 25_000;
export const MIN_TIMEOUT_MS = 100;
export const MAX_TIMEOUT_MS = 300_000;
export const DEFAULT_HOOK_TIMEOUT_MS = 5000;
export const DEFAULT_STICKY_TTL_MS = 3_600_000;

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
 * wildcards), and no control characters.
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

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[]): boolean {
  return Object.keys(obj).every((key) => allowed.includes(key));
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function parseNodeMode(value: unknown): NodeMode | null {
  if (value === undefined || value === 'random') return { kind: 'random' };
  if (value === 'hash') return { kind: 'hash' };
  if (value === 'round_robin') return { kind: 'round_robin' };
  if (!isPlainObject(value)) return null;

  if (has(value, 'hash')) {
    if (!onlyKeys(value, ['hash']) || !isNonEmptyString(value.hash)) return null;
    return { kind: 'hash_arg', key: value.hash };
  }
  if (has(value, 'sticky')) {
    if (!onlyKeys(value, ['sticky', 'ttl_ms']) || !isNonEmptyString(value.sticky)) return null;
    const ttl = value.ttl_ms;
    if (ttl !== undefined && !isPositiveInteger(ttl)) return null;
    return { kind: 'sticky', key: value.sticky, ttlMs: ttl ?? DEFAULT_STICKY_TTL_MS };
  }
  if (has(value, 'weighted')) {
    const weights = value.weighted;
    if (!onlyKeys(value, ['weighted']) || !isPlainObject(weights)) return null;
    const entries = Object.entries(weights);
    if (entries.length === 0) return null;
    const map = new Map<string, number>();
    let defaultWeight = 0;
    for (const [version, weight] of entries) {
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) return null;
      if (version === '*') defaultWeight = weight;
      else map.set(version, weight);
    }
    return { kind: 'weighted', weights: map, defaultWeight };
  }
  return null;
}

function parseTimeout(value: unknown): number | null {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  if (value === 'infinity') return INFINITY_TIMEOUT_MS;
  if (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= MIN_TIMEOUT_MS &&
    value <= MAX_TIMEOUT_MS
  ) {
    return value;
  }
  return null;
}

function parseResponseType(value: unknown): ResponseType | null {
  if (value === undefined) return 'sync';
  return value === 'sync' || value === 'async' || value === 'stream' || value === 'none'
    ? value
    : null;
}

function parsePermission(value: unknown): PermissionMode | null {
  if (value === undefined || value === false) return { kind: 'none' };
  if (value === 'any_authenticated') return { kind: 'any_authenticated' };
  if (!isPlainObject(value)) return null;
  if (has(value, 'arg')) {
    if (!onlyKeys(value, ['arg']) || !isNonEmptyString(value.arg)) return null;
    return { kind: 'arg', arg: value.arg };
  }
  if (has(value, 'role')) {
    const roles = value.role;
    if (
      !onlyKeys(value, ['role']) ||
      !Array.isArray(roles) ||
      !roles.every((r) => typeof r === 'string')
    )
      return null;
    return { kind: 'role', roles: Object.freeze([...roles]) };
  }
  return null;
}

function isRetryCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0;
}

/** `undefined` = invalid. */
function parseRetry(value: unknown): RetryMode | undefined {
  if (value === undefined || value === null) return null;
  if (isRetryCount(value)) return { kind: 'all_nodes', attempts: Math.trunc(value) };
  if (!isPlainObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const kind = keys[0];
  if (kind !== 'same_node' && kind !== 'all_nodes') return undefined;
  const n = value[kind];
  return isRetryCount(n) ? { kind, attempts: Math.trunc(n) } : undefined;
}

/** `undefined` = invalid. */
function parseHook(
  value: unknown,
  hookNames: ReadonlySet<string> | undefined,
): string | null | undefined {
  if (value === undefined || value === null) return null;
  if (!isNonEmptyString(value)) return undefined;
  if (hookNames !== undefined && !hookNames.has(value)) return undefined;
  return value;
}

function optionalBoolean(value: unknown, fallback: boolean): boolean | null {
  if (value === undefined) return fallback;
  return typeof value === 'boolean' ? value : null;
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
 * All errors are collected, in a fixed order.
 */
export function validateFunConfig(raw: unknown, options: ValidateOptions): ValidateResult {
  if (!isPlainObject(raw)) return { ok: false, errors: [ERR.notObject] };
  const errors: string[] = [];

  const requestType = raw.request_type;
  if (!isSubjectToken(requestType)) errors.push(ERR.requestType);

  const service = raw.service;
  if (!isSubjectToken(service)) errors.push(ERR.service);

  const nodesRaw = raw.nodes;
  const nodes = nodesRaw === undefined ? options.nodesDefault : nodesRaw;
  if (nodes !== 'local' && nodes !== 'nats') errors.push(ERR.nodes);

  const nodeMode = parseNodeMode(raw.choose_node_mode);
  if (nodeMode === null) errors.push(ERR.chooseNodeMode);

  const timeoutMs = parseTimeout(raw.timeout);
  if (timeoutMs === null) errors.push(ERR.timeout);

  const args = parseArgTypes(raw.arg_types, raw.arg_orders);
  if (!args.ok) errors.push(`${ERR.args}: ${args.detail}`);

  const responseType = parseResponseType(raw.response_type);
  if (responseType === null) errors.push(ERR.responseType);

  const permission = parsePermission(raw.check_permission);
  if (permission === null) errors.push(ERR.checkPermission);

  const permissionCallback =
    raw.permission_callback === null ? false : optionalBoolean(raw.permission_callback, false);
  if (permissionCallback === null) errors.push(ERR.permissionCallback);

  const requestInfo = optionalBoolean(raw.request_info, false);
  if (requestInfo === null) errors.push(ERR.requestInfo);

  const versionRaw = raw.version;
  if (versionRaw !== undefined && versionRaw !== null && typeof versionRaw !== 'string')
    errors.push(ERR.version);

  const retry = parseRetry(raw.retry);
  if (retry === undefined) errors.push(ERR.retry);

  const retryOnRaw = raw.retry_on ?? 'transport';
  const retryOn = retryOnRaw === 'transport' || retryOnRaw === 'any' ? retryOnRaw : null;
  if (raw.retry_on === null || retryOn === null) errors.push(ERR.retryOn);

  const beforeExecute = parseHook(raw.before_execute, options.hookNames);
  if (beforeExecute === undefined) errors.push(ERR.beforeExecute);

  const afterExecute = parseHook(raw.after_execute, options.hookNames);
  if (afterExecute === undefined) errors.push(ERR.afterExecute);

  const hookTimeoutRaw = raw.hook_timeout;
  const hookTimeoutMs = hookTimeoutRaw === undefined ? DEFAULT_HOOK_TIMEOUT_MS : hookTimeoutRaw;
  if (!isPositiveInteger(hookTimeoutMs)) errors.push(ERR.hookTimeout);

  const disabled = optionalBoolean(raw.disabled, false);
  if (disabled === null) errors.push(ERR.disabled);

  if (errors.length > 0) return { ok: false, errors };

  const rules = (args as { ok: true; rules: ArgRule[] | null }).rules;
  const config: ResolvedFunConfig = {
    service: service as string,
    requestType: requestType as string,
    version: normalizeVersion(versionRaw),
    nodes: nodes as 'local' | 'nats',
    nodeMode: nodeMode as NodeMode,
    timeoutMs: timeoutMs as number,
    args: rules === null ? null : Object.freeze(rules),
    argsAsMap: raw.arg_orders === 'map',
    responseType: responseType as ResponseType,
    permission: permission as PermissionMode,
    permissionCallback: permissionCallback as boolean,
    requestInfo: requestInfo as boolean,
    disabled: disabled as boolean,
    retry: retry as RetryMode,
    retryOn: retryOn as 'transport' | 'any',
    beforeExecute: beforeExecute as string | null,
    afterExecute: afterExecute as string | null,
    hookTimeoutMs: hookTimeoutMs as number,
    source: normalisedSource(raw),
  };
  return { ok: true, config: Object.freeze(config) };
}

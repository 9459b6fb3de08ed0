import type { EventualOptions } from './cluster/eventual.js';
import type { MembershipOptions } from './cluster/membership.js';
import { MIN_SECRET_LENGTH } from './cluster/signing.js';
import type { StrictOptions } from './cluster/strict.js';
import { PolicyError } from './policy.js';
import { RATE_LIMITS_DEFAULTS } from './rate-limits-defaults.js';
import type { AlgorithmName, Fallback, Mode, PolicyConfig } from './types.js';

/** Shorthand for one per-IP connect policy (`socket_connect`). */
export interface ConnectLimitOptions {
  /** Connects per window per IP. */
  limit: number;
  /** The window in ms. */
  windowMs: number;
  /** Default "gcra" (burst = limit). */
  algorithm?: AlgorithmName;
  /** GCRA burst. Default: limit. */
  burst?: number;
  /** Where counts live. Default "local". */
  mode?: Mode;
  /** strict only: what to do when the store is down. */
  fallback?: Fallback;
}

/** The built-in rate limits (`GenApiOptions.rateLimits`, the config file's `rateLimits`). */
export interface RateLimitsOptions {
  /** gen_api and connect policies. */
  policies?: PolicyConfig[];
  /** Count every policy without denying (rollout). Default false. */
  shadow?: boolean;
  /** A per-IP connect limit (the `socket_connect` policy), or false. Default: none. */
  connect?: ConnectLimitOptions | false;
  /**
   * Eventual mode and membership: batching, warm-up, heartbeats, and the bounds on what peers
   * may send (`maxOrigins`, `maxKeysPerOrigin`, `maxBatchHits`, `maxReceivedBatchBytes`,
   * `maxKeyLength`, `signedMaxAgeMs`; protocol/ratelimit.md §7).
   */
  eventual?: EventualOptions & MembershipOptions;
  /** Strict mode: store timeout, CAS attempts, replicas; `servers` gives the KV store its own connection. */
  strict?: StrictOptions & { servers?: string | string[] };
  /** Expiry sweep resolution. Default 1000 ms. */
  sweepMs?: number;
  /** Keys per policy. Default 1 000 000. */
  maxKeys?: number;
  /**
   * Shared by every gateway (≥ 16 characters): signs every rate-limit cluster message on NATS
   * (hit batches, heartbeats, sync and replay requests and answers, runtime policy changes);
   * messages without its signature are refused. It also lets gateways share and sync runtime
   * policy changes: without it a change stays on the gateway it was made on.
   */
  clusterSecret?: string;
}

/** The policy name of `connect`. */
export const CONNECT_POLICY = 'socket_connect';

const KEYS = new Set([
  'policies',
  'shadow',
  'connect',
  'eventual',
  'strict',
  'sweepMs',
  'maxKeys',
  'clusterSecret',
]);
const CONNECT_KEYS = new Set(['limit', 'windowMs', 'algorithm', 'burst', 'mode', 'fallback']);
/** The cluster-message limits of `eventual` (positive integers, checked at start). */
const EVENTUAL_LIMITS = [
  'maxOrigins',
  'signedMaxAgeMs',
  'maxKeysPerOrigin',
  'maxBatchHits',
  'maxReceivedBatchBytes',
  'maxKeyLength',
] as const;
const EVENTUAL_KEYS = new Set([
  'flushMs',
  'maxBatchBytes',
  'warmup',
  'retainHits',
  'replayTimeoutMs',
  'heartbeatMs',
  'missedHeartbeats',
  'maxSkewMs',
  ...EVENTUAL_LIMITS,
]);
const STRICT_KEYS = new Set([
  'timeoutMs',
  'casAttempts',
  'breakerFailures',
  'breakerOpenMs',
  'bucketRetryMs',
  'replicas',
  'bucketPrefix',
  'maxSkewMs',
  'skewProbeMs',
  'servers',
]);

function checkKeys(name: string, value: unknown, keys: ReadonlySet<string>): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new PolicyError(`${name} must be an object`);
  for (const key of Object.keys(value))
    if (!keys.has(key)) throw new PolicyError(`${name}: unknown option "${key}"`);
}

function checkEventualLimits(eventual: RateLimitsOptions['eventual']): void {
  if (!eventual) return;
  for (const name of EVENTUAL_LIMITS) {
    const value = eventual[name];
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0))
      throw new PolicyError(`rateLimits.eventual.${name} must be a positive integer`);
  }
  // A batch's JSON may be larger than the estimate its size is checked by (escaped characters).
  const sent = eventual.maxBatchBytes ?? RATE_LIMITS_DEFAULTS.eventual.maxBatchBytes;
  const received =
    eventual.maxReceivedBatchBytes ?? RATE_LIMITS_DEFAULTS.eventual.maxReceivedBatchBytes;
  if (sent * 4 > received)
    throw new PolicyError(
      `rateLimits.eventual.maxReceivedBatchBytes (${received}) must be at least 4 × maxBatchBytes (${sent})`,
    );
}

/** Checks the `rateLimits` options around the policies (each policy is checked by Policy). */
export function checkRateLimitsOptions(options: RateLimitsOptions): void {
  checkKeys('rateLimits', options, KEYS);
  checkKeys(
    'rateLimits.connect',
    options.connect === false ? undefined : options.connect,
    CONNECT_KEYS,
  );
  checkKeys('rateLimits.eventual', options.eventual, EVENTUAL_KEYS);
  checkEventualLimits(options.eventual);
  checkKeys('rateLimits.strict', options.strict, STRICT_KEYS);
  if (options.policies !== undefined && !Array.isArray(options.policies))
    throw new PolicyError('rateLimits.policies must be a list');
  const secret = options.clusterSecret;
  if (secret !== undefined && (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH)) {
    throw new PolicyError(
      `rateLimits.clusterSecret must be a string of at least ${MIN_SECRET_LENGTH} characters`,
    );
  }
}

/** The configured policies, with the `connect` shorthand as the `socket_connect` policy. */
export function configuredPolicies(options: RateLimitsOptions): PolicyConfig[] {
  const policies = [...(options.policies ?? [])];
  if (options.connect) {
    const { limit, windowMs, algorithm = 'gcra', burst, mode, fallback } = options.connect;
    policies.push({
      id: CONNECT_POLICY,
      scope: 'connect',
      key: 'ip',
      algorithm,
      limit,
      windowMs,
      ...(burst === undefined ? {} : { burst }),
      ...(mode === undefined ? {} : { mode }),
      ...(fallback === undefined ? {} : { fallback }),
    });
  }
  return policies;
}

import type { GenApiRequest } from '../genapi/types.js';
import { createAlgorithm } from './algorithms/index.js';
import { StateStore } from './store.js';
import {
  ALGORITHMS,
  MODES,
  type Algorithm,
  type Fallback,
  type KeyDimension,
  type Mode,
  type PolicyConfig,
  type PolicyScope,
  type RateLimitStats,
} from './types.js';
import { GatewayError } from '../errors.js';

/** What a request carries that policies key on, besides the request itself. */
export interface RateContext {
  /** Client IP (IPv6 folded to its /64). */
  readonly ip: string | null;
  /** The connection's unique id. */
  readonly socketId: string | null;
}

/** An invalid rate-limit policy or `rateLimits` option; the message says which field and why. */
export class PolicyError extends GatewayError {
  override readonly name = 'PolicyError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_POLICY', message, options);
  }
}

const POLICY_KEYS = new Set([
  'id',
  'scope',
  'key',
  'algorithm',
  'limit',
  'windowMs',
  'burst',
  'cost',
  'mode',
  'fallback',
  'shadow',
]);
const SCOPE_KEYS = new Set(['service', 'requestType']);

/** A typo ("requestTyp") must not silently widen a policy: unknown options are errors. */
function checkKeys(what: string, value: object, known: ReadonlySet<string>): void {
  for (const key of Object.keys(value))
    if (!known.has(key)) throw new PolicyError(`${what}: unknown option "${key}"`);
}

/** Dot-separated words: safe in logs, metrics, NATS subjects and KV keys. */
const ID = /^(?=.{1,64}$)[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

function positive(id: string, name: string, value: unknown, integer: boolean): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new PolicyError(
      `policy ${id}: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Folds an IPv6 address to its /64 (one subscriber usually holds a whole /64). */
export function normaliseIp(address: string): string {
  const bare = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (!bare.includes(':')) return bare;
  const [head = '', tail = ''] = bare.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = bare.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((group) => (parseInt(group, 16) || 0).toString(16))
    .join(':')}::/64`;
}

/** A validated policy with its algorithm and local state. */
export class Policy {
  readonly id: string;
  readonly scope: PolicyScope;
  readonly key: KeyDimension;
  readonly algorithm: Algorithm<unknown>;
  readonly cost: number;
  readonly mode: Mode;
  readonly fallback: Fallback;
  readonly shadow: boolean;
  /** Local state by bare key value (local and eventual modes; strict mode's fallback). */
  readonly store: StateStore<unknown>;
  /** `<dimension>:` */
  private readonly keyPrefix: string;
  /** One shared factory (no closure per check). */
  readonly createState: () => unknown;
  /**
   * strict with fallback "local" only: the last state the store confirmed per key (full limit,
   * the policy's own algorithm) plus this node's fallback admissions since. The fallback never
   * admits what this state says the store would deny.
   */
  readonly known: StateStore<unknown> | null;
  /** strict only: values the store denied, answered locally until they may pass (no store call). */
  readonly denials = new Map<string, { until: number; limit: number; windowMs: number }>();
  /** Counters for metrics. */
  readonly stats: RateLimitStats = {
    checks: 0,
    denied: 0,
    wouldDeny: 0,
    fallback: 0,
    failOpen: 0,
    failClosed: 0,
    storeErrors: 0,
    denyCacheHits: 0,
  };

  constructor(
    readonly config: PolicyConfig,
    store: { sweepMs?: number; maxKeys?: number } = {},
    /** A replaced policy's store whose states this one continues (RateLimiter.setPolicy decides). */
    inherit: StateStore<unknown> | null = null,
  ) {
    if (config === null || typeof config !== 'object' || Array.isArray(config))
      throw new PolicyError('a policy must be an object');
    const id = config.id;
    if (typeof id !== 'string' || !ID.test(id))
      throw new PolicyError(`policy id must match ${ID}, got ${JSON.stringify(id)}`);
    this.id = id;
    checkKeys(`policy ${id}`, config, POLICY_KEYS);
    const algorithm = config.algorithm ?? 'sliding_log';
    if (!ALGORITHMS.includes(algorithm))
      throw new PolicyError(`policy ${id}: algorithm must be one of ${ALGORITHMS.join(', ')}`);
    const limit = positive(id, 'limit', config.limit, true);
    const windowMs = positive(id, 'windowMs', config.windowMs, true);
    const burst =
      config.burst === undefined ? undefined : positive(id, 'burst', config.burst, true);
    this.cost = config.cost === undefined ? 1 : positive(id, 'cost', config.cost, true);
    if (this.cost > (algorithm === 'gcra' ? (burst ?? limit) : limit)) {
      throw new PolicyError(
        `policy ${id}: cost ${this.cost} can never fit (it exceeds the ${algorithm === 'gcra' ? 'burst' : 'limit'})`,
      );
    }
    this.mode = config.mode ?? 'local';
    if (!MODES.includes(this.mode))
      throw new PolicyError(`policy ${id}: mode must be one of ${MODES.join(', ')}`);
    this.fallback = config.fallback ?? 'local';
    if (!['local', 'open', 'closed'].includes(this.fallback))
      throw new PolicyError(`policy ${id}: fallback must be local, open or closed`);
    this.shadow = config.shadow === true;
    this.scope = config.scope ?? 'global';
    const scope: unknown = this.scope;
    if (scope !== 'global' && scope !== 'connect') {
      const fn = scope as { service?: unknown; requestType?: unknown } | null;
      if (
        typeof fn !== 'object' ||
        fn === null ||
        typeof fn.service !== 'string' ||
        fn.service === '' ||
        (fn.requestType !== undefined && typeof fn.requestType !== 'string')
      ) {
        throw new PolicyError(
          `policy ${id}: scope must be "global", "connect" or {service, requestType?}`,
        );
      }
      checkKeys(`policy ${id}: scope`, fn, SCOPE_KEYS);
    }
    this.key = config.key;
    const key = this.key;
    const valid =
      key === 'user_id' ||
      key === 'device_id' ||
      key === 'ip' ||
      key === 'socket_id' ||
      (typeof key === 'object' && key !== null && typeof key.arg === 'string' && key.arg !== '');
    if (!valid)
      throw new PolicyError(
        `policy ${id}: key must be user_id, device_id, ip, socket_id or {arg: name}`,
      );
    if (typeof key === 'object') checkKeys(`policy ${id}: key`, key, new Set(['arg']));
    if (this.scope === 'connect' && key !== 'ip')
      throw new PolicyError(
        `policy ${id}: connect policies are keyed by ip (nothing else is known before connect)`,
      );
    this.algorithm = createAlgorithm(algorithm, limit, windowMs, burst);
    this.keyPrefix = `${typeof key === 'string' ? key : `arg.${key.arg}`}:`;
    const states = this.algorithm;
    this.createState = () => states.create();
    this.store = inherit ?? new StateStore({ ...store, onFull: key === 'ip' ? 'deny' : 'evict' });
    this.known =
      this.mode === 'strict' && this.fallback === 'local'
        ? new StateStore({ ...store, onFull: 'evict' })
        : null;
  }

  /**
   * Whether `next` (a replacement of this policy) can continue this one's counters: the same
   * algorithm, key and mode (so the same clock and meaning of every state), and for the
   * window-aligned algorithms the same window. Strict counters live in the store and are kept
   * by the id; only their local fallback state is reset.
   */
  carriesTo(next: Policy): boolean {
    if (next.mode !== this.mode || this.mode === 'strict') return false;
    if (next.algorithm.name !== this.algorithm.name || next.storageKey('') !== this.storageKey(''))
      return false;
    const aligned =
      this.algorithm.name === 'fixed_window' || this.algorithm.name === 'sliding_window';
    return !aligned || next.algorithm.windowMs === this.algorithm.windowMs;
  }

  /** How long one hit can affect decisions. */
  get horizonMs(): number {
    return this.algorithm.horizonMs;
  }

  /** Whether the policy applies to a request for this function. */
  applies(service: string, requestType: string): boolean {
    const scope = this.scope;
    if (scope === 'global') return true;
    if (scope === 'connect') return false;
    return (
      scope.service === service &&
      (scope.requestType === undefined || scope.requestType === requestType)
    );
  }

  /** The key value, or null when the request lacks it (the policy is then skipped). */
  keyOf(request: GenApiRequest | null, context: RateContext): string | null {
    const key = this.key;
    let value: unknown;
    if (key === 'ip') value = context.ip;
    else if (key === 'socket_id') value = context.socketId;
    else if (request === null) return null;
    else if (key === 'user_id') value = request.user_id;
    else if (key === 'device_id') value = request.device_id;
    else value = request.args[key.arg];
    if (typeof value === 'string') return value === '' ? null : value;
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    return null;
  }

  /**
   * `<dimension>:<value>`: the key on the wire (eventual hits) and in the KV store, where several
   * policies and dimensions meet. Locally each policy has its own store keyed by the bare value.
   */
  storageKey(value: string): string {
    return this.keyPrefix + value;
  }

  /** The bare value of a storage key of this policy's dimension, or null. */
  valueOf(storageKey: string): string | null {
    return storageKey.startsWith(this.keyPrefix) ? storageKey.slice(this.keyPrefix.length) : null;
  }
}

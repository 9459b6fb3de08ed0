import type { GenApiRequest } from '../genapi/types.js';
import { createAlgorithm } from './algorithms/index.js';
import { StateStore } from './store.js';
import { checkPolicyConfig, POLICY_DEFAULTS, PolicyError } from './policy-config.js';
import type {
  Algorithm,
  Fallback,
  KeyDimension,
  Mode,
  PolicyConfig,
  PolicyScope,
  RateLimitStats,
} from './types.js';

/** What a request carries that policies key on, besides the request itself. */
export interface RateContext {
  /** Client IP (IPv6 folded to its /64). */
  readonly ip: string | null;
  /** The connection's unique id. */
  readonly socketId: string | null;
}

export { PolicyError };

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
    checkPolicyConfig(config);
    this.id = config.id;
    const algorithm = config.algorithm ?? POLICY_DEFAULTS.algorithm;
    this.cost = config.cost ?? POLICY_DEFAULTS.cost;
    this.mode = config.mode ?? POLICY_DEFAULTS.mode;
    this.fallback = config.fallback ?? POLICY_DEFAULTS.fallback;
    this.shadow = config.shadow === true;
    this.scope = config.scope ?? POLICY_DEFAULTS.scope;
    this.key = config.key;
    const key = this.key;
    const { limit, windowMs, burst } = config;
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

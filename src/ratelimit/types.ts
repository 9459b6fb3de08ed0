import { GatewayError } from '../errors.js';
/**
 * Rate limiting data model (protocol/ratelimit.md). Times are milliseconds; decisions never hold
 * negative numbers and round waits up.
 */

/** The rate-limit algorithms a policy may use. */
export const ALGORITHMS = ['sliding_log', 'sliding_window', 'gcra', 'fixed_window'] as const;
/** One algorithm: sliding log (default, exact), sliding window, GCRA (rate + burst) or fixed window. */
export type AlgorithmName = (typeof ALGORITHMS)[number];

/** The modes a policy may count in. */
export const MODES = ['local', 'eventual', 'strict'] as const;
/** Where a policy's counts live: this node, every node by broadcast, or JetStream KV. */
export type Mode = (typeof MODES)[number];

/** What `strict` does when the store is slow or down. */
export type Fallback = 'local' | 'open' | 'closed';

/** What identifies the caller for a policy. */
export type KeyDimension = 'user_id' | 'device_id' | 'ip' | 'socket_id' | { readonly arg: string };

/**
 * Which requests a policy applies to: all gen_api requests, a service, one function, or socket
 * connects (checked at the HTTP upgrade / LongPoll open, keyed by IP).
 */
export type PolicyScope =
  'global' | 'connect' | { readonly service: string; readonly requestType?: string };

/** A policy as configured (config file, admin API). */
export interface PolicyConfig {
  /** Unique policy name (the admin API's key). */
  id: string;
  /** Which requests it limits. Default "global". */
  scope?: PolicyScope;
  /** What identifies the caller. */
  key: KeyDimension;
  /** Default "sliding_log". */
  algorithm?: AlgorithmName;
  /** Requests (or cost units) per window. */
  limit: number;
  /** The window in ms. */
  windowMs: number;
  /** GCRA only: the burst allowance in requests. Default: limit. */
  burst?: number;
  /** Units one request costs. Default 1. */
  cost?: number;
  /** Where counts live. Default "local". */
  mode?: Mode;
  /** strict only. Default "local". */
  fallback?: Fallback;
  /** Count, never deny. */
  shadow?: boolean;
}

/** Counters of a policy, or of the whole limiter, for metrics (`/admin/rate-limits`). */
export interface RateLimitStats {
  /** Checks made. */
  checks: number;
  /** Requests denied. */
  denied: number;
  /** Requests a shadow policy would have denied. */
  wouldDeny: number;
  /** Strict checks answered by the fallback. */
  fallback: number;
  /** Fallback "open" decisions (allowed without the store). */
  failOpen: number;
  /** Fallback "closed" decisions (denied without the store). */
  failClosed: number;
  /** Store errors and timeouts. */
  storeErrors: number;
  /** Strict denials answered from the local deny cache. */
  denyCacheHits: number;
}

/** The outcome of one check of one policy. */
export interface Decision {
  allowed: boolean;
  /** q: the quota. */
  limit: number;
  /** w: the window. */
  windowMs: number;
  /** r: what is left after this request (≥ 0). */
  remaining: number;
  /** t: ms until more quota becomes available (≥ 0). */
  resetMs: number;
  /** Denied: ms until the same request would be allowed (≥ 1, rounded up); 0 when allowed. */
  retryAfterMs: number;
}

export function emptyDecision(): Decision {
  return { allowed: true, limit: 0, windowMs: 0, remaining: 0, resetMs: 0, retryAfterMs: 0 };
}

/** A request that can never fit (cost above the capacity): no retryAfter is promised. */
export class NeverSatisfiableError extends GatewayError {
  override readonly name = 'NeverSatisfiableError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_NEVER_SATISFIABLE', message, options);
  }
}

/**
 * One algorithm with its parameters: a state machine over a small per-key state. `peek` never
 * changes state (denied requests consume nothing); `commit` records an allowed request; `refund`
 * takes one back (multi-limit rollback); `apply` records a hit seen elsewhere at its origin time
 * (eventual mode). States encode to small JSON values (snapshots, KV).
 */
export interface Algorithm<S> {
  readonly name: AlgorithmName;
  readonly limit: number;
  readonly windowMs: number;
  /** How long one hit can affect decisions (the window; longer for GCRA bursts, sliding counters). */
  readonly horizonMs: number;
  create(): S;
  peek(state: S, now: number, cost: number, out: Decision): void;
  commit(state: S, now: number, cost: number): void;
  refund(state: S, at: number, cost: number): void;
  apply(state: S, at: number, cost: number): void;
  /** After this time the state carries no information and can be dropped. */
  expiresAt(state: S): number;
  encode(state: S): unknown;
  decode(value: unknown): S | null;
}

/** ceil for waits: a wait is never rounded down (a client retrying on time must succeed). */
export function ceilMs(ms: number): number {
  return ms <= 0 ? 0 : Math.ceil(ms - 1e-9);
}

/**
 * Whole ms from `now` until `due`, such that `now + wait >= due` holds in floating point too (with
 * fractional clocks, `ceil(due - now)` can land a hair early).
 */
export function waitUntil(due: number, now: number): number {
  let wait = ceilMs(due - now);
  while (now + wait < due) wait++;
  return wait;
}

/**
 * Strict mode: the JetStream KV store's timeout, CAS attempts, breaker and replicas
 * (`RateLimitsOptions.strict`).
 */
export interface StrictOptions {
  /** A store call that takes longer fails over to the policy's fallback. Default 25 ms. */
  timeoutMs?: number;
  /** Compare-and-swap attempts before the call counts as a store error. Default 5. */
  casAttempts?: number;
  /** KV replicas (3 in production clusters; 1 for a single server). Default 1. */
  replicas?: number;
  /** Bucket names start with this. Default "<prefix>_rl". */
  bucketPrefix?: string;
  /** Clock skew to a KV server above this is logged and reported. Default 500 ms. */
  maxSkewMs?: number;
  /** How often the skew is measured. Default 30 000 ms. */
  skewProbeMs?: number;
  /**
   * Consecutive failed store operations (errors and JetStream timeouts; compare-and-swap
   * conflicts and our own decision deadline do not count) that open the store's breaker: strict
   * decisions then go to the fallback at once instead of waiting `timeoutMs` each. 0 turns the
   * breaker off. Default 3.
   */
  breakerFailures?: number;
  /** How long an open breaker skips the store before one trial decision. Default 1000 ms. */
  breakerOpenMs?: number;
  /**
   * How long creating a bucket retries passing cluster errors ("no suitable peers for
   * placement" while a replica's server restarts), and how long the store then stays off after
   * a creation that failed. Default 5000 ms (`BUCKET_RETRY_MS`).
   */
  bucketRetryMs?: number;
}

/** Counters of the strict tier: KV operations, CAS conflicts, timeouts, errors, the breaker. */
export interface StrictStats {
  /** KV operations issued (get, create, update). */
  operations: number;
  casConflicts: number;
  casExhausted: number;
  timeouts: number;
  /** Hits written after their request had timed out (and been decided by the fallback). */
  lateWrites: number;
  errors: number;
  /** Operations sent to the fallback at once because the store's breaker was open. */
  circuitOpen: number;
  /** The breaker: "closed" (store in use), "open" (skipped) or "half_open" (one trial in flight). */
  breaker: 'closed' | 'open' | 'half_open';
  refunds: number;
  refundFailures: number;
  /** Last measured wall-clock difference KV server − this node (ms), null before the first probe. */
  skewMs: number | null;
}

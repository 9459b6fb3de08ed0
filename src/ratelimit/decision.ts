import type { Policy } from './policy.js';
import type { Decision } from './types.js';

/** Where a decision was made. */
export type DecisionSource = 'local' | 'eventual' | 'strict' | 'fallback';

/** The machine-readable part of a rate-limited answer (protocol/ratelimit.md §3). */
export interface RateLimitDetails {
  policy: string;
  limit: number;
  window_ms: number;
  remaining: number;
  reset_ms: number;
  retry_after_ms: number;
  source: DecisionSource;
}

/**
 * The machine-readable part of a "Rate limit service unavailable" answer (a strict policy with
 * fallback "closed" whose store could not decide): not a rate-limit denial, no retry promised.
 */
export interface UnavailableDetails {
  reason: 'limiter_unavailable';
  policy: string;
  source: 'fallback';
}

/** Filled by `decide` with the tightest allowed decision (for RateLimit headers). */
export interface Observation {
  decision: Decision;
  policy: Policy | null;
}

/** A decision with the policy that made it (connect limits, admin status). */
export interface PolicyDecision {
  readonly policy: Policy;
  readonly decision: Decision;
  readonly source: DecisionSource;
}

/** The limiter's answer: the executor's RateDecision, with typed details. */
export type LimiterDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number; readonly details: RateLimitDetails }
  | { readonly allowed: false; readonly unavailable: true; readonly details: UnavailableDetails };

/** The one "allowed" answer (shared: allowing allocates nothing). */
export const ALLOWED: LimiterDecision = { allowed: true };

export function details(
  policy: Policy,
  decision: Decision,
  source: DecisionSource,
): RateLimitDetails {
  return {
    policy: policy.id,
    limit: decision.limit,
    window_ms: decision.windowMs,
    remaining: decision.remaining,
    reset_ms: decision.resetMs,
    retry_after_ms: decision.retryAfterMs,
    source,
  };
}

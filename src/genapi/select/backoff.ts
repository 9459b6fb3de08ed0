/**
 * Retry backoff: PhoenixGenApi's `NodeSelector.calculate_backoff/2`.
 *
 *   d = min(trunc(baseMs * 2^(attempt-1)), maxMs)          (base 100 ms, max 5000 ms)
 *   jitter (default on): trunc(d * (0.5 + U)), U uniform in (0, 1]   → a delay in (d/2, 3d/2]
 *
 * Note the jitter can take the delay up to 1.5 × maxMs: the cap applies before the jitter, exactly as
 * in PhoenixGenApi. The executor passes the *remaining* retry count (counting down), so the largest
 * delay comes first (§7.4).
 */

export interface BackoffOptions {
  /** Delay of the first attempt in ms. Default 100. */
  baseMs?: number;
  /** Cap applied before the jitter, in ms. Default 5000. */
  maxMs?: number;
  /** Multiply by a factor in (0.5, 1.5]. Default true. */
  jitter?: boolean;
  /** Uniform source in [0, 1) (Math.random's contract). Default Math.random. */
  random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 100;
export const DEFAULT_BACKOFF_MAX_MS = 5_000;

/**
 * The delay in ms before retry `attempt` (1-based). `attempt < 1` (and NaN) is treated as 1; a
 * fractional attempt is truncated. The result is never negative.
 */
export function backoffMs(attempt: number, options: BackoffOptions = {}): number {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
  const maxMs = options.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
  const jitter = options.jitter ?? true;
  const random = options.random ?? Math.random;

  const n = Number.isNaN(attempt) ? 1 : Math.max(1, Math.trunc(attempt));
  // 2 ** huge is Infinity, which the min() caps; no overflow concerns.
  const delay = Math.max(0, Math.min(Math.trunc(baseMs * 2 ** (n - 1)), maxMs));
  if (!jitter) return delay;
  // Erlang's :rand.uniform() is in (0, 1]; random() is in [0, 1), so 1 - random() is in (0, 1].
  const u = 1 - random();
  return Math.max(0, Math.trunc(delay * (0.5 + u)));
}

/**
 * Log-scale latency buckets: bucket 0 holds durations up to LATENCY_MIN_MS, bucket i those up to
 * LATENCY_MIN_MS × LATENCY_GROWTH^i, the last one everything longer. Recording is one Math.log
 * and an increment; quantiles are within ±5 % of the true value (half a bucket), which is what a
 * dashboard needs, and histograms of several seconds merge by adding buckets.
 */

/** Upper bound of the first bucket. */
export const LATENCY_MIN_MS = 0.01;
/** Ratio between the bounds of two neighbouring buckets. */
export const LATENCY_GROWTH = 1.1;
/** Durations above this share the last bucket (reported as this). */
export const LATENCY_MAX_MS = 120_000;

const LOG_GROWTH = Math.log(LATENCY_GROWTH);

/** Buckets of one histogram. */
export const LATENCY_BUCKETS =
  Math.ceil(Math.log(LATENCY_MAX_MS / LATENCY_MIN_MS) / LOG_GROWTH) + 1;

/** The bucket of a duration in ms. */
export function latencyBucket(ms: number): number {
  if (!(ms > LATENCY_MIN_MS)) return 0; // NaN and negatives too
  const index = Math.ceil(Math.log(ms / LATENCY_MIN_MS) / LOG_GROWTH);
  return index < LATENCY_BUCKETS ? index : LATENCY_BUCKETS - 1;
}

/** A bucket's representative value: the geometric middle of its bounds (ms). */
function bucketValue(index: number): number {
  if (index === 0) return LATENCY_MIN_MS;
  if (index === LATENCY_BUCKETS - 1) return LATENCY_MAX_MS;
  return LATENCY_MIN_MS * Math.pow(LATENCY_GROWTH, index - 0.5);
}

/**
 * The `q` quantile (0 < q ≤ 1) of the durations counted in `buckets` (total `count`), rounded to
 * 3 significant digits; null when empty.
 */
export function latencyQuantile(buckets: Uint32Array, count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return Number(bucketValue(i).toPrecision(3));
  }
  return LATENCY_MAX_MS;
}

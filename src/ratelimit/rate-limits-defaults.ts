import { STATE_STORE_DEFAULTS } from './store.js';

/**
 * The defaults of `RateLimitsOptions` the options themselves are checked against (the limiter and
 * the eventual tier apply the same values: STATE_STORE_DEFAULTS, cluster/eventual.ts).
 */
export const RATE_LIMITS_DEFAULTS = {
  sweepMs: STATE_STORE_DEFAULTS.sweepMs,
  maxKeys: STATE_STORE_DEFAULTS.maxKeys,
  eventual: { maxBatchBytes: 32_768, maxReceivedBatchBytes: 1_048_576 },
} as const;

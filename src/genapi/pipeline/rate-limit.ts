/**
 * Step 4, rate limit: the RateLimitGate's decision (a request with bad arguments still counts),
 * and the push for a refused one.
 */
import { errorResponse, ERRORS } from '../response.js';
import type { GenApiRequest, GenApiResponse, ResolvedFunConfig } from '../types.js';
import type { PipelineContext } from './context.js';
import { NO_CONTEXT, type RateDecision, type RequestSink } from './types.js';

const ALLOWED: RateDecision = { allowed: true };

/** The limiter's decision; synchronous unless the limiter needs a store (strict limits). */
export function rateLimit(
  ctx: PipelineContext,
  request: GenApiRequest,
  config: ResolvedFunConfig,
  sink: RequestSink,
): RateDecision | Promise<RateDecision> {
  const limiter = ctx.options.rateLimiter;
  if (!limiter) return ALLOWED;
  return limiter.check(request, config, sink.rateContext ?? NO_CONTEXT);
}

/**
 * The push for a refused request: PhoenixGenApi's `Rate limit exceeded. Please retry after N
 * seconds.` (N ≥ 1, rounded up), or `Rate limit service unavailable` (can_retry) when the limits'
 * store could not decide, each with `rate_limit`, the machine-readable details, when the limiter
 * gave them (protocol/gen_api.md §2).
 */
export function rateLimited(
  decision: Exclude<RateDecision, { allowed: true }>,
  requestId: unknown,
): GenApiResponse {
  if ('unavailable' in decision)
    return {
      ...errorResponse(requestId, ERRORS.rateLimiterUnavailable, true),
      ...(decision.details === undefined ? {} : { rate_limit: decision.details }),
    };
  const response = errorResponse(
    requestId,
    ERRORS.rateLimited(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))),
    true,
  );
  return decision.details === undefined ? response : { ...response, rate_limit: decision.details };
}

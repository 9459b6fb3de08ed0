import type { ConnectLimit, ConnectLimitDecision } from '../config/socket-options.js';
import type { LimiterDecision, Observation } from './decision.js';
import type { RateLimiter } from './limiter.js';
import type { Policy } from './policy.js';
import { emptyDecision } from './types.js';

const ALLOWED_CONNECT: ConnectLimitDecision = { allowed: true };

/**
 * The per-IP connect check for the socket endpoint: the `connect`-scoped policies, decided
 * all-or-nothing like a gen_api request's, with the tightest state for the RateLimit headers.
 */
export class ConnectPolicies {
  private policies: Policy[] = [];

  constructor(private readonly limiter: RateLimiter) {
    this.refresh();
  }

  /** The limiter's policies changed. */
  refresh(): void {
    this.policies = this.limiter.policies().filter((policy) => policy.scope === 'connect');
  }

  /** No-op while no connect policy exists. */
  readonly check: ConnectLimit = (ip) => {
    if (this.policies.length === 0) return ALLOWED_CONNECT;
    const observation: Observation = { decision: emptyDecision(), policy: null };
    const result = this.limiter.decide(this.policies, null, { ip, socketId: null }, observation);
    return result instanceof Promise
      ? result.then((r) => toConnectDecision(r, observation))
      : toConnectDecision(result, observation);
  };
}

function toConnectDecision(
  result: LimiterDecision,
  observation: Observation,
): ConnectLimitDecision {
  if (result.allowed) {
    const { policy, decision } = observation;
    return policy ? { allowed: true, state: { policy: policy.id, ...decision } } : ALLOWED_CONNECT;
  }
  if ('unavailable' in result) return { allowed: false, unavailable: true };
  const { details } = result;
  return {
    allowed: false,
    state: {
      policy: details.policy,
      limit: details.limit,
      windowMs: details.window_ms,
      remaining: details.remaining,
      resetMs: details.reset_ms,
      retryAfterMs: details.retry_after_ms,
    },
  };
}

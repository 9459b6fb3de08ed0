import type { GenApiRequest } from '../genapi/types.js';
import {
  ALLOWED,
  details,
  type DecisionSource,
  type LimiterDecision,
  type Observation,
  type PolicyDecision,
} from './decision.js';
import type { Policy, RateContext } from './policy.js';
import type { DeferredTier, Hold, ImmediateTier } from './tiers/tier.js';
import { emptyDecision, type Decision, type Mode, type RateLimitStats } from './types.js';

/** The tier of each mode. */
export type Tiers = Readonly<Record<Mode, ImmediateTier | DeferredTier>>;

interface Deferred {
  readonly tier: DeferredTier;
  readonly policy: Policy;
  readonly key: string;
}

/**
 * Checks a request against its policies all-or-nothing, whatever tier each lives in: every
 * immediate tier (local, eventual) is asked first and only looks, so a denial there consumes
 * nothing; their hits are committed once all allowed; then deferred tiers (strict) take their
 * hits one policy at a time, and a denial there gives back every hit already taken. Hits are
 * published (eventual broadcast) only once the whole request is allowed.
 */
export class Decider {
  /** Every policy counts without denying (rollout). */
  shadowAll: boolean;
  /** The immediate tiers' decisions (synchronous: one is enough). */
  private readonly scratch: Decision = emptyDecision();

  constructor(
    private readonly tiers: Tiers,
    /** The limiter's counters (each policy has its own too). */
    private readonly stats: RateLimitStats,
    shadow: boolean,
  ) {
    this.shadowAll = shadow;
  }

  /** `observe`, when given, receives the tightest allowed decision. */
  decide(
    policies: readonly Policy[],
    request: GenApiRequest | null,
    context: RateContext,
    observe: Observation | null,
  ): LimiterDecision | Promise<LimiterDecision> {
    this.stats.checks++;
    if (policies.length === 1 && observe === null) {
      const tier = this.tiers[policies[0]!.mode];
      if (!tier.deferred) return this.decideOne(tier, policies[0]!, request, context);
    }
    let held: Hold[] | null = null;
    let deferred: Deferred[] | null = null;
    let denial: PolicyDecision | null = null;
    const scratch = this.scratch;
    for (const policy of policies) {
      const key = policy.keyOf(request, context);
      if (key === null) continue;
      policy.stats.checks++;
      const tier = this.tiers[policy.mode];
      if (tier.deferred) {
        (deferred ??= []).push({ tier, policy, key });
        continue;
      }
      const answer = tier.check(policy, key, scratch);
      if (answer.allowed) {
        (held ??= []).push(answer);
        if (observe) this.observe(observe, policy, scratch);
      } else if (!answer.refused && policy.shadow && !this.shadowAll) this.wouldDeny(policy);
      else denial = worse(denial, policy, { ...scratch }, answer.source);
    }
    if (denial) return this.denyOrShadow(denial);
    if (held) for (const hold of held) this.immediate(hold).commit(hold);
    if (!deferred) {
      if (held) this.publish(held);
      return ALLOWED;
    }
    return this.decideDeferred(deferred, held, observe);
  }

  /** The common case, one immediate policy: the same steps without the bookkeeping. */
  private decideOne(
    tier: ImmediateTier,
    policy: Policy,
    request: GenApiRequest | null,
    context: RateContext,
  ): LimiterDecision {
    const key = policy.keyOf(request, context);
    if (key === null) return ALLOWED;
    policy.stats.checks++;
    const scratch = this.scratch;
    const denied = tier.admit(policy, key, scratch);
    if (denied === null) return ALLOWED;
    if (!denied.refused && policy.shadow && !this.shadowAll) {
      this.wouldDeny(policy);
      return ALLOWED;
    }
    return this.denyOrShadow({ policy, decision: { ...scratch }, source: denied.source });
  }

  private async decideDeferred(
    deferred: readonly Deferred[],
    held: readonly Hold[] | null,
    observe: Observation | null,
  ): Promise<LimiterDecision> {
    const taken: { readonly tier: DeferredTier; readonly hold: Hold }[] = [];
    const rollback = async () => {
      if (held) for (const hold of held) this.immediate(hold).release(hold);
      await Promise.all(taken.map(({ tier, hold }) => tier.release(hold)));
    };
    for (const { tier, policy, key } of deferred) {
      const out = emptyDecision();
      const answer = await tier.check(policy, key, out);
      if (answer.allowed) {
        taken.push({ tier, hold: answer });
        // A fail-open answer carries no quota to report.
        if (observe && out.limit > 0) this.observe(observe, policy, out);
        continue;
      }
      if (answer.unavailable) {
        await rollback();
        return {
          allowed: false,
          unavailable: true,
          details: { reason: 'limiter_unavailable', policy: policy.id, source: 'fallback' },
        };
      }
      if (policy.shadow && !this.shadowAll) {
        this.wouldDeny(policy);
        continue;
      }
      await rollback();
      return this.denyOrShadow({ policy, decision: out, source: answer.source });
    }
    if (held) this.publish(held);
    return ALLOWED;
  }

  private publish(held: readonly Hold[]): void {
    for (const hold of held) this.immediate(hold).publish(hold);
  }

  /** The tier of a hold from the immediate phase. */
  private immediate(hold: Hold): ImmediateTier {
    return this.tiers[hold.policy.mode] as ImmediateTier;
  }

  private observe(observe: Observation, policy: Policy, decision: Decision): void {
    if (observe.policy === null || decision.remaining < observe.decision.remaining) {
      observe.policy = policy;
      Object.assign(observe.decision, decision);
    }
  }

  private wouldDeny(policy: Policy): void {
    policy.stats.wouldDeny++;
    this.stats.wouldDeny++;
  }

  /**
   * Global shadow mode decides exactly as enforcement would (so `wouldDeny` matches what would be
   * denied) but lets the request through; per-policy shadow only takes that policy out.
   */
  private denyOrShadow(denial: PolicyDecision): LimiterDecision {
    if (!this.shadowAll) return this.deny(denial);
    this.wouldDeny(denial.policy);
    return ALLOWED;
  }

  private deny({ policy, decision, source }: PolicyDecision): LimiterDecision {
    policy.stats.denied++;
    this.stats.denied++;
    return {
      allowed: false,
      retryAfterMs: decision.retryAfterMs,
      details: details(policy, decision, source),
    };
  }
}

/** The denial a client waits longest on (the one to report). */
function worse(
  current: PolicyDecision | null,
  policy: Policy,
  decision: Decision,
  source: DecisionSource,
): PolicyDecision {
  return current === null || decision.retryAfterMs > current.decision.retryAfterMs
    ? { policy, decision, source }
    : current;
}

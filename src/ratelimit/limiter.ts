import type { Logger } from 'pino';
import { RATE_LIMITS_DEFAULTS } from './rate-limits-defaults.js';
import type { RateLimitGate } from '../genapi/executor.js';
import type { GenApiRequest, ResolvedFunConfig } from '../genapi/types.js';
import { monotonicClock, type Clock } from '../util/clock.js';
import { keyStatus, resetKey } from './admin.js';
import { Decider } from './decider.js';
import { ALLOWED, type LimiterDecision, type Observation } from './decision.js';
import { replacePolicy, type PolicyReplacement } from './migration.js';
import { Policy, PolicyError, type RateContext } from './policy.js';
import { EventualRateTier, type RemoteHitOutcome } from './tiers/eventual.js';
import { FallbackShares } from './tiers/fallback.js';
import type { EventualLink, KeyBudget, StrictLink } from './tiers/links.js';
import { LocalRateTier } from './tiers/local.js';
import { StrictRateTier } from './tiers/strict.js';
import type { Decision, PolicyConfig, RateLimitStats } from './types.js';

export {
  details,
  type DecisionSource,
  type LimiterDecision,
  type Observation,
  type PolicyDecision,
  type RateLimitDetails,
  type UnavailableDetails,
} from './decision.js';
export type { PolicyReplacement } from './migration.js';
export { StoreError, type KeyBudget } from './tiers/links.js';
/** The eventual tier's cluster link (tiers/links.ts `EventualLink`). */
export type EventualTier = EventualLink;
/** The strict tier's store (tiers/links.ts `StrictLink`). */
export type StrictTier = StrictLink;

/** The defaults of `RateLimiterOptions`: the state store's and the config's (RATE_LIMITS_DEFAULTS). */
export const RATE_LIMITER_DEFAULTS = {
  sweepMs: RATE_LIMITS_DEFAULTS.sweepMs,
  maxKeys: RATE_LIMITS_DEFAULTS.maxKeys,
} as const;

export interface RateLimiterOptions {
  policies?: readonly PolicyConfig[];
  /** Every policy counts without denying (rollout). Default false. */
  shadow?: boolean;
  /** Expiry sweep resolution. Default 1000 ms (`RATE_LIMITER_DEFAULTS`). */
  sweepMs?: number;
  /** Keys per policy (and deny-cache entries per strict policy). Default 1 000 000. */
  maxKeys?: number;
}

/**
 * gen_api rate limiting: global and per-function policies keyed by user, device, IP, socket or an
 * argument, each counted in its mode's tier (local, eventual: shared by broadcast, strict:
 * JetStream KV with a fallback) and checked all-or-nothing by the Decider. This class keeps the
 * policies, finds those of a request, and links the tiers to the cluster.
 */
export class RateLimiter implements RateLimitGate {
  private readonly policiesById = new Map<string, Policy>();
  private readonly byFunction = new Map<string, Map<string, Policy[]>>();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly fallback = new FallbackShares();
  private readonly eventualTier: EventualRateTier;
  private readonly strictTier: StrictRateTier;
  private readonly decider: Decider;
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
    private readonly options: RateLimiterOptions,
    logger: Logger,
    /** Local decisions: monotonic, immune to wall-clock steps. */
    readonly monotonic: Clock = monotonicClock,
    /** Shared decisions (eventual, strict): wall clock, comparable across nodes. */
    readonly wall: Clock = Date.now,
  ) {
    this.eventualTier = new EventualRateTier(wall);
    this.strictTier = new StrictRateTier(
      this.fallback,
      wall,
      this.stats,
      logger,
      options.maxKeys ?? RATE_LIMITER_DEFAULTS.maxKeys,
    );
    this.decider = new Decider(
      {
        local: new LocalRateTier('local', monotonic),
        eventual: this.eventualTier,
        strict: this.strictTier,
      },
      this.stats,
      options.shadow === true,
    );
    for (const config of options.policies ?? []) {
      const policy = this.createPolicy(config);
      if (this.policiesById.has(policy.id))
        throw new PolicyError(`duplicate rate-limit policy id "${policy.id}"`);
      this.add(policy);
    }
    this.sweeper = setInterval(
      () => this.sweep(),
      options.sweepMs ?? RATE_LIMITER_DEFAULTS.sweepMs,
    );
    this.sweeper.unref();
  }

  /** The eventual tier's cluster link; null while not linked. */
  get eventual(): EventualLink | null {
    return this.eventualTier.link;
  }

  set eventual(link: EventualLink | null) {
    this.eventualTier.link = link;
  }

  /** The strict tier's store; null while not linked (strict policies use their fallback). */
  get strict(): StrictLink | null {
    return this.strictTier.link;
  }

  set strict(link: StrictLink | null) {
    this.strictTier.link = link;
  }

  /** Healthy gateway nodes (for the `local` fallback's share). */
  get nodes(): () => number {
    return this.fallback.nodes;
  }

  set nodes(count: () => number) {
    this.fallback.nodes = count;
  }

  /** A validated policy with this limiter's store settings (not added). */
  createPolicy(config: PolicyConfig): Policy {
    return new Policy(config, {
      sweepMs: this.options.sweepMs ?? RATE_LIMITER_DEFAULTS.sweepMs,
      maxKeys: this.options.maxKeys ?? RATE_LIMITER_DEFAULTS.maxKeys,
    });
  }

  get shadow(): boolean {
    return this.decider.shadowAll;
  }

  setShadow(shadow: boolean): void {
    this.decider.shadowAll = shadow;
  }

  policies(): Policy[] {
    return [...this.policiesById.values()];
  }

  policy(id: string): Policy | undefined {
    return this.policiesById.get(id);
  }

  /** Adds or replaces a policy (migration.ts `replacePolicy` says what becomes of its counters). */
  setPolicy(config: PolicyConfig): PolicyReplacement {
    const replacement = replacePolicy(this.policiesById.get(config.id), config, (c) =>
      this.createPolicy(c),
    );
    this.add(replacement.policy);
    return replacement;
  }

  removePolicy(id: string): boolean {
    const policy = this.policiesById.get(id);
    const removed = this.policiesById.delete(id);
    if (policy) {
      policy.store.releaseOwners();
      this.byFunction.clear();
      this.fallback.forget(id);
    }
    return removed;
  }

  private add(policy: Policy): void {
    this.policiesById.set(policy.id, policy);
    this.byFunction.clear();
    this.fallback.forget(policy.id);
  }

  /** The policies of one function, global ones first (cached until policies change; no key string built). */
  private policiesFor(service: string, requestType: string): Policy[] {
    let byType = this.byFunction.get(service);
    if (!byType) {
      byType = new Map();
      this.byFunction.set(service, byType);
    }
    let list = byType.get(requestType);
    if (!list) {
      list = [...this.policiesById.values()]
        .filter((policy) => policy.applies(service, requestType))
        .sort((a, b) => (a.scope === 'global' ? 0 : 1) - (b.scope === 'global' ? 0 : 1));
      byType.set(requestType, list);
    }
    return list;
  }

  clockFor(policy: Policy): Clock {
    return policy.mode === 'local' ? this.monotonic : this.wall;
  }

  check(
    request: GenApiRequest,
    config: ResolvedFunConfig,
    context: RateContext,
  ): LimiterDecision | Promise<LimiterDecision> {
    if (this.policiesById.size === 0) return ALLOWED;
    const policies = this.policiesFor(config.service, config.requestType);
    if (policies.length === 0) return ALLOWED;
    return this.decider.decide(policies, request, context, null);
  }

  /**
   * Checks `policies` all-or-nothing (decider.ts). `observe`, when given, receives the tightest
   * allowed decision.
   */
  decide(
    policies: readonly Policy[],
    request: GenApiRequest | null,
    context: RateContext,
    observe: Observation | null,
  ): LimiterDecision | Promise<LimiterDecision> {
    return this.decider.decide(policies, request, context, observe);
  }

  /** A key state the store confirmed (written or read): the fallback's view of the store. */
  storeState(policy: Policy, key: string, state: unknown): void {
    if (this.policiesById.get(policy.id) !== policy) return;
    this.fallback.confirmed(policy, key, state, this.wall);
  }

  /**
   * A hit another node allowed (eventual mode), at its origin time; `storageKey` as on the wire.
   * With a `budget` (the sending origin's), a hit for a key not held here creates it only while
   * the origin is under its key budget; otherwise it is `refused`.
   */
  applyRemote(
    policyId: string,
    storageKey: string,
    at: number,
    cost: number,
    budget?: KeyBudget,
  ): RemoteHitOutcome {
    const policy = this.policiesById.get(policyId);
    if (!policy || policy.mode !== 'eventual') return 'unknown';
    return this.eventualTier.applyRemote(policy, storageKey, at, cost, budget);
  }

  horizonOf(policyId: string): number | null {
    return this.policiesById.get(policyId)?.horizonMs ?? null;
  }

  /** The longest horizon of the eventual policies (how long a peer's hits can matter). */
  longestHorizonMs(): number {
    let longest = 0;
    for (const policy of this.policiesById.values())
      if (policy.mode === 'eventual' && policy.horizonMs > longest) longest = policy.horizonMs;
    return longest;
  }

  /**
   * The current state of one key of a policy (admin API), without changing it. For a strict
   * policy this is its local fallback state (the store's is read by the strict tier).
   */
  status(policyId: string, value: string): Decision | null {
    const policy = this.policiesById.get(policyId);
    if (!policy) return null;
    const algorithm =
      policy.mode === 'strict' ? this.fallback.algorithmFor(policy) : policy.algorithm;
    return keyStatus(policy, algorithm, value, this.clockFor(policy));
  }

  /** Forgets one key's local state and deny-cache entry (admin API). */
  reset(policyId: string, value: string): boolean {
    const policy = this.policiesById.get(policyId);
    return policy ? resetKey(policy, value) : false;
  }

  /** Local keys over all policies. */
  get keys(): number {
    let total = 0;
    for (const policy of this.policiesById.values()) total += policy.store.size;
    return total;
  }

  sweep(): number {
    let dropped = 0;
    const wall = this.wall();
    for (const policy of this.policiesById.values()) {
      dropped += policy.store.sweep(this.clockFor(policy)());
      policy.known?.sweep(wall);
      for (const [key, entry] of policy.denials)
        if (entry.until <= wall) policy.denials.delete(key);
    }
    return dropped;
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

import type { Logger } from 'pino';
import type { RateLimitGate } from '../genapi/executor.js';
import type { GenApiRequest, ResolvedFunConfig } from '../genapi/types.js';
import { monotonicClock, type Clock } from '../util/clock.js';
import { createAlgorithm } from './algorithms/index.js';
import { Policy, PolicyError, type RateContext } from './policy.js';
import type { KeyOwner, Slot } from './store.js';
import {
  emptyDecision,
  type Algorithm,
  type Decision,
  type PolicyConfig,
  type RateLimitStats,
} from './types.js';
import { GatewayError } from '../errors.js';

/** The eventual tier: hits committed here are shared with the other gateway nodes. */
export interface EventualTier {
  /** A hit this node allowed for the key value `key` (broadcast it). */
  committed(policy: Policy, key: string, at: number, cost: number): void;
}

/** A remote origin's key budget: keys its hits created that are held here, and the most allowed. */
export interface KeyBudget extends KeyOwner {
  /** `eventual.maxKeysPerOrigin`. */
  readonly maxKeys: number;
}

/** Thrown by the strict tier when the store is slow, down or contended beyond its retries. */
export class StoreError extends GatewayError {
  override readonly name = 'StoreError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_STORE', message, options);
  }
}

/** The strict tier: decisions made atomically in a shared store (JetStream KV). */
export interface StrictTier {
  /** Whether a call could succeed now (connected); false sends requests straight to the fallback. */
  available(): boolean;
  /** Checks the key value `key` and, when allowed, records in the store. Rejects with StoreError (timeout, outage, CAS). */
  consume(policy: Policy, key: string, at: number, cost: number, out: Decision): Promise<boolean>;
  /** Takes back a hit `consume` recorded (a later policy denied the request). */
  refund(policy: Policy, key: string, at: number, cost: number): Promise<void>;
}

export interface RateLimiterOptions {
  policies?: readonly PolicyConfig[];
  /** Every policy counts without denying (rollout). */
  shadow?: boolean;
  /** Expiry sweep resolution. Default 1000 ms. */
  sweepMs?: number;
  /** Keys per policy. Default 1 000 000. */
  maxKeys?: number;
}

/** What setPolicy did to the policy's counters: a new policy, or a replacement that kept or reset them. */
export interface PolicyReplacement {
  readonly policy: Policy;
  readonly counters: 'new' | 'kept' | 'reset';
}

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

const ALLOWED: LimiterDecision = { allowed: true };

interface Pending {
  readonly policy: Policy;
  readonly key: string;
  readonly slot: Slot<unknown>;
  readonly at: number;
}

interface StrictOutcome {
  allowed: boolean;
  /** The store holds the hit (a rollback must refund it). */
  recorded: boolean;
  at: number;
  decision: Decision;
  source: DecisionSource;
}

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

function sourceOf(policy: Policy): DecisionSource {
  return policy.mode === 'eventual' ? 'eventual' : 'local';
}

/**
 * gen_api rate limiting: global and per-function policies keyed by user, device, IP, socket or an
 * argument, checked all-or-nothing (a request denied by one policy consumes none), each policy
 * local, eventual (shared by broadcast) or strict (JetStream KV, with a fallback).
 */
export class RateLimiter implements RateLimitGate {
  private readonly policiesById = new Map<string, Policy>();
  private readonly byFunction = new Map<string, Map<string, Policy[]>>();
  private shadowAll: boolean;
  private readonly scratch: Decision = emptyDecision();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly fallbacks = new Map<string, { nodes: number; algorithm: Algorithm<unknown> }>();
  eventual: EventualTier | null = null;
  strict: StrictTier | null = null;
  /** Healthy gateway nodes (for the `local` fallback's share). */
  nodes: () => number = () => 1;
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
    private readonly logger: Logger,
    /** Local decisions: monotonic, immune to wall-clock steps. */
    readonly monotonic: Clock = monotonicClock,
    /** Shared decisions (eventual, strict): wall clock, comparable across nodes. */
    readonly wall: Clock = Date.now,
  ) {
    this.shadowAll = options.shadow === true;
    for (const config of options.policies ?? []) {
      const policy = this.createPolicy(config);
      if (this.policiesById.has(policy.id))
        throw new PolicyError(`duplicate rate-limit policy id "${policy.id}"`);
      this.add(policy);
    }
    this.sweeper = setInterval(() => this.sweep(), options.sweepMs ?? 1000);
    this.sweeper.unref();
  }

  /** A validated policy with this limiter's store settings (not added). */
  createPolicy(config: PolicyConfig): Policy {
    return new Policy(config, {
      sweepMs: this.options.sweepMs ?? 1000,
      maxKeys: this.options.maxKeys ?? 1_000_000,
    });
  }

  get shadow(): boolean {
    return this.shadowAll;
  }

  setShadow(shadow: boolean): void {
    this.shadowAll = shadow;
  }

  policies(): Policy[] {
    return [...this.policiesById.values()];
  }

  policy(id: string): Policy | undefined {
    return this.policiesById.get(id);
  }

  /**
   * Adds or replaces a policy. A compatible replacement (Policy.carriesTo: same algorithm, key
   * and mode) continues the old counters under the new limit and window; any other starts them
   * empty. Strict counters live in the store under the policy id and are kept either way, so a
   * strict policy cannot change its algorithm (the store's states would be misread): that needs
   * a new id. Per-policy stats carry over (they are cumulative metrics).
   */
  setPolicy(config: PolicyConfig): PolicyReplacement {
    const previous = this.policiesById.get(config.id);
    let policy = this.createPolicy(config);
    let counters: PolicyReplacement['counters'] = 'new';
    if (previous) {
      if (
        previous.mode === 'strict' &&
        policy.mode === 'strict' &&
        previous.algorithm.name !== policy.algorithm.name
      ) {
        throw new PolicyError(
          `policy ${config.id}: a strict policy keeps its counters in the store under its id, so its algorithm cannot change (${previous.algorithm.name} → ${policy.algorithm.name}); add a policy with a new id instead`,
        );
      }
      if (previous.carriesTo(policy)) {
        policy = new Policy(config, {}, previous.store);
        this.convertStates(previous, policy);
        counters = 'kept';
      } else {
        counters = policy.mode === 'strict' && previous.mode === 'strict' ? 'kept' : 'reset';
        // The old states are dropped with their store: peers get their key budgets back.
        previous.store.releaseOwners();
      }
      Object.assign(policy.stats, previous.stats);
    }
    this.add(policy);
    return { policy, counters };
  }

  /**
   * Moves the states `next` took over from `previous` onto its parameters: a sliding log's ring
   * is sized by its limit (re-encoded: the newest hits are kept), and every state's expiry is
   * recomputed (a longer window keeps keys longer).
   */
  private convertStates(previous: Policy, next: Policy): void {
    const from = previous.algorithm;
    const to = next.algorithm;
    const reshape = from.name === 'sliding_log' && from.limit !== to.limit;
    if (!reshape && from.windowMs === to.windowMs && from.limit === to.limit) return;
    for (const [, slot] of next.store.entries()) {
      if (reshape) slot.state = to.decode(from.encode(slot.state)) ?? to.create();
      next.store.touch(slot, to.expiresAt(slot.state));
    }
  }

  removePolicy(id: string): boolean {
    const policy = this.policiesById.get(id);
    const removed = this.policiesById.delete(id);
    if (policy) {
      policy.store.releaseOwners();
      this.byFunction.clear();
      this.fallbacks.delete(id);
    }
    return removed;
  }

  private add(policy: Policy): void {
    this.policiesById.set(policy.id, policy);
    this.byFunction.clear();
    this.fallbacks.delete(policy.id);
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
    return this.decide(policies, request, context, null);
  }

  /**
   * Checks `policies` all-or-nothing: local and eventual policies are peeked first (a denial
   * consumes nothing), then committed, then strict ones consumed in the store one by one, with
   * refunds when a later one denies. `observe`, when given, receives the tightest allowed decision.
   */
  decide(
    policies: readonly Policy[],
    request: GenApiRequest | null,
    context: RateContext,
    observe: Observation | null,
  ): LimiterDecision | Promise<LimiterDecision> {
    this.stats.checks++;
    if (policies.length === 1 && policies[0]!.mode !== 'strict' && observe === null)
      return this.decideOne(policies[0]!, request, context);
    let pending: Pending[] | null = null;
    let strict: { policy: Policy; key: string }[] | null = null;
    let denial: PolicyDecision | null = null;
    const scratch = this.scratch;
    for (const policy of policies) {
      const key = policy.keyOf(request, context);
      if (key === null) continue;
      policy.stats.checks++;
      if (policy.mode === 'strict') {
        (strict ??= []).push({ policy, key });
        continue;
      }
      const at = this.clockFor(policy)();
      const slot = policy.store.ensure(key, policy.createState, at);
      if (slot === null) {
        // Full and refusing new keys (IP policies): deny rather than forget someone's quota.
        denial = this.worse(denial, policy, this.refusedKey(policy), sourceOf(policy));
        continue;
      }
      policy.algorithm.peek(slot.state, at, policy.cost, scratch);
      if (scratch.allowed) {
        (pending ??= []).push({ policy, key, slot, at });
        if (observe) this.observe(observe, policy, scratch);
      } else if (policy.shadow && !this.shadowAll) this.wouldDeny(policy);
      else denial = this.worse(denial, policy, { ...scratch }, sourceOf(policy));
    }
    if (denial) return this.denyOrShadow(denial);
    if (pending) for (const item of pending) this.commitLocal(item);
    if (!strict) {
      if (pending) this.share(pending);
      return ALLOWED;
    }
    return this.checkStrict(strict, pending, observe);
  }

  /** The common case, one local or eventual policy: the same steps without the bookkeeping. */
  private decideOne(
    policy: Policy,
    request: GenApiRequest | null,
    context: RateContext,
  ): LimiterDecision {
    const key = policy.keyOf(request, context);
    if (key === null) return ALLOWED;
    policy.stats.checks++;
    const at = this.clockFor(policy)();
    const slot = policy.store.ensure(key, policy.createState, at);
    if (slot === null)
      return this.denyOrShadow({
        policy,
        decision: this.refusedKey(policy),
        source: sourceOf(policy),
      });
    const scratch = this.scratch;
    policy.algorithm.peek(slot.state, at, policy.cost, scratch);
    if (!scratch.allowed) {
      if (policy.shadow && !this.shadowAll) {
        this.wouldDeny(policy);
        return ALLOWED;
      }
      return this.denyOrShadow({ policy, decision: { ...scratch }, source: sourceOf(policy) });
    }
    policy.algorithm.commit(slot.state, at, policy.cost);
    policy.store.touch(slot, policy.algorithm.expiresAt(slot.state));
    if (policy.mode === 'eventual') this.eventual?.committed(policy, key, at, policy.cost);
    return ALLOWED;
  }

  private observe(observe: Observation, policy: Policy, decision: Decision): void {
    if (observe.policy === null || decision.remaining < observe.decision.remaining) {
      observe.policy = policy;
      Object.assign(observe.decision, decision);
    }
  }

  private refusedKey(policy: Policy): Decision {
    const { limit, windowMs } = policy.algorithm;
    return {
      allowed: false,
      limit,
      windowMs,
      remaining: 0,
      resetMs: windowMs,
      retryAfterMs: windowMs,
    };
  }

  private wouldDeny(policy: Policy): void {
    policy.stats.wouldDeny++;
    this.stats.wouldDeny++;
  }

  private worse(
    current: PolicyDecision | null,
    policy: Policy,
    decision: Decision,
    source: DecisionSource,
  ): PolicyDecision {
    return current === null || decision.retryAfterMs > current.decision.retryAfterMs
      ? { policy, decision, source }
      : current;
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

  private commitLocal({ policy, slot, at }: Pending): void {
    policy.algorithm.commit(slot.state, at, policy.cost);
    policy.store.touch(slot, policy.algorithm.expiresAt(slot.state));
  }

  private rollbackLocal({ policy, slot, at }: Pending): void {
    policy.algorithm.refund(slot.state, at, policy.cost);
  }

  /** Eventual hits are shared only once the whole request is allowed. */
  private share(pending: readonly Pending[]): void {
    const eventual = this.eventual;
    if (!eventual) return;
    for (const { policy, key, at } of pending)
      if (policy.mode === 'eventual') eventual.committed(policy, key, at, policy.cost);
  }

  private async checkStrict(
    strict: { policy: Policy; key: string }[],
    pending: Pending[] | null,
    observe: Observation | null,
  ): Promise<LimiterDecision> {
    const consumed: { policy: Policy; key: string; at: number }[] = [];
    const rollback = async () => {
      if (pending) for (const item of pending) this.rollbackLocal(item);
      for (const { policy, key, at } of consumed) this.unshare(policy, key, at);
      const strict = this.strict;
      if (!strict) return;
      await Promise.all(
        consumed.map(({ policy, key, at }) =>
          // A refund that fails leaves the hit counted: the limit errs on the strict side, and
          // the strict tier already counts the failure (stats.refundFailures).
          strict.refund(policy, key, at, policy.cost).catch(() => undefined),
        ),
      );
    };
    for (const { policy, key } of strict) {
      const outcome = await this.consumeStrict(policy, key);
      if (outcome === 'unavailable') {
        await rollback();
        return {
          allowed: false,
          unavailable: true,
          details: { reason: 'limiter_unavailable', policy: policy.id, source: 'fallback' },
        };
      }
      if (outcome.allowed) {
        if (outcome.recorded) consumed.push({ policy, key, at: outcome.at });
        // A fail-open answer carries no quota to report.
        if (observe && outcome.decision.limit > 0) this.observe(observe, policy, outcome.decision);
        continue;
      }
      if (policy.shadow && !this.shadowAll) {
        this.wouldDeny(policy);
        continue;
      }
      await rollback();
      return this.denyOrShadow({ policy, decision: outcome.decision, source: outcome.source });
    }
    if (pending) this.share(pending);
    return ALLOWED;
  }

  /** One strict policy: the deny cache, the store, or the fallback when the store cannot answer. */
  private async consumeStrict(policy: Policy, key: string): Promise<StrictOutcome | 'unavailable'> {
    const at = this.wall();
    const decision = emptyDecision();
    const cached = policy.denials.get(key);
    if (cached) {
      if (cached.until > at) {
        policy.stats.denyCacheHits++;
        this.stats.denyCacheHits++;
        const wait = Math.max(1, Math.ceil(cached.until - at));
        return {
          allowed: false,
          recorded: false,
          at,
          source: 'strict',
          decision: {
            allowed: false,
            limit: cached.limit,
            windowMs: cached.windowMs,
            remaining: 0,
            resetMs: wait,
            retryAfterMs: wait,
          },
        };
      }
      policy.denials.delete(key);
    }
    const tier = this.strict;
    if (tier && tier.available()) {
      try {
        const allowed = await tier.consume(policy, key, at, policy.cost, decision);
        if (allowed) this.shareHit(policy, key, at);
        else if (policy.denials.size < (this.options.maxKeys ?? 1_000_000)) {
          policy.denials.set(key, {
            until: at + decision.retryAfterMs,
            limit: decision.limit,
            windowMs: decision.windowMs,
          });
        }
        return { allowed, recorded: allowed, at, decision, source: 'strict' };
      } catch (err) {
        policy.stats.storeErrors++;
        this.stats.storeErrors++;
        // StoreError is the tier's normal failure; anything else is a bug, but still not the client's problem.
        if (err instanceof StoreError)
          this.logger.debug(
            { policy: policy.id, err: err.message },
            'rate limit store failed; using the fallback',
          );
        else
          this.logger.error(
            { policy: policy.id, err },
            'rate limit store raised an unexpected error; using the fallback',
          );
      }
    }
    return this.fallback(policy, key, at, decision);
  }

  private fallback(
    policy: Policy,
    key: string,
    at: number,
    decision: Decision,
  ): StrictOutcome | 'unavailable' {
    switch (policy.fallback) {
      case 'open':
        policy.stats.failOpen++;
        this.stats.failOpen++;
        return { allowed: true, recorded: false, at, decision, source: 'fallback' };
      case 'closed':
        policy.stats.failClosed++;
        this.stats.failClosed++;
        return 'unavailable';
      case 'local': {
        policy.stats.fallback++;
        this.stats.fallback++;
        // What the store last confirmed for this key, plus this node's fallback admissions since:
        // a key the store holds full stays denied (a slow store is not a free pass).
        const known = policy.known?.get(key);
        if (known) {
          policy.algorithm.peek(known.state, at, policy.cost, decision);
          if (!decision.allowed)
            return { allowed: false, recorded: false, at, decision, source: 'fallback' };
        }
        const algorithm = this.fallbackAlgorithm(policy);
        // Strict policies (and their fallback state) run on the wall clock, like their store.
        // The share's own state shape (a sliding log's ring is share-sized).
        const slot = policy.store.ensure(key, () => algorithm.create(), at);
        if (slot === null)
          return {
            allowed: false,
            recorded: false,
            at,
            decision: this.refusedKey(policy),
            source: 'fallback',
          };
        algorithm.peek(slot.state, at, policy.cost, decision);
        if (decision.allowed) {
          algorithm.commit(slot.state, at, policy.cost);
          policy.store.touch(slot, algorithm.expiresAt(slot.state));
          if (known) {
            policy.algorithm.commit(known.state, at, policy.cost);
            policy.known!.touch(known, policy.algorithm.expiresAt(known.state));
          }
        }
        return { allowed: decision.allowed, recorded: false, at, decision, source: 'fallback' };
      }
    }
  }

  /**
   * A hit the store admitted through this node also counts against this node's fallback share:
   * should the store turn slow or fail mid-window, the fallback admits only what is left of the
   * share (ceil(limit / nodes) minus this node's admissions in the window), not a whole share more.
   */
  private shareHit(policy: Policy, key: string, at: number): void {
    if (policy.fallback !== 'local') return;
    const algorithm = this.fallbackAlgorithm(policy);
    const slot = policy.store.ensure(key, () => algorithm.create(), at);
    if (slot === null) return;
    algorithm.apply(slot.state, at, policy.cost);
    policy.store.touch(slot, algorithm.expiresAt(slot.state));
  }

  private unshare(policy: Policy, key: string, at: number): void {
    if (policy.fallback !== 'local') return;
    const slot = policy.store.get(key);
    if (slot) this.fallbackAlgorithm(policy).refund(slot.state, at, policy.cost);
  }

  /** A key state the store confirmed (written or read): the fallback's view of the store. */
  storeState(policy: Policy, key: string, state: unknown): void {
    const known = policy.known;
    if (!known || this.policiesById.get(policy.id) !== policy) return;
    const slot = known.ensure(key, () => state, this.wall());
    if (slot === null) return;
    slot.state = state;
    known.touch(slot, policy.algorithm.expiresAt(state));
  }

  /** The insurance limiter: this node's share, ceil(limit / healthy nodes). */
  private fallbackAlgorithm(policy: Policy): Algorithm<unknown> {
    const nodes = Math.max(1, this.nodes());
    const cached = this.fallbacks.get(policy.id);
    if (cached && cached.nodes === nodes) return cached.algorithm;
    const { name, limit, windowMs } = policy.algorithm;
    const burst = policy.config.burst;
    const share = Math.max(policy.cost, Math.ceil(limit / nodes));
    const algorithm = createAlgorithm(
      name,
      share,
      windowMs,
      burst === undefined ? undefined : Math.max(policy.cost, Math.ceil(burst / nodes)),
    );
    // A new share starts a new count (the old state was kept for another share).
    if (cached) policy.store.clear();
    this.fallbacks.set(policy.id, { nodes, algorithm });
    return algorithm;
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
  ): 'applied' | 'over' | 'stale' | 'unknown' | 'refused' {
    const policy = this.policiesById.get(policyId);
    if (!policy || policy.mode !== 'eventual') return 'unknown';
    const key = policy.valueOf(storageKey);
    // A cost this policy could never admit is not a hit a peer with this policy sent.
    const capacity =
      policy.algorithm.name === 'gcra'
        ? (policy.config.burst ?? policy.algorithm.limit)
        : policy.algorithm.limit;
    if (key === null || !Number.isInteger(cost) || cost > capacity) return 'unknown';
    const now = this.wall();
    if (at <= now - policy.horizonMs) return 'stale';
    // A peer whose clock runs ahead must not push hits into our future.
    const when = at > now ? now : at;
    if (budget && budget.keys >= budget.maxKeys && policy.store.get(key) === undefined)
      return 'refused';
    const slot = policy.store.ensure(key, policy.createState, now, budget ?? null);
    if (slot === null) return 'applied';
    // Already at the limit when the hit came: cluster-wide overshoot, as this node sees it.
    let over: boolean;
    try {
      policy.algorithm.peek(slot.state, when, cost, this.scratch);
      over = !this.scratch.allowed;
    } catch {
      over = true;
    }
    policy.algorithm.apply(slot.state, when, cost);
    policy.store.touch(slot, policy.algorithm.expiresAt(slot.state));
    return over ? 'over' : 'applied';
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
    const algorithm = policy.mode === 'strict' ? this.fallbackAlgorithm(policy) : policy.algorithm;
    const slot = policy.store.get(value);
    const decision = emptyDecision();
    const state = slot?.state ?? algorithm.create();
    algorithm.peek(state, this.clockFor(policy)(), policy.cost, decision);
    return decision;
  }

  /** Forgets one key's local state and deny-cache entry (admin API). */
  reset(policyId: string, value: string): boolean {
    const policy = this.policiesById.get(policyId);
    if (!policy) return false;
    const cached = policy.denials.delete(value);
    const known = policy.known?.delete(value) ?? false;
    return policy.store.delete(value) || cached || known;
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

import type { Logger } from 'pino';
import type { Clock } from '../../util/clock.js';
import type { Policy } from '../policy.js';
import type { Decision, RateLimitStats } from '../types.js';
import type { FallbackShares } from './fallback.js';
import { StoreError, type StrictLink } from './links.js';
import { tierDenial, type DeferredTier, type Hold, type TierDenial } from './tier.js';

/** A strict hit: taken in the store, or allowed by the fallback. */
export interface StrictHold extends Hold {
  /** The store holds the hit (a rollback must refund it). */
  readonly recorded: boolean;
}

/**
 * The `strict` mode: each hit is taken atomically in a shared store (JetStream KV, on the wall
 * clock). A denial is remembered until it may pass (the deny cache: no store call meanwhile);
 * when the store cannot answer, the policy's fallback decides: `local` (this node's share),
 * `open` (allow) or `closed` (the request is refused as unavailable).
 */
export class StrictRateTier implements DeferredTier<StrictHold> {
  readonly mode = 'strict';
  readonly deferred = true;
  /** The store; null while not linked to the cluster (every check then goes to the fallback). */
  link: StrictLink | null = null;
  private readonly storeDenied = tierDenial('strict');
  private readonly fallbackDenied = tierDenial('fallback');
  private readonly unavailable = tierDenial('fallback', { unavailable: true });

  constructor(
    private readonly fallback: FallbackShares,
    private readonly wall: Clock,
    /** The limiter's counters (each policy has its own too). */
    private readonly stats: RateLimitStats,
    private readonly logger: Logger,
    /** Deny-cache entries per policy, at most. */
    private readonly maxDenials: number,
  ) {}

  /** One strict policy: the deny cache, the store, or the fallback when the store cannot answer. */
  async check(policy: Policy, key: string, out: Decision): Promise<StrictHold | TierDenial> {
    const at = this.wall();
    const cached = policy.denials.get(key);
    if (cached) {
      if (cached.until > at) {
        policy.stats.denyCacheHits++;
        this.stats.denyCacheHits++;
        const wait = Math.max(1, Math.ceil(cached.until - at));
        out.allowed = false;
        out.limit = cached.limit;
        out.windowMs = cached.windowMs;
        out.remaining = 0;
        out.resetMs = wait;
        out.retryAfterMs = wait;
        return this.storeDenied;
      }
      policy.denials.delete(key);
    }
    const link = this.link;
    if (link && link.available()) {
      try {
        const allowed = await link.consume(policy, key, at, policy.cost, out);
        if (allowed) {
          this.fallback.hit(policy, key, at);
          return { allowed: true, policy, key, at, recorded: true };
        }
        if (policy.denials.size < this.maxDenials) {
          policy.denials.set(key, {
            until: at + out.retryAfterMs,
            limit: out.limit,
            windowMs: out.windowMs,
          });
        }
        return this.storeDenied;
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
    return this.useFallback(policy, key, at, out);
  }

  private useFallback(
    policy: Policy,
    key: string,
    at: number,
    out: Decision,
  ): StrictHold | TierDenial {
    switch (policy.fallback) {
      case 'open':
        policy.stats.failOpen++;
        this.stats.failOpen++;
        return { allowed: true, policy, key, at, recorded: false };
      case 'closed':
        policy.stats.failClosed++;
        this.stats.failClosed++;
        return this.unavailable;
      case 'local':
        policy.stats.fallback++;
        this.stats.fallback++;
        return this.fallback.decide(policy, key, at, out)
          ? { allowed: true, policy, key, at, recorded: false }
          : this.fallbackDenied;
    }
  }

  /** The store (or the fallback) already counted the hit. */
  commit(_hold: StrictHold): void {}

  async release({ policy, key, at, recorded }: StrictHold): Promise<void> {
    if (!recorded) return;
    this.fallback.unhit(policy, key, at);
    const link = this.link;
    if (!link) return;
    // A refund that fails leaves the hit counted: the limit errs on the strict side, and the
    // store already counts the failure (stats.refundFailures).
    await link.refund(policy, key, at, policy.cost).catch(() => undefined);
  }

  publish(_hold: StrictHold): void {}
}

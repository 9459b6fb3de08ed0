import type { Logger } from 'pino';
import { ThrottledWarning } from '../../cluster/throttled-warning.js';
import type { KeyBudget } from '../tiers/links.js';
import type { EventualStats } from './eventual-options.js';
import type { HitBatch } from './messages.js';
import type { OriginState } from './origins.js';

/** Where remote hits go (the RateLimiter). */
export interface HitSink {
  /**
   * Records a hit another node allowed, at its origin time; stale or unknown hits are dropped,
   * and so is a hit that would make a new key beyond its origin's `budget` (`refused`).
   */
  applyRemote(
    policyId: string,
    key: string,
    at: number,
    cost: number,
    budget?: KeyBudget,
  ): 'applied' | 'over' | 'stale' | 'unknown' | 'refused';
  /** How long hits of a policy matter (its window), or null when the policy is unknown. */
  horizonOf(policyId: string): number | null;
  /** The longest horizon of the eventual policies (0 when there are none). */
  longestHorizonMs(): number;
}

/** The bounds on what peers may send (`eventual.*`, protocol/ratelimit.md §7). */
export interface IntakeLimits {
  readonly maxKeysPerOrigin: number;
  readonly maxBatchHits: number;
  readonly maxReceivedBatchBytes: number;
  readonly maxKeyLength: number;
}

/**
 * Where the eventual tier's received hits go: each checked against the bounds on what a peer may
 * send, moved onto our clock and applied to the limiter, with counters and throttled warnings
 * for what is dropped.
 */
export class HitIntake {
  private readonly budgetWarning = new ThrottledWarning();
  private readonly hitsWarning = new ThrottledWarning();
  private readonly bytesWarning = new ThrottledWarning();
  private readonly maxKeysPerOrigin: number;
  private readonly maxBatchHits: number;
  private readonly maxReceivedBatchBytes: number;
  private readonly maxKeyLength: number;

  constructor(
    private readonly sink: HitSink,
    private readonly stats: EventualStats,
    private readonly logger: Logger,
    /** How far an origin's wall clock runs ahead of ours (ms; 0 when unknown). */
    private readonly clockOffset: (origin: string) => number,
    limits: IntakeLimits,
  ) {
    this.maxKeysPerOrigin = limits.maxKeysPerOrigin;
    this.maxBatchHits = limits.maxBatchHits;
    this.maxReceivedBatchBytes = limits.maxReceivedBatchBytes;
    this.maxKeyLength = limits.maxKeyLength;
  }

  /** A received batch dropped whole for its size: counted, and warned about (throttled). */
  oversized(
    subject: string,
    size: Record<string, unknown>,
    limit: 'maxBatchHits' | 'maxReceivedBatchBytes',
  ): void {
    this.stats.oversizedBatches++;
    const warning = limit === 'maxBatchHits' ? this.hitsWarning : this.bytesWarning;
    warning.warn(
      this.logger,
      {
        subject,
        ...size,
        maxBatchHits: this.maxBatchHits,
        maxReceivedBatchBytes: this.maxReceivedBatchBytes,
        oversizedBatches: this.stats.oversizedBatches,
      },
      `rate-limit hit batch dropped: over eventual.${limit}`,
    );
  }

  /** The hits of a batch, applied to the limiter under the origin's key budget. */
  apply(batch: HitBatch, state: OriginState): void {
    // The origin's times, moved onto our clock by its offset (measured from its heartbeats).
    const offset = this.clockOffset(batch.o);
    let refused = 0;
    for (const [policy, key, at, cost] of batch.h) {
      if (key.length > this.maxKeyLength) {
        this.stats.longKeyHits++;
        refused++;
        continue;
      }
      const outcome = this.sink.applyRemote(policy, key, at - offset, cost, state.budget);
      if (outcome === 'over') {
        this.stats.appliedHits++;
        this.stats.overLimitHits++;
      } else if (outcome === 'applied') this.stats.appliedHits++;
      else if (outcome === 'stale') this.stats.staleHits++;
      else if (outcome === 'refused') {
        this.stats.overBudgetHits++;
        refused++;
      } else this.stats.unknownPolicyHits++;
    }
    if (refused > 0)
      this.budgetWarning.warn(
        this.logger,
        {
          origin: batch.o,
          keys: state.budget.keys,
          maxKeysPerOrigin: this.maxKeysPerOrigin,
          maxKeyLength: this.maxKeyLength,
          overBudgetHits: this.stats.overBudgetHits,
          longKeyHits: this.stats.longKeyHits,
        },
        'rate-limit hits from a peer dropped: new keys beyond eventual.maxKeysPerOrigin, or keys longer than eventual.maxKeyLength',
      );
  }
}

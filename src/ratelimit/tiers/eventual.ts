import type { Clock } from '../../util/clock.js';
import type { Policy } from '../policy.js';
import { emptyDecision } from '../types.js';
import type { EventualLink, KeyBudget } from './links.js';
import { LocalRateTier } from './local.js';

/** What became of a hit another node allowed (`RateLimiter.applyRemote`). */
export type RemoteHitOutcome = 'applied' | 'over' | 'stale' | 'unknown' | 'refused';

/**
 * The `eventual` mode: counted locally like `local`, on the wall clock (comparable across
 * nodes), and every hit of an allowed request is broadcast to the other nodes, which apply it
 * at its origin time.
 */
export class EventualRateTier extends LocalRateTier {
  /** Where allowed hits are broadcast; null while not linked to the cluster. */
  link: EventualLink | null = null;
  private readonly scratch = emptyDecision();

  constructor(wall: Clock) {
    super('eventual', wall);
  }

  /** Eventual hits are shared only once the whole request is allowed. */
  protected override share(policy: Policy, key: string, at: number): void {
    this.link?.committed(policy, key, at, policy.cost);
  }

  /**
   * A hit another node allowed, at its origin time; `storageKey` as on the wire. With a `budget`
   * (the sending origin's), a hit for a key not held here creates it only while the origin is
   * under its key budget; otherwise it is `refused`.
   */
  applyRemote(
    policy: Policy,
    storageKey: string,
    at: number,
    cost: number,
    budget?: KeyBudget,
  ): RemoteHitOutcome {
    const key = policy.valueOf(storageKey);
    // A cost this policy could never admit is not a hit a peer with this policy sent.
    const capacity =
      policy.algorithm.name === 'gcra'
        ? (policy.config.burst ?? policy.algorithm.limit)
        : policy.algorithm.limit;
    if (key === null || !Number.isInteger(cost) || cost > capacity) return 'unknown';
    const now = this.clock();
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
}

import type { Clock } from '../../util/clock.js';
import type { Policy } from '../policy.js';
import type { Slot } from '../store.js';
import type { Decision } from '../types.js';
import { refusedKey, tierDenial, type Hold, type ImmediateTier, type TierDenial } from './tier.js';

/** A local hit: the key's slot, peeked and not yet committed. */
export interface LocalHold extends Hold {
  readonly slot: Slot<unknown>;
}

/**
 * The `local` mode: each policy counts in its own in-memory store on this node, on the monotonic
 * clock (immune to wall-clock steps). `check` only peeks, so a denial consumes nothing.
 */
export class LocalRateTier implements ImmediateTier<LocalHold> {
  readonly deferred = false;
  private readonly denied: TierDenial;
  private readonly refused: TierDenial;

  constructor(
    readonly mode: 'local' | 'eventual',
    /** The clock this tier's states run on. */
    readonly clock: Clock,
  ) {
    this.denied = tierDenial(mode);
    this.refused = tierDenial(mode, { refused: true });
  }

  check(policy: Policy, key: string, out: Decision): LocalHold | TierDenial {
    const at = this.clock();
    const slot = policy.store.ensure(key, policy.createState, at);
    if (slot === null) {
      // Full and refusing new keys (IP policies): deny rather than forget someone's quota.
      refusedKey(policy, out);
      return this.refused;
    }
    policy.algorithm.peek(slot.state, at, policy.cost, out);
    return out.allowed ? { allowed: true, policy, key, slot, at } : this.denied;
  }

  admit(policy: Policy, key: string, out: Decision): TierDenial | null {
    const at = this.clock();
    const slot = policy.store.ensure(key, policy.createState, at);
    if (slot === null) {
      refusedKey(policy, out);
      return this.refused;
    }
    policy.algorithm.peek(slot.state, at, policy.cost, out);
    if (!out.allowed) return this.denied;
    policy.algorithm.commit(slot.state, at, policy.cost);
    policy.store.touch(slot, policy.algorithm.expiresAt(slot.state));
    this.share(policy, key, at);
    return null;
  }

  commit({ policy, slot, at }: LocalHold): void {
    policy.algorithm.commit(slot.state, at, policy.cost);
    policy.store.touch(slot, policy.algorithm.expiresAt(slot.state));
  }

  release({ policy, slot, at }: LocalHold): void {
    policy.algorithm.refund(slot.state, at, policy.cost);
  }

  publish({ policy, key, at }: LocalHold): void {
    this.share(policy, key, at);
  }

  /** A committed hit of a request allowed as a whole: local counts stay on this node. */
  protected share(_policy: Policy, _key: string, _at: number): void {}
}

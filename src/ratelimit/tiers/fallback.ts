import type { Clock } from '../../util/clock.js';
import { createAlgorithm } from '../algorithms/index.js';
import type { Policy } from '../policy.js';
import type { Algorithm, Decision } from '../types.js';
import { refusedKey } from './tier.js';

/**
 * The strict tier's `local` fallback, an insurance limiter: this node's share of each strict
 * policy, ceil(limit / healthy nodes), counted in the policy's local store on the wall clock
 * (like its store), and capped by what the store last confirmed for the key (`Policy.known`).
 */
export class FallbackShares {
  private readonly shares = new Map<string, { nodes: number; algorithm: Algorithm<unknown> }>();
  /** Healthy gateway nodes (the share's divisor); 1 while not linked to the cluster. */
  nodes: () => number = () => 1;

  /** A policy was added, replaced or removed: its share is made afresh on next use. */
  forget(policyId: string): void {
    this.shares.delete(policyId);
  }

  /** The share's algorithm: ceil(limit / healthy nodes), and the same share of a GCRA burst. */
  algorithmFor(policy: Policy): Algorithm<unknown> {
    const nodes = Math.max(1, this.nodes());
    const cached = this.shares.get(policy.id);
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
    this.shares.set(policy.id, { nodes, algorithm });
    return algorithm;
  }

  /**
   * Decides one hit without the store, into `out`: what the store last confirmed for this key,
   * plus this node's fallback admissions since, must allow it (a key the store holds full stays
   * denied: a slow store is not a free pass), and so must this node's share.
   */
  decide(policy: Policy, key: string, at: number, out: Decision): boolean {
    const known = policy.known?.get(key);
    if (known) {
      policy.algorithm.peek(known.state, at, policy.cost, out);
      if (!out.allowed) return false;
    }
    const algorithm = this.algorithmFor(policy);
    // The share's own state shape (a sliding log's ring is share-sized).
    const slot = policy.store.ensure(key, () => algorithm.create(), at);
    if (slot === null) {
      refusedKey(policy, out);
      return false;
    }
    algorithm.peek(slot.state, at, policy.cost, out);
    if (out.allowed) {
      algorithm.commit(slot.state, at, policy.cost);
      policy.store.touch(slot, algorithm.expiresAt(slot.state));
      if (known) {
        policy.algorithm.commit(known.state, at, policy.cost);
        policy.known!.touch(known, policy.algorithm.expiresAt(known.state));
      }
    }
    return out.allowed;
  }

  /**
   * A hit the store admitted through this node also counts against this node's share: should
   * the store turn slow or fail mid-window, the fallback admits only what is left of the share
   * (ceil(limit / nodes) minus this node's admissions in the window), not a whole share more.
   */
  hit(policy: Policy, key: string, at: number): void {
    if (policy.fallback !== 'local') return;
    const algorithm = this.algorithmFor(policy);
    const slot = policy.store.ensure(key, () => algorithm.create(), at);
    if (slot === null) return;
    algorithm.apply(slot.state, at, policy.cost);
    policy.store.touch(slot, algorithm.expiresAt(slot.state));
  }

  /** Takes back a `hit` (the store's hit was refunded). */
  unhit(policy: Policy, key: string, at: number): void {
    if (policy.fallback !== 'local') return;
    const slot = policy.store.get(key);
    if (slot) this.algorithmFor(policy).refund(slot.state, at, policy.cost);
  }

  /** A key state the store confirmed (written or read): the fallback's view of the store. */
  confirmed(policy: Policy, key: string, state: unknown, wall: Clock): void {
    const known = policy.known;
    if (!known) return;
    const slot = known.ensure(key, () => state, wall());
    if (slot === null) return;
    slot.state = state;
    known.touch(slot, policy.algorithm.expiresAt(state));
  }
}

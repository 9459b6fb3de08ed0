/** The limiter's per-key admin operations (`/admin/rate-limits/...`): look at a key, forget it. */
import type { Policy } from './policy.js';
import { emptyDecision, type Algorithm, type Decision } from './types.js';

/**
 * The current state of one key of a policy at `now`, without changing it. `algorithm` is the
 * one its local state follows (for a strict policy, its fallback share's).
 */
export function keyStatus(
  policy: Policy,
  algorithm: Algorithm<unknown>,
  value: string,
  now: () => number,
): Decision {
  const slot = policy.store.get(value);
  const decision = emptyDecision();
  const state = slot?.state ?? algorithm.create();
  algorithm.peek(state, now(), policy.cost, decision);
  return decision;
}

/** Forgets one key's local state, deny-cache entry and last store-confirmed state. */
export function resetKey(policy: Policy, value: string): boolean {
  const cached = policy.denials.delete(value);
  const known = policy.known?.delete(value) ?? false;
  return policy.store.delete(value) || cached || known;
}

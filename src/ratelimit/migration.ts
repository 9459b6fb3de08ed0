import { Policy, PolicyError } from './policy.js';
import type { PolicyConfig } from './types.js';

/** What setPolicy did to the policy's counters: a new policy, or a replacement that kept or reset them. */
export interface PolicyReplacement {
  readonly policy: Policy;
  readonly counters: 'new' | 'kept' | 'reset';
}

/**
 * The policy that replaces `previous` (or is new). A compatible replacement (Policy.carriesTo:
 * same algorithm, key and mode) continues the old counters under the new limit and window; any
 * other starts them empty. Strict counters live in the store under the policy id and are kept
 * either way, so a strict policy cannot change its algorithm (the store's states would be
 * misread): that needs a new id. Per-policy stats carry over (they are cumulative metrics).
 */
export function replacePolicy(
  previous: Policy | undefined,
  config: PolicyConfig,
  /** A validated policy with the limiter's store settings. */
  create: (config: PolicyConfig) => Policy,
): PolicyReplacement {
  let policy = create(config);
  if (!previous) return { policy, counters: 'new' };
  if (
    previous.mode === 'strict' &&
    policy.mode === 'strict' &&
    previous.algorithm.name !== policy.algorithm.name
  ) {
    throw new PolicyError(
      `policy ${config.id}: a strict policy keeps its counters in the store under its id, so its algorithm cannot change (${previous.algorithm.name} → ${policy.algorithm.name}); add a policy with a new id instead`,
    );
  }
  let counters: PolicyReplacement['counters'];
  if (previous.carriesTo(policy)) {
    policy = new Policy(config, {}, previous.store);
    convertStates(previous, policy);
    counters = 'kept';
  } else {
    counters = policy.mode === 'strict' && previous.mode === 'strict' ? 'kept' : 'reset';
    // The old states are dropped with their store: peers get their key budgets back.
    previous.store.releaseOwners();
  }
  Object.assign(policy.stats, previous.stats);
  return { policy, counters };
}

/**
 * Moves the states `next` took over from `previous` onto its parameters: a sliding log's ring
 * is sized by its limit (re-encoded: the newest hits are kept), and every state's expiry is
 * recomputed (a longer window keeps keys longer).
 */
function convertStates(previous: Policy, next: Policy): void {
  const from = previous.algorithm;
  const to = next.algorithm;
  const reshape = from.name === 'sliding_log' && from.limit !== to.limit;
  if (!reshape && from.windowMs === to.windowMs && from.limit === to.limit) return;
  for (const [, slot] of next.store.entries()) {
    if (reshape) slot.state = to.decode(from.encode(slot.state)) ?? to.create();
    next.store.touch(slot, to.expiresAt(slot.state));
  }
}

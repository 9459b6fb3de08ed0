import type { Logger } from 'pino';
import type { RateLimitCluster } from './cluster/index.js';
import type { PolicyChange } from './cluster/messages.js';
import type { PolicyLedger } from './cluster/policy-ledger.js';
import type { Signer } from './cluster/signing.js';
import type { RateLimiter } from './limiter.js';
import type { Policy } from './policy.js';
import type { PolicyConfig } from './types.js';

/** Who made an admin change (for the log). */
export interface Actor {
  readonly via: 'admin' | 'cluster' | 'api';
  readonly who?: string;
}

/**
 * Runtime policy changes (admin API, or a peer's through the cluster): validated and applied to
 * the limiter, logged, versioned in the ledger and, when linked with a cluster secret, published
 * so every node applies them.
 */
export class PolicyChanges {
  constructor(
    private readonly limiter: RateLimiter,
    /** This process's id on the cluster subjects (the origin of its changes). */
    private readonly origin: string,
    private readonly ledger: PolicyLedger,
    private readonly signer: Signer | null,
    private readonly logger: Logger,
    /** The cluster link, once attached. */
    private readonly cluster: () => RateLimitCluster | null,
    /** The set of policies changed (after the limiter applied it). */
    private readonly changed: () => void,
  ) {}

  /**
   * Adds or replaces a policy on this node and, when linked with a cluster secret, on every node
   * (a change from the cluster arrives here with `via: 'cluster'`, already versioned).
   */
  put(config: PolicyConfig, actor: Actor): Policy {
    const previous = this.limiter.policy(config.id)?.config;
    const { policy, counters } = this.limiter.setPolicy(config);
    this.changed();
    // A new strict policy's bucket is made now, not by its first request (within a 25 ms timeout).
    const strict = this.cluster()?.strict;
    if (policy.mode === 'strict' && strict)
      strict
        .prepare([policy])
        .catch((err: unknown) =>
          this.logger.warn(
            { err, policy: policy.id },
            'rate-limit store not prepared for the new policy; its first request will try again',
          ),
        );
    if (previous)
      this.logger.warn({ actor, policy: config, previous, counters }, 'rate-limit policy replaced');
    else this.logger.warn({ actor, policy: config, previous: null }, 'rate-limit policy added');
    if (actor.via !== 'cluster')
      this.share({
        o: this.origin,
        t: this.ledger.stamp(this.limiter.wall()),
        op: 'put',
        policy: config,
      });
    return policy;
  }

  delete(id: string, actor: Actor): boolean {
    const previous = this.limiter.policy(id)?.config;
    if (!previous) return false;
    this.limiter.removePolicy(id);
    this.changed();
    this.logger.warn({ actor, policy: previous }, 'rate-limit policy removed');
    if (actor.via !== 'cluster')
      this.share({ o: this.origin, t: this.ledger.stamp(this.limiter.wall()), op: 'delete', id });
    return true;
  }

  setShadow(shadow: boolean, actor: Actor): void {
    const previous = this.limiter.shadow;
    this.limiter.setShadow(shadow);
    this.logger.warn({ actor, shadow, previous }, 'rate-limit shadow mode changed');
    if (actor.via !== 'cluster')
      this.share({
        o: this.origin,
        t: this.ledger.stamp(this.limiter.wall()),
        op: 'shadow',
        shadow,
      });
  }

  /** A peer's change, newer than ours (the ledger accepted it): applied and logged like a local one. */
  applyRemote(change: PolicyChange): void {
    const actor: Actor = { via: 'cluster', who: change.o };
    try {
      if (change.op === 'put') this.put(change.policy, actor);
      else if (change.op === 'delete') {
        // Unknown here (never added, or already gone): the tombstone is kept all the same.
        if (!this.delete(change.id, actor))
          this.logger.debug(
            { actor, id: change.id },
            'rate-limit policy removal from the cluster: no such policy here',
          );
      } else this.setShadow(change.shadow, actor);
    } catch (err) {
      this.logger.error(
        { actor, change, err: (err as Error).message },
        'rate-limit policy change from the cluster refused',
      );
    }
  }

  /** Versions a change made here and, when linked with a secret, publishes it. */
  private share(change: PolicyChange): void {
    this.ledger.accept(change);
    const cluster = this.cluster();
    if (!cluster) return;
    if (!cluster.policies.publish(change) && !this.signer) {
      this.logger.warn(
        { change },
        'rate-limit policy change applies to this gateway only: set rateLimits.clusterSecret to share changes with the other gateways',
      );
    }
  }
}

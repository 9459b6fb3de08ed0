import { randomBytes } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Subjects } from '../../nats/subjects.js';
import type { RateLimiter } from '../limiter.js';
import { EventualCluster, type EventualOptions, type EventualStats } from './eventual.js';
import { Membership, type MembershipOptions } from './membership.js';
import { decodePolicyChange, encode, type PolicyChange } from './messages.js';
import { StrictStore, type StrictOptions, type StrictStats } from './strict.js';

/** A policy change as made locally (the origin id is added when published). */
export type LocalPolicyChange = PolicyChange extends infer T ? (T extends unknown ? Omit<T, 'o'> : never) : never;

export interface ClusterOptions {
  eventual?: EventualOptions & MembershipOptions;
  strict?: StrictOptions;
}

export interface ClusterConnection {
  readonly nc: NatsConnection;
  /** Whether the connection is up (strict mode skips the store at once when it is not). */
  readonly connected: () => boolean;
  readonly subjects: Subjects;
}

export interface ClusterHealth {
  origin: string;
  nodes: number;
  maxPeerSkewMs: number;
  eventual: EventualStats & { retained: { batches: number; hits: number } };
  strict: StrictStats;
}

/**
 * A gateway's rate-limit links to the others over NATS: membership (heartbeats), the eventual
 * tier (hit batches, sync, replay), the strict tier (JetStream KV) and runtime policy changes.
 * The origin id is new for every process, so a restarted node is never mistaken for its past self.
 */
export class RateLimitCluster {
  readonly origin = randomBytes(6).toString('hex');
  readonly membership: Membership;
  readonly eventual: EventualCluster;
  readonly strict: StrictStore;
  private policySub: Subscription | null = null;
  private maintenance: NodeJS.Timeout | null = null;

  constructor(
    private readonly limiter: RateLimiter,
    /** Hits, heartbeats and policy changes. */
    private readonly link: ClusterConnection,
    /** The KV store's connection (the same one unless configured apart). */
    store: ClusterConnection,
    private readonly logger: Logger,
    options: ClusterOptions,
    private readonly onPolicyChange: (change: PolicyChange) => void,
  ) {
    this.eventual = new EventualCluster(link.nc, link.subjects, this.origin, limiter, logger, options.eventual, limiter.wall, (peer) =>
      this.membership.offsetOf(peer),
    );
    this.membership = new Membership(
      link.nc,
      link.subjects.rlNode,
      this.origin,
      () => this.eventual.lastSeq,
      (heartbeat) => this.eventual.heartbeat(heartbeat),
      logger,
      options.eventual,
      limiter.wall,
    );
    this.strict = new StrictStore(store.nc, store.connected, store.subjects.prefix, this.origin, logger, options.strict, limiter.wall);
  }

  async start(): Promise<void> {
    this.policySub = this.link.nc.subscribe(this.link.subjects.rlPolicy, {
      callback: (err, msg) => {
        const change = err ? null : decodePolicyChange(msg.data);
        if (change && change.o !== this.origin) this.onPolicyChange(change);
      },
    });
    this.eventual.start();
    this.membership.start();
    this.limiter.eventual = this.eventual;
    this.limiter.strict = this.strict;
    this.limiter.nodes = () => this.membership.nodes();
    this.maintenance = setInterval(() => this.eventual.forgetSilent(), 30_000);
    this.maintenance.unref();
    await this.strict.prepare(this.limiter.policies());
    this.logger.info({ origin: this.origin }, 'rate limits linked to the cluster');
  }

  /** Tells the other nodes about a change made here (admin API). */
  publishPolicyChange(change: LocalPolicyChange): void {
    try {
      this.link.nc.publish(this.link.subjects.rlPolicy, encode({ ...change, o: this.origin }));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'policy change not published to the cluster');
    }
  }

  health(): ClusterHealth {
    return {
      origin: this.origin,
      nodes: this.membership.nodes(),
      maxPeerSkewMs: this.membership.maxSkewMs(),
      eventual: { ...this.eventual.stats, retained: this.eventual.retainedSize },
      strict: { ...this.strict.stats },
    };
  }

  close(): void {
    if (this.maintenance) clearInterval(this.maintenance);
    this.maintenance = null;
    this.eventual.close();
    this.membership.stop();
    this.strict.close();
    this.policySub?.unsubscribe();
    this.policySub = null;
    this.limiter.eventual = null;
    this.limiter.strict = null;
    this.limiter.nodes = () => 1;
  }
}

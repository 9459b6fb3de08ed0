import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Subjects } from '../../nats/subjects.js';
import type { RateLimiter } from '../limiter.js';
import { EventualCluster, type EventualOptions, type EventualStats } from './eventual.js';
import { ClusterGuard } from './guard.js';
import { Membership, type MembershipOptions } from './membership.js';
import type { PolicyChange } from './messages.js';
import type { PolicyLedger } from './policy-ledger.js';
import { PolicySync, type PolicySyncStats } from './policy-sync.js';
import type { Signer } from './signing.js';
import { StrictStore, type StrictOptions, type StrictStats } from './strict.js';

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

/**
 * The rate-limit cluster link in `RateLimitsHealth`: nodes, skew, and the eventual, strict and
 * policy-sync counters.
 */
export interface ClusterHealth {
  /** This process's id on the cluster subjects (new at every start). */
  origin: string;
  /** Live gateway nodes, this one included. */
  nodes: number;
  /** Largest wall-clock difference seen to a live peer (ms, absolute). */
  maxPeerSkewMs: number;
  /** The eventual tier's counters and the hits it retains for replay. */
  eventual: EventualStats & { retained: { batches: number; hits: number } };
  /** The strict tier's counters, and keys with a compare-and-swap queued or in flight now. */
  strict: StrictStats & { pendingKeys: number };
  /** Runtime policy changes: shared (a cluster secret is set), ledger digest and size, counters. */
  policies: PolicySyncStats & { shared: boolean; digest: string; changes: number };
  /**
   * Hit batches, heartbeats, sync and replay messages: signed (a cluster secret is set), and
   * those refused on receipt: `rejected` (no or a wrong signature), `replays` (signed, but old
   * or already answered), `ignoredPeers` (new peers beyond `eventual.maxOrigins`).
   */
  auth: { signed: boolean; rejected: number; replays: number; ignoredPeers: number };
}

/**
 * A gateway's rate-limit links to the others over NATS: membership (heartbeats), the eventual
 * tier (hit batches, sync, replay), the strict tier (JetStream KV) and runtime policy changes.
 * The origin id is new for every process, so a restarted node is never mistaken for its past self.
 */
export class RateLimitCluster {
  readonly membership: Membership;
  readonly eventual: EventualCluster;
  readonly strict: StrictStore;
  readonly policies: PolicySync;
  /** Signs and checks the hit, heartbeat, sync and replay messages. */
  readonly guard: ClusterGuard;
  private maintenance: NodeJS.Timeout | null = null;

  constructor(
    /** This process's id on the cluster subjects (new at every start). */
    readonly origin: string,
    private readonly limiter: RateLimiter,
    /** Hits, heartbeats and policy changes. */
    link: ClusterConnection,
    /** The KV store's connection (the same one unless configured apart). */
    store: ClusterConnection,
    private readonly logger: Logger,
    options: ClusterOptions,
    /** Runtime policy changes: this node's ledger, how to apply a peer's change, the signer (null: not shared). */
    policy: { ledger: PolicyLedger; apply: (change: PolicyChange) => void; signer: Signer | null },
  ) {
    this.guard = new ClusterGuard(
      policy.signer,
      logger,
      options.eventual?.signedMaxAgeMs,
      limiter.wall,
    );
    this.policies = new PolicySync(
      link.nc,
      link.subjects.rlPolicy,
      origin,
      policy.ledger,
      policy.apply,
      policy.signer,
      logger,
      limiter.wall,
      this.guard,
    );
    this.eventual = new EventualCluster(
      link.nc,
      link.subjects,
      this.origin,
      limiter,
      logger,
      options.eventual,
      limiter.wall,
      (peer) => this.membership.offsetOf(peer),
      this.guard,
    );
    this.membership = new Membership(
      link.nc,
      link.subjects.rlNode,
      this.origin,
      () => this.eventual.lastSeq,
      (heartbeat) => {
        this.eventual.heartbeat(heartbeat);
        this.policies.heartbeat(heartbeat);
      },
      logger,
      options.eventual,
      limiter.wall,
      () => this.policies.digest(),
      this.guard,
    );
    this.strict = new StrictStore(
      store.nc,
      store.connected,
      store.subjects.prefix,
      this.origin,
      logger,
      options.strict,
      limiter.wall,
    );
    this.strict.observed = (policy, key, state) => limiter.storeState(policy, key, state);
  }

  async start(): Promise<void> {
    this.policies.start();
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

  health(): ClusterHealth {
    return {
      origin: this.origin,
      nodes: this.membership.nodes(),
      maxPeerSkewMs: this.membership.maxSkewMs(),
      eventual: { ...this.eventual.stats, retained: this.eventual.retainedSize },
      strict: { ...this.strict.stats, pendingKeys: this.strict.pendingKeys },
      policies: {
        ...this.policies.stats,
        shared: this.policies.enabled,
        digest: this.policies.digest() ?? '',
        changes: this.policies.ledgerSize,
      },
      auth: {
        ...this.guard.stats,
        signed: this.guard.signing,
        ignoredPeers: this.membership.ignoredOrigins,
      },
    };
  }

  close(): void {
    if (this.maintenance) clearInterval(this.maintenance);
    this.maintenance = null;
    this.eventual.close();
    this.membership.stop();
    this.strict.close();
    this.policies.close();
    this.limiter.eventual = null;
    this.limiter.strict = null;
    this.limiter.nodes = () => 1;
  }
}

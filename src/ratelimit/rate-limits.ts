import { randomBytes } from 'node:crypto';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { ConnectLimit } from '../config/socket-options.js';
import { RateLimitCluster, type ClusterConnection, type ClusterHealth } from './cluster/index.js';
import { PolicyLedger } from './cluster/policy-ledger.js';
import { Signer } from './cluster/signing.js';
import { ConnectPolicies } from './connect-limit.js';
import { RateLimiter } from './limiter.js';
import type { Clock } from '../util/clock.js';
import type { Policy } from './policy.js';
import { PolicyChanges, type Actor } from './policy-changes.js';
import {
  checkRateLimitsOptions,
  configuredPolicies,
  type RateLimitsOptions,
} from './rate-limits-options.js';
import { connectStore } from './store-connection.js';
import { emptyDecision, type Decision, type PolicyConfig, type RateLimitStats } from './types.js';
import { InvalidStateError } from '../errors.js';

export {
  CONNECT_POLICY,
  type ConnectLimitOptions,
  type RateLimitsOptions,
} from './rate-limits-options.js';
export type { Actor } from './policy-changes.js';

/** One policy in `RateLimitsHealth`: its config, keys held and counters. */
export interface PolicyView {
  /** The policy as configured. */
  config: PolicyConfig;
  /** Keys (callers) this node holds state for. */
  keys: number;
  /** Its counters. */
  stats: RateLimitStats;
}

/** The rate limits' part of `GenApi.health()` and `/admin/rate-limits`. */
export interface RateLimitsHealth {
  /** Every policy counts without denying. */
  shadow: boolean;
  /** Keys held, all policies. */
  keys: number;
  /** The limiter's counters, all policies. */
  stats: RateLimitStats;
  /** Every policy. */
  policies: PolicyView[];
  /** The cluster link (eventual, strict, policy sync), or null before NATS or without it. */
  cluster: ClusterHealth | null;
}

/**
 * The rate limits of one gateway: the limiter for gen_api requests, the connect limit for the
 * socket endpoint, the cluster link (eventual and strict modes) once NATS is up, and the runtime
 * changes the admin API makes (validated, logged, and applied on every node).
 */
export class RateLimits {
  readonly limiter: RateLimiter;
  /** This process's id on the cluster subjects (and the origin of its policy changes). */
  readonly origin = randomBytes(6).toString('hex');
  /** Runtime policy changes, versioned (shared with peers when a cluster secret is set). */
  private readonly ledger = new PolicyLedger();
  private readonly signer: Signer | null;
  private readonly connectPolicies: ConnectPolicies;
  private readonly changes: PolicyChanges;
  private cluster: RateLimitCluster | null = null;
  private ownStoreConnection: NatsConnection | null = null;
  /** The per-IP connect check for the socket endpoint (no-op while no connect policy exists). */
  readonly connectLimit: ConnectLimit;

  constructor(
    private readonly options: RateLimitsOptions,
    private readonly logger: Logger,
    /** Injected clocks (tests: fake time, skewed nodes). */
    clocks: { monotonic?: Clock; wall?: Clock } = {},
  ) {
    checkRateLimitsOptions(options);
    const secret = options.clusterSecret;
    this.signer = secret === undefined ? null : new Signer(secret);
    this.limiter = new RateLimiter(
      {
        policies: configuredPolicies(options),
        ...(options.shadow === undefined ? {} : { shadow: options.shadow }),
        ...(options.sweepMs === undefined ? {} : { sweepMs: options.sweepMs }),
        ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
      },
      logger,
      clocks.monotonic,
      clocks.wall,
    );
    this.connectPolicies = new ConnectPolicies(this.limiter);
    this.connectLimit = this.connectPolicies.check;
    this.changes = new PolicyChanges(
      this.limiter,
      this.origin,
      this.ledger,
      this.signer,
      logger,
      () => this.cluster,
      () => this.connectPolicies.refresh(),
    );
    const ids = this.limiter.policies().map((policy) => `${policy.id}(${policy.mode})`);
    if (ids.length > 0)
      logger.info({ policies: ids, shadow: this.limiter.shadow }, 'rate limits loaded');
  }

  /** Links to the other gateways over NATS (eventual and strict modes). */
  async attach(
    link: ClusterConnection,
    /** The gateway's credential, TLS and inbox options (natsClientOptions), for the store's own connection. */
    credentials: ConnectionOptions = {},
  ): Promise<void> {
    if (this.cluster) throw new InvalidStateError('rate limits are already linked to NATS');
    let store: ClusterConnection = link;
    const servers = this.options.strict?.servers;
    if (servers !== undefined) {
      const { nc, connected } = await connectStore(servers, credentials, this.logger);
      this.ownStoreConnection = nc;
      store = { nc, connected, subjects: link.subjects };
    }
    const { servers: _servers, ...strict } = this.options.strict ?? {};
    this.cluster = new RateLimitCluster(
      this.origin,
      this.limiter,
      link,
      store,
      this.logger,
      { ...(this.options.eventual ? { eventual: this.options.eventual } : {}), strict },
      {
        ledger: this.ledger,
        apply: (change) => this.changes.applyRemote(change),
        signer: this.signer,
      },
    );
    await this.cluster.start();
  }

  // ---- runtime changes (admin API, policy-changes.ts) ---------------------------------------

  /**
   * Adds or replaces a policy on this node and, when linked with a cluster secret, on every node
   * (a change from the cluster arrives here with `via: 'cluster'`, already versioned).
   */
  putPolicy(config: PolicyConfig, actor: Actor): Policy {
    return this.changes.put(config, actor);
  }

  deletePolicy(id: string, actor: Actor): boolean {
    return this.changes.delete(id, actor);
  }

  setShadow(shadow: boolean, actor: Actor): void {
    this.changes.setShadow(shadow, actor);
  }

  /** One key's state: the store's for strict policies (when reachable), the local one otherwise. */
  async status(
    policyId: string,
    value: string,
  ): Promise<{ decision: Decision; source: 'local' | 'strict' } | null> {
    const policy = this.limiter.policy(policyId);
    if (!policy) return null;
    if (policy.mode === 'strict' && this.cluster?.strict.available()) {
      const decision = emptyDecision();
      try {
        await this.cluster.strict.peek(policy, value, decision);
        return { decision, source: 'strict' };
      } catch {
        // Fall through to the local (fallback) state.
      }
    }
    const decision = this.limiter.status(policyId, value);
    return decision ? { decision, source: 'local' } : null;
  }

  /**
   * Forgets one key: locally, and in the store for strict policies. 'partial' when the store could
   * not be reached (the local state and deny cache are reset; the store keeps its count).
   */
  async reset(
    policyId: string,
    value: string,
    actor: Actor,
  ): Promise<'reset' | 'partial' | 'unknown'> {
    const policy = this.limiter.policy(policyId);
    if (!policy) return 'unknown';
    this.limiter.reset(policyId, value);
    let outcome: 'reset' | 'partial' = 'reset';
    if (policy.mode === 'strict' && this.cluster) {
      try {
        await this.cluster.strict.reset(policy, value);
      } catch (err) {
        outcome = 'partial';
        this.logger.warn(
          { actor, policy: policyId, key: value, err: (err as Error).message },
          'rate-limit key reset locally; the store could not be reached',
        );
      }
    }
    if (outcome === 'reset')
      this.logger.warn({ actor, policy: policyId, key: value }, 'rate-limit key reset');
    return outcome;
  }

  health(): RateLimitsHealth {
    return {
      shadow: this.limiter.shadow,
      keys: this.limiter.keys,
      stats: { ...this.limiter.stats },
      policies: this.limiter.policies().map((policy) => ({
        config: policy.config,
        keys: policy.store.size,
        stats: { ...policy.stats },
      })),
      cluster: this.cluster?.health() ?? null,
    };
  }

  get linked(): RateLimitCluster | null {
    return this.cluster;
  }

  async close(): Promise<void> {
    this.cluster?.close();
    this.cluster = null;
    this.limiter.close();
    const own = this.ownStoreConnection;
    this.ownStoreConnection = null;
    await own?.close();
  }
}

import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { ConnectLimit, ConnectLimitDecision } from '../config/socket-options.js';
import { RateLimitCluster, type ClusterConnection, type ClusterHealth } from './cluster/index.js';
import type { EventualOptions } from './cluster/eventual.js';
import type { MembershipOptions } from './cluster/membership.js';
import type { PolicyChange } from './cluster/messages.js';
import { PolicyLedger } from './cluster/policy-ledger.js';
import { MIN_SECRET_LENGTH, Signer } from './cluster/signing.js';
import type { StrictOptions } from './cluster/strict.js';
import { RateLimiter, type LimiterDecision, type Observation } from './limiter.js';
import type { Clock } from '../util/clock.js';
import { PolicyError, type Policy } from './policy.js';
import { RATE_LIMITS_DEFAULTS } from './rate-limits-defaults.js';
import {
  emptyDecision,
  type AlgorithmName,
  type Decision,
  type Fallback,
  type Mode,
  type PolicyConfig,
  type RateLimitStats,
} from './types.js';
import { InvalidStateError } from '../errors.js';

/** Shorthand for one per-IP connect policy (`socket_connect`). */
export interface ConnectLimitOptions {
  /** Connects per window per IP. */
  limit: number;
  /** The window in ms. */
  windowMs: number;
  /** Default "gcra" (burst = limit). */
  algorithm?: AlgorithmName;
  /** GCRA burst. Default: limit. */
  burst?: number;
  /** Where counts live. Default "local". */
  mode?: Mode;
  /** strict only: what to do when the store is down. */
  fallback?: Fallback;
}

/** The built-in rate limits (`GenApiOptions.rateLimits`, the config file's `rateLimits`). */
export interface RateLimitsOptions {
  /** gen_api and connect policies. */
  policies?: PolicyConfig[];
  /** Count every policy without denying (rollout). Default false. */
  shadow?: boolean;
  /** A per-IP connect limit (the `socket_connect` policy), or false. Default: none. */
  connect?: ConnectLimitOptions | false;
  /**
   * Eventual mode and membership: batching, warm-up, heartbeats, and the bounds on what peers
   * may send (`maxOrigins`, `maxKeysPerOrigin`, `maxBatchHits`, `maxReceivedBatchBytes`,
   * `maxKeyLength`, `signedMaxAgeMs`; protocol/ratelimit.md §7).
   */
  eventual?: EventualOptions & MembershipOptions;
  /** Strict mode: store timeout, CAS attempts, replicas; `servers` gives the KV store its own connection. */
  strict?: StrictOptions & { servers?: string | string[] };
  /** Expiry sweep resolution. Default 1000 ms. */
  sweepMs?: number;
  /** Keys per policy. Default 1 000 000. */
  maxKeys?: number;
  /**
   * Shared by every gateway (≥ 16 characters): signs every rate-limit cluster message on NATS
   * (hit batches, heartbeats, sync and replay requests and answers, runtime policy changes);
   * messages without its signature are refused. It also lets gateways share and sync runtime
   * policy changes: without it a change stays on the gateway it was made on.
   */
  clusterSecret?: string;
}

/** The policy name of `connect`. */
export const CONNECT_POLICY = 'socket_connect';

const KEYS = new Set([
  'policies',
  'shadow',
  'connect',
  'eventual',
  'strict',
  'sweepMs',
  'maxKeys',
  'clusterSecret',
]);
const CONNECT_KEYS = new Set(['limit', 'windowMs', 'algorithm', 'burst', 'mode', 'fallback']);
/** The cluster-message limits of `eventual` (positive integers, checked at start). */
const EVENTUAL_LIMITS = [
  'maxOrigins',
  'signedMaxAgeMs',
  'maxKeysPerOrigin',
  'maxBatchHits',
  'maxReceivedBatchBytes',
  'maxKeyLength',
] as const;
const EVENTUAL_KEYS = new Set([
  'flushMs',
  'maxBatchBytes',
  'warmup',
  'retainHits',
  'replayTimeoutMs',
  'heartbeatMs',
  'missedHeartbeats',
  'maxSkewMs',
  ...EVENTUAL_LIMITS,
]);
const STRICT_KEYS = new Set([
  'timeoutMs',
  'casAttempts',
  'breakerFailures',
  'breakerOpenMs',
  'bucketRetryMs',
  'replicas',
  'bucketPrefix',
  'maxSkewMs',
  'skewProbeMs',
  'servers',
]);

function checkKeys(name: string, value: unknown, keys: ReadonlySet<string>): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new PolicyError(`${name} must be an object`);
  for (const key of Object.keys(value))
    if (!keys.has(key)) throw new PolicyError(`${name}: unknown option "${key}"`);
}

function checkEventualLimits(eventual: RateLimitsOptions['eventual']): void {
  if (!eventual) return;
  for (const name of EVENTUAL_LIMITS) {
    const value = eventual[name];
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0))
      throw new PolicyError(`rateLimits.eventual.${name} must be a positive integer`);
  }
  // A batch's JSON may be larger than the estimate its size is checked by (escaped characters).
  const sent = eventual.maxBatchBytes ?? RATE_LIMITS_DEFAULTS.eventual.maxBatchBytes;
  const received =
    eventual.maxReceivedBatchBytes ?? RATE_LIMITS_DEFAULTS.eventual.maxReceivedBatchBytes;
  if (sent * 4 > received)
    throw new PolicyError(
      `rateLimits.eventual.maxReceivedBatchBytes (${received}) must be at least 4 × maxBatchBytes (${sent})`,
    );
}

/** Who made an admin change (for the log). */
export interface Actor {
  readonly via: 'admin' | 'cluster' | 'api';
  readonly who?: string;
}

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
  private connectPolicies: Policy[] = [];
  private cluster: RateLimitCluster | null = null;
  private ownStoreConnection: NatsConnection | null = null;

  constructor(
    private readonly options: RateLimitsOptions,
    private readonly logger: Logger,
    /** Injected clocks (tests: fake time, skewed nodes). */
    clocks: { monotonic?: Clock; wall?: Clock } = {},
  ) {
    checkKeys('rateLimits', options, KEYS);
    checkKeys(
      'rateLimits.connect',
      options.connect === false ? undefined : options.connect,
      CONNECT_KEYS,
    );
    checkKeys('rateLimits.eventual', options.eventual, EVENTUAL_KEYS);
    checkEventualLimits(options.eventual);
    checkKeys('rateLimits.strict', options.strict, STRICT_KEYS);
    if (options.policies !== undefined && !Array.isArray(options.policies))
      throw new PolicyError('rateLimits.policies must be a list');
    const secret = options.clusterSecret;
    if (secret !== undefined && (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH)) {
      throw new PolicyError(
        `rateLimits.clusterSecret must be a string of at least ${MIN_SECRET_LENGTH} characters`,
      );
    }
    this.signer = secret === undefined ? null : new Signer(secret);
    const policies = [...(options.policies ?? [])];
    if (options.connect) {
      const { limit, windowMs, algorithm = 'gcra', burst, mode, fallback } = options.connect;
      policies.push({
        id: CONNECT_POLICY,
        scope: 'connect',
        key: 'ip',
        algorithm,
        limit,
        windowMs,
        ...(burst === undefined ? {} : { burst }),
        ...(mode === undefined ? {} : { mode }),
        ...(fallback === undefined ? {} : { fallback }),
      });
    }
    this.limiter = new RateLimiter(
      {
        policies,
        ...(options.shadow === undefined ? {} : { shadow: options.shadow }),
        ...(options.sweepMs === undefined ? {} : { sweepMs: options.sweepMs }),
        ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
      },
      logger,
      clocks.monotonic,
      clocks.wall,
    );
    this.refreshConnectPolicies();
    const ids = this.limiter.policies().map((policy) => `${policy.id}(${policy.mode})`);
    if (ids.length > 0)
      logger.info({ policies: ids, shadow: this.limiter.shadow }, 'rate limits loaded');
  }

  private refreshConnectPolicies(): void {
    this.connectPolicies = this.limiter.policies().filter((policy) => policy.scope === 'connect');
  }

  /** The per-IP connect check for the socket endpoint (no-op while no connect policy exists). */
  readonly connectLimit: ConnectLimit = (ip) => {
    if (this.connectPolicies.length === 0) return ALLOWED_CONNECT;
    const observation: Observation = { decision: emptyDecision(), policy: null };
    const result = this.limiter.decide(
      this.connectPolicies,
      null,
      { ip, socketId: null },
      observation,
    );
    return result instanceof Promise
      ? result.then((r) => toConnectDecision(r, observation))
      : toConnectDecision(result, observation);
  };

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
      const nc = await connect({
        servers,
        name: 'gen-gateway rate-limit store',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        ...credentials,
      });
      this.ownStoreConnection = nc;
      store = { nc, connected: watchConnected(nc, this.logger), subjects: link.subjects };
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
        apply: (change) => this.applyRemoteChange(change),
        signer: this.signer,
      },
    );
    await this.cluster.start();
  }

  // ---- runtime changes (admin API) --------------------------------------------------------

  /**
   * Adds or replaces a policy on this node and, when linked with a cluster secret, on every node
   * (a change from the cluster arrives here with `via: 'cluster'`, already versioned).
   */
  putPolicy(config: PolicyConfig, actor: Actor): Policy {
    const previous = this.limiter.policy(config.id)?.config;
    const { policy, counters } = this.limiter.setPolicy(config);
    this.refreshConnectPolicies();
    // A new strict policy's bucket is made now, not by its first request (within a 25 ms timeout).
    const strict = this.cluster?.strict;
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

  deletePolicy(id: string, actor: Actor): boolean {
    const previous = this.limiter.policy(id)?.config;
    if (!previous) return false;
    this.limiter.removePolicy(id);
    this.refreshConnectPolicies();
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

  /** Versions a change made here and, when linked with a secret, publishes it. */
  private share(change: PolicyChange): void {
    this.ledger.accept(change);
    const cluster = this.cluster;
    if (!cluster) return;
    if (!cluster.policies.publish(change) && !this.signer) {
      this.logger.warn(
        { change },
        'rate-limit policy change applies to this gateway only: set rateLimits.clusterSecret to share changes with the other gateways',
      );
    }
  }

  /** A peer's change, newer than ours (the ledger accepted it): applied and logged like a local one. */
  private applyRemoteChange(change: PolicyChange): void {
    const actor: Actor = { via: 'cluster', who: change.o };
    try {
      if (change.op === 'put') this.putPolicy(change.policy, actor);
      else if (change.op === 'delete') {
        // Unknown here (never added, or already gone): the tombstone is kept all the same.
        if (!this.deletePolicy(change.id, actor))
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

const ALLOWED_CONNECT: ConnectLimitDecision = { allowed: true };

function toConnectDecision(
  result: LimiterDecision,
  observation: Observation,
): ConnectLimitDecision {
  if (result.allowed) {
    const { policy, decision } = observation;
    return policy ? { allowed: true, state: { policy: policy.id, ...decision } } : ALLOWED_CONNECT;
  }
  if ('unavailable' in result) return { allowed: false, unavailable: true };
  const { details } = result;
  return {
    allowed: false,
    state: {
      policy: details.policy,
      limit: details.limit,
      windowMs: details.window_ms,
      remaining: details.remaining,
      resetMs: details.reset_ms,
      retryAfterMs: details.retry_after_ms,
    },
  };
}

/** Tracks whether a connection is up (for a store connection of its own). */
function watchConnected(nc: NatsConnection, logger: Logger): () => boolean {
  let up = true;
  let watching = true;
  (async () => {
    for await (const event of nc.status()) {
      if (event.type === 'disconnect' || event.type === 'close') up = false;
      else if (event.type === 'reconnect') up = true;
    }
  })().catch((err: unknown) => {
    // Without status events only a closed connection is known: report that alone from now on.
    watching = false;
    logger.error({ err }, 'rate-limit store connection watch failed');
  });
  return () => (watching ? up : true) && !nc.isClosed();
}

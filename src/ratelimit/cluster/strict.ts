import type { NatsConnection } from '@nats-io/nats-core';
import { withDeadline } from '../../util/deadline.js';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { StoreError, type StrictLink } from '../tiers/links.js';
import type { Policy } from '../policy.js';
import type { Decision } from '../types.js';
import { GatewayError } from '../../errors.js';
import { StoreBreaker } from './strict-breaker.js';
import {
  BUCKET_RETRY_MS,
  bucketName,
  bucketTtlSeconds,
  decodeState,
  defaultBucketPrefix,
  encodeText,
  isPassingClusterError,
  kvKey,
} from './strict-kv.js';
import type { StrictOptions, StrictStats } from './strict-options.js';
import { CasQueues } from './strict-queue.js';

export {
  BUCKET_RETRY_MS,
  bucketName,
  bucketTtlSeconds,
  defaultBucketPrefix,
  kvKey,
} from './strict-kv.js';
export type { StrictOptions, StrictStats } from './strict-options.js';

/** Internal (code ERR_STORE_TIMEOUT): a store operation ran out of time; becomes a StoreError. */
class TimeoutSignal extends GatewayError {
  override readonly name = 'TimeoutSignal';
  constructor(message?: string) {
    super('ERR_STORE_TIMEOUT', message);
  }
}

/**
 * The `strict` mode: each decision is a compare-and-swap on a JetStream KV entry (get → decide →
 * update at the read revision, or create), retried on conflicts with a little jitter, inside a
 * short store timeout. One bucket per horizon class (history 1, TTL = horizon + 1 s) so stale
 * keys expire in the server. Any failure is a StoreError: the limiter then uses the policy's
 * fallback. The wall clock is shared with other nodes; skew to the server is measured.
 */
export class StrictStore implements StrictLink {
  private readonly kvm: Kvm;
  private readonly buckets = new Map<number, Promise<KV>>();
  private readonly queues: CasQueues;
  private readonly timeoutMs: number;
  private readonly replicas: number;
  private readonly bucketPrefix: string;
  private readonly maxSkewMs: number;
  private readonly bucketRetryMs: number;
  private probeTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Bucket creation failed (no JetStream?): fail fast until then. */
  private brokenUntil = 0;
  /** Opened by consecutive failed operations (a lost quorum, a dead store). */
  private readonly breaker: StoreBreaker;
  /** Receives every key state the store confirmed (RateLimiter.storeState). */
  observed: ((policy: Policy, key: string, state: unknown) => void) | null = null;
  readonly stats: StrictStats = {
    operations: 0,
    casConflicts: 0,
    casExhausted: 0,
    timeouts: 0,
    lateWrites: 0,
    errors: 0,
    circuitOpen: 0,
    breaker: 'closed',
    refunds: 0,
    refundFailures: 0,
    skewMs: null,
  };

  constructor(
    private readonly nc: NatsConnection,
    private readonly connected: () => boolean,
    prefix: string,
    private readonly origin: string,
    private readonly logger: Logger,
    options: StrictOptions = {},
    private readonly wall: () => number = Date.now,
  ) {
    this.timeoutMs = options.timeoutMs ?? 25;
    this.replicas = options.replicas ?? 1;
    this.bucketPrefix = (options.bucketPrefix ?? defaultBucketPrefix(prefix)).replace(
      /[^A-Za-z0-9_-]/g,
      '_',
    );
    this.maxSkewMs = options.maxSkewMs ?? 500;
    this.bucketRetryMs = options.bucketRetryMs ?? BUCKET_RETRY_MS;
    // JetStream calls may outlive our store timeout; they must still end on their own.
    this.kvm = new Kvm(jetstream(nc, { timeout: Math.max(1000, this.timeoutMs * 20) }));
    this.breaker = new StoreBreaker(
      options.breakerFailures ?? 3,
      options.breakerOpenMs ?? 1000,
      this.stats,
      logger,
    );
    this.queues = new CasQueues(
      (policy) => this.bucket(policy),
      this.breaker,
      this.stats,
      logger,
      options.casAttempts ?? 5,
      (policy, key, state) => this.observed?.(policy, key, state),
    );
    const probeMs = options.skewProbeMs ?? 30_000;
    this.probeTimer = setInterval(() => this.probeSkewInBackground(), probeMs);
    this.probeTimer.unref();
  }

  /**
   * Creates the buckets of these policies ahead of the first request, measures the clock skew
   * (again in a second if the store could not answer yet) and warns about servers whose replicated
   * KV does not enforce compare-and-swap.
   */
  async prepare(policies: readonly Policy[]): Promise<void> {
    const strict = policies.filter((policy) => policy.mode === 'strict');
    if (strict.length === 0) return;
    this.checkServer();
    await Promise.all(strict.map((policy) => this.bucket(policy).catch(() => undefined)));
    if ((await this.probeSkew()) === null)
      setTimeout(() => this.probeSkewInBackground(), 1000).unref();
  }

  /** nats-server before 2.9.21 accepts concurrent R3 KV updates at one revision (nats-server#4320). */
  private checkServer(): void {
    const version = this.nc.info?.version;
    if (this.replicas <= 1 || version === undefined) return;
    const [major = 0, minor = 0, patch = 0] = version
      .split(/[.-]/)
      .map((part) => Number.parseInt(part, 10) || 0);
    if (major > 2 || (major === 2 && (minor > 9 || (minor === 9 && patch >= 21)))) return;
    this.logger.error(
      { version, replicas: this.replicas },
      'nats-server < 2.9.21 does not enforce compare-and-swap on replicated KV: strict rate limits can admit more than their limit; upgrade the servers',
    );
  }

  /** Keys with a compare-and-swap queued or running (memory diagnostics; 0 when idle). */
  get pendingKeys(): number {
    return this.queues.size;
  }

  available(): boolean {
    return this.connected() && this.brokenUntil <= this.wall();
  }

  /** The bucket for a policy's horizon class, created on first use. */
  private bucket(policy: Policy): Promise<KV> {
    const ttlSeconds = bucketTtlSeconds(policy.horizonMs);
    let bucket = this.buckets.get(ttlSeconds);
    if (!bucket) {
      const name = bucketName(this.bucketPrefix, ttlSeconds);
      bucket = this.createBucket(name, ttlSeconds);
      this.buckets.set(ttlSeconds, bucket);
      bucket.then(
        () =>
          this.logger.info(
            { bucket: name, ttlSeconds, replicas: this.replicas },
            'rate-limit KV bucket ready',
          ),
        (err: unknown) => {
          this.buckets.delete(ttlSeconds);
          this.brokenUntil = this.wall() + this.bucketRetryMs;
          this.logger.error(
            { bucket: name, err: (err as Error).message },
            'rate-limit KV bucket unavailable (is JetStream enabled?); strict policies use their fallback',
          );
        },
      );
    }
    return bucket;
  }

  /**
   * Creates (or binds to) a bucket, retrying passing cluster errors for up to bucketRetryMs.
   * Requests meanwhile go to the fallback after their own store timeout, as on any slow store.
   * (Real time, not `wall`: this waits for servers, whatever clock the limiter runs on.)
   */
  private async createBucket(name: string, ttlSeconds: number): Promise<KV> {
    const giveUpAt = Date.now() + this.bucketRetryMs;
    for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 1000)) {
      try {
        return await this.kvm.create(name, {
          history: 1,
          ttl: ttlSeconds * 1000,
          replicas: this.replicas,
          description: 'gen-gateway rate limits',
        });
      } catch (err) {
        if (this.closed || !isPassingClusterError(err) || Date.now() + delayMs > giveUpAt)
          throw err;
        this.logger.warn(
          { bucket: name, err: (err as Error).message, retryInMs: delayMs },
          'rate-limit KV bucket not created yet; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      }
    }
  }

  consume(policy: Policy, key: string, at: number, cost: number, out: Decision): Promise<boolean> {
    return this.enqueue(policy, key, 'consume', at, cost, out, this.timeoutMs);
  }

  async refund(policy: Policy, key: string, at: number, cost: number): Promise<void> {
    this.stats.refunds++;
    try {
      await this.enqueue(policy, key, 'refund', at, cost, null, this.timeoutMs * 10);
    } catch (err) {
      this.stats.refundFailures++;
      this.logger.warn(
        { policy: policy.id, err: (err as Error).message },
        'rate-limit refund failed; the hit stays counted',
      );
    }
  }

  /**
   * Queues an operation on a key (strict-queue.ts), unless the store is known to be off: its
   * bucket could not be made, or its breaker is open.
   */
  private enqueue(
    policy: Policy,
    key: string,
    kind: 'consume' | 'refund',
    at: number,
    cost: number,
    out: Decision | null,
    timeoutMs: number,
  ): Promise<boolean> {
    if (this.brokenUntil > this.wall())
      return Promise.reject(new StoreError('rate-limit KV bucket unavailable'));
    if (this.breaker.shortCircuited()) {
      this.stats.circuitOpen++;
      return Promise.reject(new StoreError('rate-limit store breaker open'));
    }
    return this.queues.enqueue(policy, key, kind, at, cost, out, timeoutMs);
  }

  /** A skew probe nobody waits for (probeSkew handles store errors; anything else is logged). */
  private probeSkewInBackground(): void {
    this.probeSkew().catch((err: unknown) =>
      this.logger.warn({ err }, 'rate-limit store clock probe failed'),
    );
  }

  /** A key's state in the store, without changing it (admin status). */
  async peek(policy: Policy, key: string, out: Decision): Promise<void> {
    await this.withTimeout(this.timeoutMs * 10, async () => {
      const kv = await this.bucket(policy);
      this.stats.operations++;
      const entry = await kv.get(kvKey(policy.id, policy.storageKey(key)));
      policy.algorithm.peek(decodeState(policy, entry), this.wall(), policy.cost, out);
    });
  }

  /** Removes a key from the store (admin reset); a StoreError when the store cannot do it now. */
  async reset(policy: Policy, key: string): Promise<void> {
    await this.withTimeout(this.timeoutMs * 10, async () => {
      const kv = await this.bucket(policy);
      this.stats.operations++;
      await kv.purge(kvKey(policy.id, policy.storageKey(key)));
    });
  }

  /** Runs `op` within `ms`; anything failing or late becomes a StoreError. */
  private async withTimeout<T>(ms: number, op: () => Promise<T>): Promise<T> {
    if (this.brokenUntil > this.wall()) throw new StoreError('rate-limit KV bucket unavailable');
    const work = op();
    try {
      return await withDeadline(work, ms, () => {
        throw new TimeoutSignal();
      });
    } catch (err) {
      if (err instanceof StoreError) throw err;
      if (err instanceof TimeoutSignal) {
        this.stats.timeouts++;
        // The late call may still land; its result is ignored (a late write counts a hit: safe side).
        work.catch(() => undefined);
        throw new StoreError(`rate-limit store did not answer within ${ms} ms`);
      }
      this.stats.errors++;
      throw new StoreError(`rate-limit store failed: ${(err as Error).message}`);
    }
  }

  /**
   * Writes a probe key and reads back the server's timestamp: skew ≈ created − midpoint of the
   * call. Decisions use our wall clock, so a skewed node over- or under-admits (§3.3).
   */
  async probeSkew(): Promise<number | null> {
    // Only once strict policies use the store (no bucket is made just for this).
    const bucket = this.buckets.values().next().value;
    if (!bucket || !this.available()) return null;
    try {
      const kv = await bucket;
      const name = `_probe.${this.origin}`;
      const before = this.wall();
      await kv.put(name, encodeText(String(before)));
      const after = this.wall();
      const entry = await kv.get(name);
      if (!entry) return null;
      const skew = Math.round(entry.created.getTime() - (before + after) / 2);
      this.stats.skewMs = skew;
      if (Math.abs(skew) > this.maxSkewMs)
        this.logger.warn(
          { skewMs: skew, maxSkewMs: this.maxSkewMs },
          'clock skew to the rate-limit store is above maxSkewMs',
        );
      return skew;
    } catch {
      return null;
    }
  }

  close(): void {
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }
}

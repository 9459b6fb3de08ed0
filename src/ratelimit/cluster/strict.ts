import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { Logger } from 'pino';
import { StoreError, type StrictTier } from '../limiter.js';
import type { Policy } from '../policy.js';
import type { Decision } from '../types.js';

export interface StrictOptions {
  /** A store call that takes longer fails over to the policy's fallback. Default 25 ms. */
  timeoutMs?: number;
  /** Compare-and-swap attempts before the call counts as a store error. Default 5. */
  casAttempts?: number;
  /** KV replicas (3 in production clusters; 1 for a single server). Default 1. */
  replicas?: number;
  /** Bucket names start with this. Default "<prefix>_rl". */
  bucketPrefix?: string;
  /** Clock skew to a KV server above this is logged and reported. Default 500 ms. */
  maxSkewMs?: number;
  /** How often the skew is measured. Default 30 000 ms. */
  skewProbeMs?: number;
}

export interface StrictStats {
  /** KV operations issued (get, create, update). */
  operations: number;
  casConflicts: number;
  casExhausted: number;
  timeouts: number;
  errors: number;
  refunds: number;
  refundFailures: number;
  /** Last measured wall-clock difference KV server − this node (ms), null before the first probe. */
  skewMs: number | null;
}

/** KV keys allow [-/_=.A-Za-z0-9]: the storage key goes base64url. */
export function kvKey(policyId: string, key: string): string {
  return `${policyId}.${Buffer.from(key).toString('base64url') || '_'}`;
}

/** Buckets are per horizon class: whole seconds of horizon + 1 s, the entries' TTL. */
export function bucketTtlSeconds(horizonMs: number): number {
  return Math.ceil((horizonMs + 1000) / 1000);
}

export function bucketName(bucketPrefix: string, ttlSeconds: number): string {
  return `${bucketPrefix}_${ttlSeconds}s`;
}

/** Bucket names allow [-_A-Za-z0-9]. */
export function defaultBucketPrefix(natsPrefix: string): string {
  return `${natsPrefix}_rl`.replace(/[^A-Za-z0-9_-]/g, '_');
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function isConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

class TimeoutSignal extends Error {}

/**
 * The `strict` mode: each decision is a compare-and-swap on a JetStream KV entry (get → decide →
 * update at the read revision, or create), retried on conflicts with a little jitter, inside a
 * short store timeout. One bucket per horizon class (history 1, TTL = horizon + 1 s) so stale
 * keys expire in the server. Any failure is a StoreError: the limiter then uses the policy's
 * fallback. The wall clock is shared with other nodes; skew to the server is measured.
 */
export class StrictStore implements StrictTier {
  private readonly kvm: Kvm;
  private readonly buckets = new Map<number, Promise<KV>>();
  private readonly timeoutMs: number;
  private readonly casAttempts: number;
  private readonly replicas: number;
  private readonly bucketPrefix: string;
  private readonly maxSkewMs: number;
  private probeTimer: NodeJS.Timeout | null = null;
  /** Bucket creation failed (no JetStream?): fail fast until then. */
  private brokenUntil = 0;
  readonly stats: StrictStats = { operations: 0, casConflicts: 0, casExhausted: 0, timeouts: 0, errors: 0, refunds: 0, refundFailures: 0, skewMs: null };

  constructor(
    nc: NatsConnection,
    private readonly connected: () => boolean,
    prefix: string,
    private readonly origin: string,
    private readonly logger: Logger,
    options: StrictOptions = {},
    private readonly wall: () => number = Date.now,
  ) {
    this.timeoutMs = options.timeoutMs ?? 25;
    this.casAttempts = options.casAttempts ?? 5;
    this.replicas = options.replicas ?? 1;
    this.bucketPrefix = (options.bucketPrefix ?? defaultBucketPrefix(prefix)).replace(/[^A-Za-z0-9_-]/g, '_');
    this.maxSkewMs = options.maxSkewMs ?? 500;
    // JetStream calls may outlive our store timeout; they must still end on their own.
    this.kvm = new Kvm(jetstream(nc, { timeout: Math.max(1000, this.timeoutMs * 20) }));
    const probeMs = options.skewProbeMs ?? 30_000;
    this.probeTimer = setInterval(() => void this.probeSkew(), probeMs);
    this.probeTimer.unref();
  }

  /** Creates the buckets of these policies ahead of the first request. */
  async prepare(policies: readonly Policy[]): Promise<void> {
    await Promise.all(policies.filter((policy) => policy.mode === 'strict').map((policy) => this.bucket(policy).catch(() => undefined)));
    await this.probeSkew();
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
      bucket = this.kvm.create(name, { history: 1, ttl: ttlSeconds * 1000, replicas: this.replicas, description: 'gen-gateway rate limits' });
      this.buckets.set(ttlSeconds, bucket);
      bucket.then(
        () => this.logger.info({ bucket: name, ttlSeconds, replicas: this.replicas }, 'rate-limit KV bucket ready'),
        (err: unknown) => {
          this.buckets.delete(ttlSeconds);
          this.brokenUntil = this.wall() + 5000;
          this.logger.error({ bucket: name, err: (err as Error).message }, 'rate-limit KV bucket unavailable (is JetStream enabled?); strict policies use their fallback');
        },
      );
    }
    return bucket;
  }

  consume(policy: Policy, key: string, at: number, cost: number, out: Decision): Promise<boolean> {
    return this.withTimeout(this.timeoutMs, () =>
      this.swap(policy, key, (state) => {
        policy.algorithm.peek(state, at, cost, out);
        if (!out.allowed) return false;
        policy.algorithm.commit(state, at, cost);
        return true;
      }),
    );
  }

  async refund(policy: Policy, key: string, at: number, cost: number): Promise<void> {
    this.stats.refunds++;
    try {
      await this.withTimeout(this.timeoutMs * 10, () =>
        this.swap(policy, key, (state) => {
          policy.algorithm.refund(state, at, cost);
          return true;
        }),
      );
    } catch (err) {
      this.stats.refundFailures++;
      this.logger.warn({ policy: policy.id, err: (err as Error).message }, 'rate-limit refund failed; the hit stays counted');
    }
  }

  /** A key's state in the store, without changing it (admin status). */
  async peek(policy: Policy, key: string, out: Decision): Promise<void> {
    await this.withTimeout(this.timeoutMs * 10, async () => {
      const kv = await this.bucket(policy);
      this.stats.operations++;
      const entry = await kv.get(kvKey(policy.id, key));
      policy.algorithm.peek(this.stateOf(policy, entry), this.wall(), policy.cost, out);
    });
  }

  /** Removes a key from the store (admin reset). */
  async reset(policy: Policy, key: string): Promise<void> {
    const kv = await this.bucket(policy);
    this.stats.operations++;
    await kv.purge(kvKey(policy.id, key));
  }

  private stateOf(policy: Policy, entry: KvEntry | null): unknown {
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return policy.algorithm.create();
    try {
      return policy.algorithm.decode(JSON.parse(decoder.decode(entry.value))) ?? policy.algorithm.create();
    } catch {
      return policy.algorithm.create();
    }
  }

  /**
   * get → mutate → write at the read revision; a conflict (someone wrote in between) retries
   * with a fresh read. `mutate` returning false means nothing to write (a denial).
   */
  private async swap(policy: Policy, key: string, mutate: (state: unknown) => boolean): Promise<boolean> {
    const kv = await this.bucket(policy);
    const name = kvKey(policy.id, key);
    for (let attempt = 1; attempt <= this.casAttempts; attempt++) {
      this.stats.operations++;
      const entry = await kv.get(name);
      const state = this.stateOf(policy, entry);
      if (!mutate(state)) return false;
      const value = encoder.encode(JSON.stringify(policy.algorithm.encode(state)));
      try {
        this.stats.operations++;
        if (entry === null) await kv.create(name, value);
        else await kv.update(name, value, entry.revision);
        return true;
      } catch (err) {
        if (!isConflict(err)) throw err;
        this.stats.casConflicts++;
        // A little jitter spreads contenders out (redis-cell does the same).
        await new Promise((resolve) => setTimeout(resolve, Math.random() * attempt));
      }
    }
    this.stats.casExhausted++;
    throw new StoreError(`compare-and-swap on ${name} lost ${this.casAttempts} times`);
  }

  /** Runs `op` within `ms`; anything failing or late becomes a StoreError. */
  private async withTimeout<T>(ms: number, op: () => Promise<T>): Promise<T> {
    if (this.brokenUntil > this.wall()) throw new StoreError('rate-limit KV bucket unavailable');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutSignal()), ms);
    });
    const work = op();
    try {
      return await Promise.race([work, deadline]);
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
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Writes a probe key and reads back the server's timestamp: skew ≈ created − midpoint of the
   * call. Decisions use our wall clock, so a skewed node over- or under-admits (§3.3).
   */
  async probeSkew(): Promise<number | null> {
    if (!this.available()) return null;
    try {
      const kv = await this.bucketForProbe();
      const name = `_probe.${this.origin}`;
      const before = this.wall();
      await kv.put(name, encoder.encode(String(before)));
      const after = this.wall();
      const entry = await kv.get(name);
      if (!entry) return null;
      const skew = Math.round(entry.created.getTime() - (before + after) / 2);
      this.stats.skewMs = skew;
      if (Math.abs(skew) > this.maxSkewMs) this.logger.warn({ skewMs: skew, maxSkewMs: this.maxSkewMs }, 'clock skew to the rate-limit store is above maxSkewMs');
      return skew;
    } catch {
      return null;
    }
  }

  private bucketForProbe(): Promise<KV> {
    const first = this.buckets.values().next().value;
    return first ?? this.kvm.create(`${this.bucketPrefix}_probe`, { history: 1, ttl: 3_600_000, replicas: this.replicas });
  }

  close(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }
}

import type { NatsConnection } from '@nats-io/nats-core';
import { withDeadline } from '../../util/deadline.js';
import { jetstream, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import {
  BrokenCircuitError,
  CircuitState,
  circuitBreaker,
  ConsecutiveBreaker,
  handleAll,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import { StoreError, type StrictLink } from '../tiers/links.js';
import type { Policy } from '../policy.js';
import type { Decision } from '../types.js';
import { GatewayError } from '../../errors.js';

/**
 * Strict mode: the JetStream KV store's timeout, CAS attempts, breaker and replicas
 * (`RateLimitsOptions.strict`).
 */
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
  /**
   * Consecutive failed store operations (errors and JetStream timeouts; compare-and-swap
   * conflicts and our own decision deadline do not count) that open the store's breaker: strict
   * decisions then go to the fallback at once instead of waiting `timeoutMs` each. 0 turns the
   * breaker off. Default 3.
   */
  breakerFailures?: number;
  /** How long an open breaker skips the store before one trial decision. Default 1000 ms. */
  breakerOpenMs?: number;
  /**
   * How long creating a bucket retries passing cluster errors ("no suitable peers for
   * placement" while a replica's server restarts), and how long the store then stays off after
   * a creation that failed. Default 5000 ms (`BUCKET_RETRY_MS`).
   */
  bucketRetryMs?: number;
}

/** Counters of the strict tier: KV operations, CAS conflicts, timeouts, errors, the breaker. */
export interface StrictStats {
  /** KV operations issued (get, create, update). */
  operations: number;
  casConflicts: number;
  casExhausted: number;
  timeouts: number;
  /** Hits written after their request had timed out (and been decided by the fallback). */
  lateWrites: number;
  errors: number;
  /** Operations sent to the fallback at once because the store's breaker was open. */
  circuitOpen: number;
  /** The breaker: "closed" (store in use), "open" (skipped) or "half_open" (one trial in flight). */
  breaker: 'closed' | 'open' | 'half_open';
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
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/**
 * JetStream cluster conditions that pass on their own: "no suitable peers for placement" (a
 * replica's server restarting or not yet seen by the meta leader) and "JetStream system
 * temporarily unavailable" (a meta leader being elected). Common when gateways and their NATS
 * cluster start together.
 */
const PASSING_CLUSTER_CODES: ReadonlySet<number> = new Set([10005, 10008]);

function isPassingClusterError(err: unknown): boolean {
  return err instanceof JetStreamApiError && PASSING_CLUSTER_CODES.has(err.code);
}

/**
 * Default of `StrictOptions.bucketRetryMs`: how long creating a bucket retries passing cluster
 * errors (backoff 100 ms doubling to 1 s), and how long after a failed creation the store stays
 * off (strict policies use their fallback).
 */
export const BUCKET_RETRY_MS = 5_000;

/** Internal (code ERR_STORE_TIMEOUT): a store operation ran out of time; becomes a StoreError. */
class TimeoutSignal extends GatewayError {
  override readonly name = 'TimeoutSignal';
  constructor(message?: string) {
    super('ERR_STORE_TIMEOUT', message);
  }
}

const BREAKER_STATES: Record<CircuitState, StrictStats['breaker']> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'open',
};

/** Longest wait between compare-and-swap attempts (ms). */
const CAS_BACKOFF_CAP_MS = 8;

/** A consume or refund waiting for its key's next compare-and-swap. */
interface Op {
  readonly kind: 'consume' | 'refund';
  readonly at: number;
  readonly cost: number;
  /** consume: where the decision goes. */
  readonly out: Decision | null;
  /** Answered (decided, failed or timed out): later attempts leave it out. */
  settled: boolean;
  resolve(allowed: boolean): void;
  reject(err: Error): void;
}

interface KeyQueue {
  readonly policy: Policy;
  /** The key value (as the limiter knows it) and its KV key. */
  readonly key: string;
  readonly name: string;
  ops: Op[];
  running: boolean;
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
  private readonly queues = new Map<string, KeyQueue>();
  private readonly timeoutMs: number;
  private readonly casAttempts: number;
  private readonly replicas: number;
  private readonly bucketPrefix: string;
  private readonly maxSkewMs: number;
  private readonly bucketRetryMs: number;
  private probeTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Bucket creation failed (no JetStream?): fail fast until then. */
  private brokenUntil = 0;
  /** Opened by consecutive failed operations (a lost quorum, a dead store); null when turned off. */
  private readonly breaker: CircuitBreakerPolicy | null;
  /** When an open breaker lets its trial through (real time, as cockatiel counts it). */
  private breakerTrialAt = 0;
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
    this.casAttempts = options.casAttempts ?? 5;
    this.replicas = options.replicas ?? 1;
    this.bucketPrefix = (options.bucketPrefix ?? defaultBucketPrefix(prefix)).replace(
      /[^A-Za-z0-9_-]/g,
      '_',
    );
    this.maxSkewMs = options.maxSkewMs ?? 500;
    this.bucketRetryMs = options.bucketRetryMs ?? BUCKET_RETRY_MS;
    // JetStream calls may outlive our store timeout; they must still end on their own.
    this.kvm = new Kvm(jetstream(nc, { timeout: Math.max(1000, this.timeoutMs * 20) }));
    this.breaker = this.createBreaker(options.breakerFailures ?? 3, options.breakerOpenMs ?? 1000);
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

  /**
   * A consecutive-failure breaker around the store's operations (cockatiel). What it counts is an
   * operation's own outcome, which may come long after its decision went to the fallback: a
   * loaded machine that misses the 25 ms deadline while the store still answers never opens it;
   * a lost quorum or a dead store, whose operations fail, does.
   */
  private createBreaker(failures: number, openMs: number): CircuitBreakerPolicy | null {
    if (failures <= 0) return null;
    const breaker = circuitBreaker(handleAll, {
      halfOpenAfter: openMs,
      breaker: new ConsecutiveBreaker(failures),
    });
    breaker.onStateChange((state) => (this.stats.breaker = BREAKER_STATES[state]));
    breaker.onBreak(() => {
      this.breakerTrialAt = Date.now() + openMs;
      this.logger.warn(
        { failures, openMs },
        'rate-limit store failing: breaker open, strict policies use their fallback at once',
      );
    });
    breaker.onReset(() => this.logger.info('rate-limit store answering again: breaker closed'));
    return breaker;
  }

  /** The breaker is open and not yet due for its trial, or its trial is in flight: skip the store. */
  private shortCircuited(): boolean {
    const state = this.breaker?.state;
    return (
      state === CircuitState.HalfOpen ||
      (state === CircuitState.Open && Date.now() < this.breakerTrialAt)
    );
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
   * Queues an operation on a key. A node runs one compare-and-swap per key at a time, and the
   * operations that queued meanwhile go into the next one together: a hot key costs this node one
   * read and one write per round trip, however many requests wait, and the node's own requests
   * never conflict with each other.
   */
  private enqueue(
    policy: Policy,
    key: string,
    kind: Op['kind'],
    at: number,
    cost: number,
    out: Decision | null,
    timeoutMs: number,
  ): Promise<boolean> {
    if (this.brokenUntil > this.wall())
      return Promise.reject(new StoreError('rate-limit KV bucket unavailable'));
    if (this.shortCircuited()) {
      this.stats.circuitOpen++;
      return Promise.reject(new StoreError('rate-limit store breaker open'));
    }
    return new Promise<boolean>((resolve, reject) => {
      const op: Op = {
        kind,
        at,
        cost,
        out,
        settled: false,
        resolve: (allowed) => {
          if (op.settled) return;
          op.settled = true;
          clearTimeout(timer);
          resolve(allowed);
        },
        reject: (err) => {
          if (op.settled) return;
          op.settled = true;
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        if (op.settled) return;
        this.stats.timeouts++;
        op.reject(new StoreError(`rate-limit store did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const name = kvKey(policy.id, policy.storageKey(key));
      let queue = this.queues.get(name);
      if (!queue) {
        queue = { policy, key, name, ops: [], running: false };
        this.queues.set(name, queue);
      }
      queue.ops.push(op);
      if (!queue.running) {
        // Start after the current I/O phase: requests that arrived together (a burst of frames)
        // share the first compare-and-swap instead of queueing behind a swap of one.
        queue.running = true;
        setImmediate(() => this.startDrain(queue));
      }
    });
  }

  private async drain(queue: KeyQueue): Promise<void> {
    queue.running = true;
    try {
      while (queue.ops.length > 0) {
        const batch = queue.ops;
        queue.ops = [];
        await this.swap(queue.policy, queue.key, queue.name, batch);
      }
    } finally {
      queue.running = false;
      if (queue.ops.length === 0) this.queues.delete(queue.name);
      else this.startDrain(queue);
    }
  }

  /**
   * Runs a key's queue nobody waits for. swap() settles its operations itself, and each one also
   * has its own timeout, so a rejection here is a defect: it is logged, and the waiting callers
   * still get their StoreError from that timeout.
   */
  private startDrain(queue: KeyQueue): void {
    this.drain(queue).catch((err: unknown) =>
      this.logger.error({ err, key: queue.name }, 'rate-limit store queue failed'),
    );
  }

  /** A skew probe nobody waits for (probeSkew handles store errors; anything else is logged). */
  private probeSkewInBackground(): void {
    this.probeSkew().catch((err: unknown) =>
      this.logger.warn({ err }, 'rate-limit store clock probe failed'),
    );
  }

  /**
   * One compare-and-swap for a batch: read the state, apply the waiting operations in arrival
   * order (consumes peek then commit; refunds take a hit back), write at the read revision (or
   * create). A conflict (another node wrote in between) re-reads and re-decides; operations that
   * timed out meanwhile drop out. Nothing to write (all denied) ends it without a write.
   */
  private async swap(policy: Policy, key: string, name: string, batch: Op[]): Promise<void> {
    let kv: KV;
    try {
      kv = await this.bucket(policy);
    } catch (err) {
      this.fail(batch, err);
      return;
    }
    const attempt = () => this.attempt(policy, key, name, batch, kv);
    for (let n = 1; n <= this.casAttempts; n++) {
      if (batch.every((op) => op.settled)) return;
      // Opened meanwhile (other keys' operations failed), or another operation is the trial.
      if (this.shortCircuited()) {
        this.shortCircuit(batch);
        return;
      }
      let outcome: 'done' | 'conflict';
      try {
        outcome = this.breaker ? await this.breaker.execute(attempt) : await attempt();
      } catch (err) {
        if (err instanceof BrokenCircuitError) this.shortCircuit(batch);
        else this.fail(batch, err);
        return;
      }
      if (outcome === 'done') return;
      this.stats.casConflicts++;
      // Full-jitter exponential backoff (1, 2, 4, 8 ms at most…): contenders spread out instead
      // of colliding again, and the loser retries while its requests still have time.
      await new Promise((resolve) =>
        setTimeout(resolve, Math.random() * Math.min(CAS_BACKOFF_CAP_MS, 2 ** (n - 1))),
      );
    }
    this.stats.casExhausted++;
    this.fail(batch, new StoreError(`compare-and-swap on ${name} lost ${this.casAttempts} times`));
  }

  /**
   * One read → decide → write. A conflict (another node wrote in between) is an outcome, not a
   * failure: the store answered. Anything else thrown is a failed operation (the breaker counts it).
   */
  private async attempt(
    policy: Policy,
    key: string,
    name: string,
    batch: readonly Op[],
    kv: KV,
  ): Promise<'done' | 'conflict'> {
    try {
      this.stats.operations++;
      const entry = await kv.get(name);
      const ops = batch.filter((op) => !op.settled);
      const state = this.stateOf(policy, entry);
      const verdicts: boolean[] = [];
      let changed = false;
      for (const op of ops) {
        if (op.kind === 'refund') {
          policy.algorithm.refund(state, op.at, op.cost);
          verdicts.push(true);
          changed = true;
          continue;
        }
        const out = op.out!;
        policy.algorithm.peek(state, op.at, op.cost, out);
        verdicts.push(out.allowed);
        if (out.allowed) {
          policy.algorithm.commit(state, op.at, op.cost);
          changed = true;
        }
      }
      if (changed) {
        const value = encoder.encode(JSON.stringify(policy.algorithm.encode(state)));
        this.stats.operations++;
        if (entry === null) await kv.create(name, value);
        else await kv.update(name, value, entry.revision);
      }
      // The store's state as of now (written, or read when all were denied): even requests that
      // timed out meanwhile teach the limiter what the store holds (its fallback uses it).
      this.observed?.(policy, key, state);
      ops.forEach((op, index) => {
        // Timed out while the write was in flight: its hit is stored anyway (the safe side).
        if (op.settled && verdicts[index] && op.kind === 'consume') this.stats.lateWrites++;
        op.resolve(verdicts[index]!);
      });
      return 'done';
    } catch (err) {
      if (isConflict(err)) return 'conflict';
      throw err;
    }
  }

  /** The breaker is open: the batch's waiting operations go to the fallback now. */
  private shortCircuit(batch: readonly Op[]): void {
    const error = new StoreError('rate-limit store breaker open');
    for (const op of batch) {
      if (op.settled) continue;
      this.stats.circuitOpen++;
      op.reject(error);
    }
  }

  private fail(batch: readonly Op[], err: unknown): void {
    const error =
      err instanceof StoreError
        ? err
        : new StoreError(`rate-limit store failed: ${(err as Error).message}`);
    if (!(err instanceof StoreError)) this.stats.errors++;
    for (const op of batch) op.reject(error);
  }

  /** A key's state in the store, without changing it (admin status). */
  async peek(policy: Policy, key: string, out: Decision): Promise<void> {
    await this.withTimeout(this.timeoutMs * 10, async () => {
      const kv = await this.bucket(policy);
      this.stats.operations++;
      const entry = await kv.get(kvKey(policy.id, policy.storageKey(key)));
      policy.algorithm.peek(this.stateOf(policy, entry), this.wall(), policy.cost, out);
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

  private stateOf(policy: Policy, entry: KvEntry | null): unknown {
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0)
      return policy.algorithm.create();
    try {
      return (
        policy.algorithm.decode(JSON.parse(decoder.decode(entry.value))) ??
        policy.algorithm.create()
      );
    } catch {
      return policy.algorithm.create();
    }
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
      await kv.put(name, encoder.encode(String(before)));
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

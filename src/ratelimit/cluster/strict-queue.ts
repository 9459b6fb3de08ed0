import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { Policy } from '../policy.js';
import { StoreError } from '../tiers/links.js';
import type { Decision } from '../types.js';
import { isBreakerOpen, type StoreBreaker } from './strict-breaker.js';
import { decodeState, encodeState, isConflict, kvKey } from './strict-kv.js';
import type { StrictStats } from './strict-options.js';

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
 * The strict store's compare-and-swap queues, one per key in use. A node runs one
 * compare-and-swap per key at a time, and the operations that queued meanwhile go into the next
 * one together: a hot key costs this node one read and one write per round trip, however many
 * requests wait, and the node's own requests never conflict with each other.
 */
export class CasQueues {
  private readonly queues = new Map<string, KeyQueue>();

  constructor(
    /** The bucket of a policy (created on first use). */
    private readonly bucket: (policy: Policy) => Promise<KV>,
    private readonly breaker: StoreBreaker,
    private readonly stats: StrictStats,
    private readonly logger: Logger,
    /** Compare-and-swap attempts before the batch fails with a StoreError. */
    private readonly casAttempts: number,
    /** Receives every key state the store confirmed (written, or read when all were denied). */
    private readonly observed: (policy: Policy, key: string, state: unknown) => void,
  ) {}

  /** Keys with a compare-and-swap queued or running (memory diagnostics; 0 when idle). */
  get size(): number {
    return this.queues.size;
  }

  /** Queues an operation on a key; it settles with its verdict, a StoreError, or at `timeoutMs`. */
  enqueue(
    policy: Policy,
    key: string,
    kind: Op['kind'],
    at: number,
    cost: number,
    out: Decision | null,
    timeoutMs: number,
  ): Promise<boolean> {
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
      if (this.breaker.shortCircuited()) {
        this.shortCircuit(batch);
        return;
      }
      let outcome: 'done' | 'conflict';
      try {
        outcome = await this.breaker.execute(attempt);
      } catch (err) {
        if (isBreakerOpen(err)) this.shortCircuit(batch);
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
      const state = decodeState(policy, entry);
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
        const value = encodeState(policy, state);
        this.stats.operations++;
        if (entry === null) await kv.create(name, value);
        else await kv.update(name, value, entry.revision);
      }
      // The store's state as of now (written, or read when all were denied): even requests that
      // timed out meanwhile teach the limiter what the store holds (its fallback uses it).
      this.observed(policy, key, state);
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
}

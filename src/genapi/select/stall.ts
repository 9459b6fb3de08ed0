/**
 * Outlier ejection for frozen and saturated instances: an instance that has held a call for
 * `stallAfterMs` without answering anything in that time is tried after the others. Discovery
 * takes a frozen instance out only after its TTL (2.5 s by default), and its breaker only after
 * `instanceFailures` calls timed out; meanwhile every call sent there waits, so with closed-loop
 * clients the whole load soon sits on the frozen instance. This catches it within `stallAfterMs`.
 *
 * It only reorders: a stalled instance is still tried when every instance before it fails fast,
 * and its calls in flight keep waiting for their answer or timeout (nothing is failed or retried
 * here). It clears itself as soon as the instance answers anything.
 */
import type { ServiceInstance } from '../types.js';

/** Calls one instance holds now, by call number, oldest first (Map keeps insertion order). */
interface InstanceCalls {
  readonly started: Map<number, number>;
  /** When the instance last answered anything (success, the function's error, 503, 404). */
  lastAnswerAt: number;
}

export const DEFAULT_STALL_AFTER_MS = 1_000;

export class StallDetector {
  private readonly instances = new Map<string, InstanceCalls>();
  private nextCall = 0;

  /**
   * @param stallAfterMs an instance holding a call this long with no answer in that time is
   *   stalled; 0 turns the detector off.
   * @param now clock in ms (injected for tests).
   */
  constructor(
    private readonly stallAfterMs: number,
    private readonly now: () => number,
  ) {}

  /** A call goes to `instanceId`; returns its number for `end`. */
  begin(instanceId: string): number {
    if (this.stallAfterMs <= 0) return 0;
    let calls = this.instances.get(instanceId);
    if (!calls) {
      calls = { started: new Map(), lastAnswerAt: this.now() };
      this.instances.set(instanceId, calls);
    }
    const call = ++this.nextCall;
    calls.started.set(call, this.now());
    return call;
  }

  /** The call ended; `answered` when the instance itself answered it. */
  end(instanceId: string, call: number, answered: boolean): void {
    const calls = this.instances.get(instanceId);
    if (!calls) return;
    calls.started.delete(call);
    if (answered) calls.lastAnswerAt = this.now();
    // An idle instance that answered last keeps nothing worth remembering.
    if (calls.started.size === 0 && answered) this.instances.delete(instanceId);
  }

  /** Whether the instance holds a call older than stallAfterMs and answered nothing since then. */
  stalled(instanceId: string): boolean {
    const calls = this.instances.get(instanceId);
    if (!calls || calls.started.size === 0) return false;
    const limit = this.now() - this.stallAfterMs;
    if (calls.lastAnswerAt > limit) return false;
    const oldest = calls.started.values().next().value as number;
    return oldest <= limit;
  }

  /** `order` with the stalled instances moved to the end (each group in its order). */
  reorder(order: ServiceInstance[]): ServiceInstance[] {
    if (this.instances.size === 0 || order.length < 2) return order;
    let stalled: ServiceInstance[] | null = null;
    for (const instance of order) if (this.stalled(instance.id)) (stalled ??= []).push(instance);
    if (stalled === null || stalled.length === order.length) return order;
    const moved = new Set(stalled);
    return [...order.filter((instance) => !moved.has(instance)), ...stalled];
  }

  /** Forgets a gone instance (its late calls' `end` is then a no-op). */
  forget(instanceId: string): void {
    this.instances.delete(instanceId);
  }

  /** Instances tracked now (for leak checks). */
  get size(): number {
    return this.instances.size;
  }

  /** Instances stalled now, for health reports. */
  stalledInstances(): string[] {
    return [...this.instances.keys()].filter((id) => this.stalled(id));
  }
}

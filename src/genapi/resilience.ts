import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  handleWhen,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { CallOutcome, TransportFailure } from '../bus/types.js';
import { GatewayError, OutOfRangeError } from '../errors.js';
import { DEFAULT_STALL_AFTER_MS, StallDetector } from './select/stall.js';

export { BrokenCircuitError, BulkheadRejectedError };

/** A transport failure thrown through a breaker so it counts (business errors do not). */
export class TransportFailureError extends GatewayError {
  override readonly name = 'TransportFailureError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_TRANSPORT', message, options);
  }
}

/** Bulkheads and circuit breakers of gen_api calls (`GenApiOptions.resilience`). */
export interface ResilienceOptions {
  /** Calls one service may run at once. Default 1000. */
  maxConcurrent: number;
  /** Calls waiting for a slot beyond that; more are refused ("Service temporarily unavailable"). Default 10 000. */
  maxQueued: number;
  /** Consecutive transport failures that open an instance's breaker. Default 5. */
  instanceFailures: number;
  /**
   * Consecutive failed requests (after retries) that open a service's breaker. Default 10. A
   * failure counts only when no other instance of the service is healthy (known to discovery,
   * breaker closed): one sick instance is the instance breaker's and discovery's business, and
   * must not make the gateway refuse a service another instance still serves.
   */
  serviceFailures: number;
  /** How long an open breaker stays open before one trial call. Default 10 000 ms. */
  halfOpenAfterMs: number;
  /**
   * An instance that has held a call this long without answering anything in that time (frozen,
   * saturated) is tried after the others until it answers again; its calls keep waiting. Default
   * 1000 ms; 0 turns it off.
   */
  stallAfterMs: number;
}

/** The defaults of `ResilienceOptions`. */
export const RESILIENCE_DEFAULTS: ResilienceOptions = {
  maxConcurrent: 1000,
  maxQueued: 10_000,
  instanceFailures: 5,
  serviceFailures: 10,
  halfOpenAfterMs: 10_000,
  stallAfterMs: DEFAULT_STALL_AFTER_MS,
};

/**
 * The failures breakers count: the call used up its time (timeout) or its instance died under
 * it. Fast failures where nothing ran (no responders, 503/404, an open instance breaker) already
 * fail fast, so a breaker gains nothing from them, and counting them would keep a service
 * unavailable after it is back (workers resubscribing after a NATS restart answer "no
 * responders" for a moment). The gateway's own NATS outage (disconnected) and a client that left
 * (cancelled) say nothing about the service.
 */
const BREAKER_FAILURES = new Set<TransportFailure>(['timeout', 'instance_lost']);

/** Whether a call's outcome counts toward breakers (instance and service). */
export function countsForBreakers(outcome: CallOutcome): boolean {
  return !outcome.ok && outcome.kind === 'transport' && BREAKER_FAILURES.has(outcome.reason);
}

/** Whether the instance itself answered: a result, the function's error, or its 503/404. */
export function answeredByInstance(outcome: CallOutcome): boolean {
  return outcome.ok || outcome.kind === 'business' || outcome.reason === 'unavailable';
}

const countsTransport = handleWhen((err) => err instanceof TransportFailureError);

/**
 * Per-service bulkheads and circuit breakers, and per-instance breakers (cockatiel). An open
 * instance breaker takes the instance out of the fallback order until its half-open trial; an
 * open service breaker fails requests fast with `can_retry`.
 */
export class Resilience {
  private readonly bulkheads = new Map<string, BulkheadPolicy>();
  private readonly serviceBreakers = new Map<string, CircuitBreakerPolicy>();
  private readonly instanceBreakers = new Map<string, CircuitBreakerPolicy>();
  /** By service: the instances known at its last counted failure (all of them sick or absent). */
  private readonly sickInstances = new Map<string, Set<string>>();

  /** Instances holding calls they do not answer (outlier ejection, `stallAfterMs`). */
  readonly stalls: StallDetector;

  constructor(
    readonly options: ResilienceOptions = RESILIENCE_DEFAULTS,
    now: () => number = performance.now.bind(performance),
  ) {
    const stall = options.stallAfterMs;
    if (typeof stall !== 'number' || !Number.isFinite(stall) || stall < 0)
      throw new OutOfRangeError(
        `resilience.stallAfterMs must be a finite number ≥ 0 (0 = off), got ${String(stall)}`,
      );
    this.stalls = new StallDetector(stall, now);
  }

  bulkhead(service: string): BulkheadPolicy {
    let policy = this.bulkheads.get(service);
    if (!policy) {
      policy = bulkhead(this.options.maxConcurrent, this.options.maxQueued);
      this.bulkheads.set(service, policy);
    }
    return policy;
  }

  service(service: string): CircuitBreakerPolicy {
    let policy = this.serviceBreakers.get(service);
    if (!policy) {
      policy = circuitBreaker(countsTransport, {
        halfOpenAfter: this.options.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.options.serviceFailures),
      });
      this.serviceBreakers.set(service, policy);
    }
    return policy;
  }

  instance(instanceId: string): CircuitBreakerPolicy {
    let policy = this.instanceBreakers.get(instanceId);
    if (!policy) {
      policy = circuitBreaker(countsTransport, {
        halfOpenAfter: this.options.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.options.instanceFailures),
      });
      this.instanceBreakers.set(instanceId, policy);
    }
    return policy;
  }

  /**
   * Whether a request's breaker failure (after its retries) counts toward its service's breaker:
   * only with no other healthy instance left. While another instance is known to discovery with a
   * closed breaker, the failure is the failed instance's alone: its own breaker and discovery take
   * it out of rotation, and the service keeps answering from the others. A counted failure is
   * noted with the instances known then (`noteServiceFailure`).
   */
  countsForService(
    service: string,
    known: readonly { readonly id: string }[],
    failed: string | null,
  ): boolean {
    if (failed !== null)
      for (const instance of known)
        if (instance.id !== failed && this.instanceHealthy(instance.id)) return false;
    this.noteServiceFailure(service, known);
    return true;
  }

  /**
   * A failure counted toward the service's breaker, with the instances known then (none of them
   * healthy): an instance outside that set that is healthy later means the service is back.
   */
  noteServiceFailure(service: string, known: readonly { readonly id: string }[]): void {
    this.sickInstances.set(service, new Set(known.map((instance) => instance.id)));
  }

  /**
   * Closes an open service breaker at once when a healthy instance is there that was not
   * sick when it opened (a worker started, or one discovery had dropped came back): the breaker
   * opened because no healthy instance remained, and waiting `halfOpenAfterMs` now would refuse
   * a service that can answer.
   */
  reviveService(service: string, known: readonly { readonly id: string }[]): void {
    const policy = this.serviceBreakers.get(service);
    if (policy === undefined || policy.state !== CircuitState.Open) return;
    const sick = this.sickInstances.get(service);
    for (const instance of known) {
      if (sick?.has(instance.id) || !this.instanceHealthy(instance.id)) continue;
      this.serviceBreakers.delete(service);
      this.sickInstances.delete(service);
      return;
    }
  }

  /** Whether the instance may take calls: its breaker is closed (or it has none yet). */
  instanceHealthy(instanceId: string): boolean {
    const policy = this.instanceBreakers.get(instanceId);
    return policy === undefined || policy.state === CircuitState.Closed;
  }

  /** Forgets a gone instance's breaker (instances come and go; this map must not grow). */
  forgetInstance(instanceId: string): void {
    this.instanceBreakers.delete(instanceId);
    this.stalls.forget(instanceId);
    // Gone from discovery: if it comes back, it comes back as a new, healthy instance.
    for (const sick of this.sickInstances.values()) sick.delete(instanceId);
  }

  /**
   * Breaker states for health reports: `closed`, `open`, `half_open`; an instance whose breaker is
   * closed but which is stalled (`stallAfterMs`) reports `stalled`.
   */
  snapshot(): { services: Record<string, string>; instances: Record<string, string> } {
    const name = (state: number) => ['closed', 'open', 'half_open', 'isolated'][state] ?? 'unknown';
    const services: Record<string, string> = {};
    for (const [key, policy] of this.serviceBreakers) services[key] = name(policy.state);
    const instances: Record<string, string> = {};
    for (const [key, policy] of this.instanceBreakers) {
      const state = name(policy.state);
      // A closed breaker on an instance that holds calls it does not answer: say so.
      instances[key] = state === 'closed' && this.stalls.stalled(key) ? 'stalled' : state;
    }
    return { services, instances };
  }
}

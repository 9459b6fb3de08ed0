/**
 * How one request reaches its function: the instance order, fallback to the next instance on
 * fast failures, retries with backoff, per-instance and per-service circuit breakers, and the
 * service's bulkhead. The breakers' and bulkheads' state lives in Resilience; this module decides
 * what to run through them and what counts.
 */
import type { BulkheadPolicy } from 'cockatiel';
import type { Logger } from 'pino';
import {
  transportFailure,
  type CallOutcome,
  type ServiceBus,
  type StreamSink,
  type StreamStart,
  type TransportFailure,
} from '../../bus/types.js';
import { traceLogFields } from '../../nats/trace-otel.js';
import { sleep } from '../../util/sleep.js';
import type { Dispatch } from './types.js';
import {
  answeredByInstance,
  BrokenCircuitError,
  BulkheadRejectedError,
  countsForBreakers,
  TransportFailureError,
  type Resilience,
} from '../resilience.js';
import { backoffMs } from '../select/backoff.js';
import type { NodeSelector } from '../select/node-selector.js';
import type { GenApiRequest, ResolvedFunConfig, ServiceInstance } from '../types.js';

/** Failures where nothing ran: the next instance is tried at once. */
const FAST_FAILURES = new Set<TransportFailure>(['no_responders', 'unavailable']);

const outcomeOfCall = (outcome: CallOutcome): CallOutcome => outcome;
const unreachedCall = (outcome: CallOutcome): CallOutcome => outcome;
const outcomeOfStart = (start: StreamStart): CallOutcome => start.outcome;
const unreachedStart = (outcome: CallOutcome): StreamStart => ({ outcome, control: null });

/**
 * Starts work behind a bulkhead or breaker and waits only until it is admitted (`admit` was
 * called: it runs, or waits in a queue) or refused before running (`result` settled first).
 */
export async function admission<T>(
  start: (admit: () => void) => Promise<T>,
): Promise<{ admitted: boolean; result: Promise<T> }> {
  let admitted = false;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const result = start(() => {
    admitted = true;
    open();
  });
  await Promise.race([gate, result.then(noop, noop)]);
  return { admitted, result };
}

function noop(): void {}

/**
 * Whether the worker's results may stay JSON text (RawJson) on their way to the client: the sink
 * encodes them into frames and no after hook reads them.
 */
function passesResultsOn(dispatch: Dispatch): boolean {
  return dispatch.sink.rawResults === true && dispatch.config.afterExecute === null;
}

/** No slot is free but the queue has room: a call waits in it (PhoenixGenApi counts it accepted). */
function waitsInQueue(bulkhead: BulkheadPolicy): boolean {
  return bulkhead.executionSlots <= 0 && bulkhead.queueSlots > 0;
}

/** A stream's bulkhead slot, held for the stream's whole life. */
export interface StreamSlot {
  /** No slot was free but the queue had room: the stream waits in it. */
  readonly queued: boolean;
  /** Resolves once the stream holds a slot. */
  readonly slot: Promise<'slot'>;
  /** Resolves with the bulkhead's refusal (or null once the slot is given back). */
  readonly refused: Promise<unknown>;
}

/** Retries, fallbacks, breakers and bulkheads around each call (see the module comment). */
export class CallPolicy {
  constructor(
    private readonly resilience: Resilience,
    private readonly selector: NodeSelector,
    private readonly logger: Logger,
  ) {}

  /** Live instances in selection order (primary first); [] when discovery knows none. */
  order(bus: ServiceBus, config: ResolvedFunConfig, request: GenApiRequest): ServiceInstance[] {
    const instances = bus.instances(config.service);
    if (instances.length === 0) return [];
    // Stalled instances (holding calls they do not answer) go last: frozen ones stop taking calls.
    return this.resilience.stalls.reorder(this.selector.order(config, request, instances));
  }

  /**
   * The call through the bulkhead and the service breaker, with retries and fallbacks: its
   * outcome, or null when it was refused before running (bulkhead full, service breaker open).
   * `admit` is called once the call is past both (or waits in the bulkhead's queue, which
   * PhoenixGenApi also counts as accepted).
   */
  async call(
    dispatch: Dispatch,
    args: Record<string, unknown>,
    admit?: () => void,
  ): Promise<CallOutcome | null> {
    const { config } = dispatch;
    const resilience = this.resilience;
    const bulkhead = resilience.bulkhead(config.service);
    const queued = waitsInQueue(bulkhead);
    resilience.reviveService(config.service, dispatch.bus.instances(config.service));
    try {
      const running = bulkhead.execute(() =>
        resilience.service(config.service).execute(async () => {
          admit?.();
          const result = await this.invoke(dispatch, args);
          if (this.countsForService(dispatch, result))
            throw new TransportFailureError(!result.ok ? result.message : '', { cause: result });
          return result;
        }),
      );
      if (queued) admit?.();
      return await running;
    } catch (err) {
      if (err instanceof TransportFailureError) return err.cause as CallOutcome;
      if (err instanceof BulkheadRejectedError || err instanceof BrokenCircuitError) return null;
      throw err;
    }
  }

  /**
   * Takes a bulkhead slot for a stream and holds it until `finished` settles. A stream that
   * waits in the queue is accepted and starts when a slot frees.
   */
  streamSlot(service: string, finished: Promise<void>): StreamSlot {
    const bulkhead = this.resilience.bulkhead(service);
    const queued = waitsInQueue(bulkhead);
    let holdSlot!: () => void;
    const slot = new Promise<'slot'>((resolve) => (holdSlot = () => resolve('slot')));
    const lifetime = bulkhead.execute(() => {
      holdSlot();
      return finished;
    });
    const refused = lifetime.then(
      () => null,
      (err: unknown) => err,
    );
    return { queued, slot, refused };
  }

  /**
   * A stream's start through the service breaker and the instances (its bulkhead slot is taken
   * by `streamSlot`); `admit` once the breaker lets it through.
   */
  async start(
    dispatch: Dispatch,
    args: Record<string, unknown>,
    relay: StreamSink,
    credit: number,
    admit?: () => void,
  ): Promise<StreamStart> {
    const { bus, config, meta, order } = dispatch;
    this.resilience.reviveService(config.service, bus.instances(config.service));
    try {
      return await this.resilience.service(config.service).execute(async () => {
        admit?.();
        const result = await this.tryInstances(
          dispatch,
          order,
          0,
          (instance) =>
            bus.stream(
              { config, instance },
              meta,
              args,
              config.timeoutMs,
              credit,
              relay,
              passesResultsOn(dispatch),
            ),
          outcomeOfStart,
          unreachedStart,
        );
        if (this.countsForService(dispatch, result.outcome))
          throw new TransportFailureError('stream start failed', { cause: result });
        return result;
      });
    } catch (err) {
      if (err instanceof TransportFailureError) return err.cause as StreamStart;
      if (err instanceof BrokenCircuitError)
        return { outcome: transportFailure('unavailable', 'service circuit open'), control: null };
      throw err;
    }
  }

  /** Whether a failed request counts toward its service's breaker (Resilience.countsForService). */
  private countsForService(dispatch: Dispatch, outcome: CallOutcome): boolean {
    if (!countsForBreakers(outcome)) return false;
    const service = dispatch.config.service;
    return this.resilience.countsForService(
      service,
      dispatch.bus.instances(service),
      dispatch.tried.instanceId,
    );
  }

  /**
   * One request across instances: fast failures (nobody there, instance draining or gone) fall
   * through to the next instance at once, since nothing ran; a timeout or a lost connection uses
   * up an attempt. Retries (`retry`) re-run after a jittered backoff, on the same instance
   * (`same_node`) or the next (`all_nodes`); only transport failures are retried unless the
   * config says `retry_on: "any"`.
   */
  private async invoke(dispatch: Dispatch, args: Record<string, unknown>): Promise<CallOutcome> {
    const { bus, config, request, meta } = dispatch;
    const signal = dispatch.sink.signal;
    const raw = passesResultsOn(dispatch);
    const attempts = 1 + (config.retry?.attempts ?? 0);
    let order = dispatch.order;
    let cursor = 0;
    let last: CallOutcome = {
      ok: false,
      kind: 'transport',
      reason: 'no_responders',
      message: `no instance of ${config.service}`,
    };
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        await sleep(backoffMs(attempts - attempt), signal);
        if (signal.aborted)
          return { ok: false, kind: 'transport', reason: 'cancelled', message: 'client gone' };
        if (config.retry?.kind === 'all_nodes') {
          cursor++;
          if (order.length > 0 && cursor >= order.length) {
            // PhoenixGenApi re-resolves the node list once every node was tried.
            order = this.order(bus, config, request);
            cursor = 0;
          }
        }
        this.logger.debug(
          {
            requestId: meta.requestId,
            attempt,
            reason: !last.ok && last.kind === 'transport' ? last.reason : 'error',
            ...traceLogFields(meta.trace),
          },
          'retrying',
        );
      }
      // The first attempt's deadline was set with the request (meta); a retry gets a fresh one.
      const attemptMeta =
        attempt === 0 ? meta : { ...meta, deadline: Date.now() + config.timeoutMs };
      last = await this.tryInstances(
        dispatch,
        order,
        cursor,
        (instance) =>
          bus.call({ config, instance }, attemptMeta, args, config.timeoutMs, signal, raw),
        outcomeOfCall,
        unreachedCall,
      );
      if (last.ok) return last;
      if (last.kind === 'transport' && last.reason === 'cancelled') return last;
      if (last.kind === 'business' && config.retryOn !== 'any') return last;
    }
    return last;
  }

  /**
   * Runs `attempt` on instances from `start` on, each through its circuit breaker, while the
   * failures are fast (an open breaker is one); with no known instance, once on the queue group.
   * `outcomeOf` reads a result's outcome; `unreached` stands for an instance whose breaker is open.
   */
  private async tryInstances<T>(
    { tried }: Dispatch,
    order: readonly ServiceInstance[],
    start: number,
    attempt: (instance: ServiceInstance | null) => Promise<T>,
    outcomeOf: (result: T) => CallOutcome,
    unreached: (outcome: CallOutcome) => T,
  ): Promise<T> {
    tried.instanceId = null;
    if (order.length === 0) return attempt(null);
    const stalls = this.resilience.stalls;
    let result!: T;
    for (let i = 0; i < order.length; i++) {
      const instance = order[(start + i) % order.length]!;
      tried.instanceId = instance.id;
      try {
        result = await this.resilience.instance(instance.id).execute(async () => {
          const call = stalls.begin(instance.id);
          let value: T;
          try {
            value = await attempt(instance);
          } catch (err) {
            stalls.end(instance.id, call, false);
            throw err;
          }
          const outcome = outcomeOf(value);
          stalls.end(instance.id, call, answeredByInstance(outcome));
          if (countsForBreakers(outcome))
            throw new TransportFailureError(!outcome.ok ? outcome.message : '', { cause: value });
          return value;
        });
      } catch (err) {
        if (err instanceof TransportFailureError) result = err.cause as T;
        else if (err instanceof BrokenCircuitError)
          result = unreached(
            transportFailure('unavailable', `instance ${instance.id} circuit open`),
          );
        else throw err;
      }
      const outcome = outcomeOf(result);
      if (outcome.ok || outcome.kind === 'business' || !FAST_FAILURES.has(outcome.reason))
        return result;
    }
    return result;
  }
}

/**
 * PhoenixGenApi's Executor over buses, as a pipeline of small steps (src/genapi/pipeline/):
 * lookup → before hook → permission → rate limit → arguments → dispatch → after hook. Dispatch
 * goes through the CallPolicy (instance selection, fallback, retries, breakers, bulkheads); a
 * stream is relayed by a RelayedStream. Every request ends in exactly one reply and, except a
 * `none` call a worker took, at least one push: nothing is lost silently.
 */
import type { Logger } from 'pino';
import type { ServiceBus } from '../bus/types.js';
import { traceLogFields } from '../nats/trace-otel.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import { ArgumentError } from './args/errors.js';
import { DEFAULT_ARG_LIMITS, type ArgLimits } from './args/convert.js';
import { inspect } from './args/inspect.js';
import { checkArguments } from './pipeline/arguments.js';
import { CallPolicy } from './pipeline/call-policy.js';
import { requestMeta, type PipelineContext } from './pipeline/context.js';
import { dispatchCall } from './pipeline/dispatch.js';
import { afterHook, answerEarly, beforeHook } from './pipeline/hook-steps.js';
import { lookup, notFound } from './pipeline/lookup.js';
import { callResponse } from './pipeline/outcome.js';
import { permission, permissionRefused } from './pipeline/permission.js';
import { rateLimit, rateLimited } from './pipeline/rate-limit.js';
import { StreamRegistry } from './pipeline/relayed-stream.js';
import type { Dispatch, ExecutorOptions, ExecutorStats, RequestSink } from './pipeline/types.js';
import { ObservedSink } from './request-telemetry.js';
import { errorResponse, ERRORS } from './response.js';
import { traceRequest } from './traced-sink.js';
import type { GenApiRequest } from './types.js';

export type {
  ExecutorOptions,
  ExecutorStats,
  RateContext,
  RateDecision,
  RateLimitGate,
  RequestSink,
} from './pipeline/types.js';
export { isClientError } from './pipeline/outcome.js';

/** Runs gen_api requests (see the module comment); GenApi owns one. */
export class Executor implements PipelineContext {
  readonly stats: ExecutorStats = { inflight: 0, streams: 0, requests: 0, failures: 0 };
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  readonly limits: ArgLimits;
  readonly policy: CallPolicy;
  readonly streams: StreamRegistry;
  /** Told once nothing runs (`whenIdle`, for a drain). */
  private idleWaiters: (() => void)[] = [];

  constructor(readonly options: ExecutorOptions) {
    this.wheel = options.wheel;
    this.logger = options.logger;
    this.limits = options.argLimits ?? DEFAULT_ARG_LIMITS;
    this.policy = new CallPolicy(options.resilience, options.selector, options.logger);
    this.streams = new StreamRegistry(this.stats, () => this.checkIdle());
  }

  setNats(bus: ServiceBus | null): void {
    this.options.nats = bus;
  }

  /**
   * NATS is configured but not connected yet (the gateway started without it): functions it
   * does not know yet may be on workers it cannot see, so they answer `Service temporarily
   * unavailable` (can_retry) instead of `unsupported function`. Null: NATS is up, or not used.
   */
  awaitingNats: ((service: string) => boolean) | null = null;

  /** "Internal Server Error", with the reason when detail_error is on. */
  internalError(detail: string): string {
    return this.options.detailError ? ERRORS.internalDetail(detail) : ERRORS.internal;
  }

  /** Runs one request. Never rejects; the sink gets the pushes and exactly one reply. */
  async execute(request: GenApiRequest, requestId: unknown, client: RequestSink): Promise<void> {
    this.stats.requests++;
    this.stats.inflight++;
    const telemetry = this.options.telemetry;
    const observed =
      telemetry?.has('genapi_request') === true
        ? new ObservedSink(client, request, telemetry)
        : null;
    const sink = traceRequest(request, observed ?? client);
    try {
      await this.run(request, requestId, sink);
    } catch (err) {
      // A defect, not a request error: the client still gets an answer.
      observed?.failed();
      this.stats.failures++;
      this.logger.error(
        {
          err,
          requestId,
          service: request.service,
          requestType: request.request_type,
          ...traceLogFields(sink.trace),
        },
        'request processing failed',
      );
      sink.push(errorResponse(requestId, ERRORS.processingFailed));
      sink.reply('error', (err as Error).message);
    } finally {
      this.stats.inflight--;
      sink.settled?.();
      observed?.done();
      this.checkIdle();
    }
  }

  /** Resolves once no request runs and no stream is relayed (a drain waits for it). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private get idle(): boolean {
    return this.stats.inflight === 0 && this.stats.streams === 0;
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * Ends every relayed stream with a `Stream interrupted` push (can_retry: the client may run it
   * again on another gateway) and tells its worker to stop; a drain does it at its deadline.
   * Returns how many streams were cut.
   */
  interruptStreams(): number {
    return this.streams.interruptAll();
  }

  /** Client cancel of a stream by request_id; false when no such stream runs for this owner. */
  cancel(owner: object, requestId: string): boolean {
    return this.streams.cancel(owner, requestId);
  }

  /**
   * The pipeline. A step that refuses answers through the after hook (`answerEarly`); steps that
   * can decide synchronously (permission without a worker check, a local rate limit) are not
   * awaited.
   */
  private async run(original: GenApiRequest, requestId: unknown, sink: RequestSink): Promise<void> {
    // 1. Lookup: no config, no after hook.
    const found = lookup(this, original);
    if (!found.ok) {
      sink.push(notFound(this.awaitingNats, found.reason, original, requestId));
      sink.reply('ok', original.request_type);
      return;
    }
    let request = original;
    let config = found.config;

    // 2. Before hook: may rewrite the request/config or reject.
    if (config.beforeExecute !== null) {
      const before = await beforeHook(this, config.beforeExecute, request, config);
      if ('reject' in before) {
        const rejected = errorResponse(requestId, ERRORS.hookRejected(inspect(before.reject)));
        await answerEarly(this, request, config, requestId, sink, rejected);
        return;
      }
      ({ request, config } = before);
    }
    const bus = config.nodes === 'local' ? this.options.local : this.options.nats;
    if (bus === null) {
      const unavailable = errorResponse(requestId, ERRORS.unavailable, true);
      await answerEarly(this, request, config, requestId, sink, unavailable);
      return;
    }
    // One instance order per request (round-robin advances once, whatever the steps).
    const dispatch: Dispatch = {
      bus,
      config,
      request,
      meta: requestMeta(this.options.gatewayId, request, config, sink),
      order: this.policy.order(bus, config, request),
      tried: { instanceId: null },
      requestId,
      sink,
    };

    // 3. Permission, 4. rate limit, 5. arguments: PhoenixGenApi's order.
    const checked = permission(dispatch);
    const permitted = typeof checked === 'string' ? checked : await checked;
    if (permitted !== 'allowed') {
      const refused = permissionRefused(permitted, requestId);
      await answerEarly(this, request, config, requestId, sink, refused);
      return;
    }
    const limited = rateLimit(this, request, config, sink);
    const decision = limited instanceof Promise ? await limited : limited;
    if (!decision.allowed) {
      await answerEarly(this, request, config, requestId, sink, rateLimited(decision, requestId));
      return;
    }
    const args = checkArguments(this, request, config);
    if (args instanceof ArgumentError) {
      sink.push(errorResponse(requestId, ERRORS.processingFailed));
      sink.reply('error', args.message);
      return;
    }

    // 6. Dispatch by response type, 7. after hook on its Response. Sync, the common case, stays
    // here: no extra async frame on the hot path.
    if (config.responseType !== 'sync') {
      await dispatchCall(this, dispatch, args, config.responseType);
      return;
    }
    const response = callResponse(this, await this.policy.call(dispatch, args), dispatch);
    sink.push(
      config.afterExecute === null ? response : await afterHook(this, request, config, response),
    );
    sink.reply('ok', request.request_type);
  }
}

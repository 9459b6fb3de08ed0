import type { Logger } from 'pino';
import { withDeadline } from '../util/deadline.js';
import {
  transportFailure,
  type Authorization,
  type CallOutcome,
  type ServiceBus,
  type StreamControl,
  type StreamSink,
  type StreamStart,
  type TransportFailure,
} from '../bus/types.js';
import { DEFAULT_STREAM_CREDIT } from '../nats/headers.js';
import type { TimerEntry, TimerWheel } from '../util/timer-wheel.js';
import type { RequestMeta } from '../worker/context.js';
import { ArgumentError } from './args/errors.js';
import { argChecker } from './args/compile.js';
import { DEFAULT_ARG_LIMITS, type ArgLimits } from './args/convert.js';
import { inspect } from './args/inspect.js';
import type { ConfigRegistry } from './config/registry.js';
import { hookErrorMessage, isResponse, withHookTimeout, type HookRegistry } from './hooks.js';
import { checkPermission } from './permission.js';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  TransportFailureError,
  type Resilience,
} from './resilience.js';
import {
  asyncResponse,
  errorResponse,
  ERRORS,
  streamEndResponse,
  streamResponse,
  syncResponse,
} from './response.js';
import { backoffMs } from './select/backoff.js';
import type { NodeSelector } from './select/node-selector.js';
import type { GenApiRequest, GenApiResponse, ResolvedFunConfig, ServiceInstance } from './types.js';
import type { Telemetry } from '../telemetry/events.js';
import { markTimedOut, ObservedSink } from './request-telemetry.js';
import type { RequestTrace, TraceContext } from '../nats/trace-context.js';
import { traceLogFields } from '../nats/trace-otel.js';
import { traceRequest } from './traced-sink.js';
import { sleep } from '../util/sleep.js';

/** Where the executor sends what the client gets: pushes on the gen_api event, and one reply. */
export interface RequestSink {
  /** Groups requests for cancel-by-request_id (the channel they came on). */
  readonly owner: object;
  push(response: GenApiResponse): void;
  /** The phx_reply: `{status, response}`; called exactly once per request. */
  reply(status: 'ok' | 'error', response: string): void;
  /** Aborted when the client can no longer receive (left the channel, disconnected). */
  readonly signal: AbortSignal;
  /** Whether the client's connection can take more stream chunks now. */
  writable(): boolean;
  /** Resolves when the connection can take more (or the signal aborts). */
  whenWritable(): Promise<void>;
  /** The client's IP and connection id, for rate limits keyed on them. */
  readonly rateContext?: RateContext;
  /** Called once the executor is done with the request (after its reply and last push). */
  settled?(): void;
  /** The trace context the client sent (request field or join param), or null. */
  readonly clientTrace?: TraceContext | null;
  /** The request's trace (its span) when traced: what its worker calls continue. */
  readonly trace?: RequestTrace | null;
  /** Called when a relayed stream of this request ends, whatever the reason. */
  streamEnded?(): void;
}

/** What rate limits key on besides the request: the client's IP and connection. */
export interface RateContext {
  /** The client's IP, or null (in-process). */
  readonly ip: string | null;
  /** The connection id, or null. */
  readonly socketId: string | null;
}

/**
 * Decides whether a gen_api request may run: the port the executor checks before every request.
 * The built-in limits (`rateLimits`, src/ratelimit) implement it; `GenApiOptions.rateLimiter` takes
 * a custom one.
 */
export interface RateLimitGate {
  /** Decides one request; may be async (strict limits ask a store). */
  check(
    request: GenApiRequest,
    config: ResolvedFunConfig,
    context: RateContext,
  ): RateDecision | Promise<RateDecision>;
}
/**
 * A `RateLimitGate`'s answer: allowed, denied with a retry time, or unavailable (the limits' store
 * could not decide).
 */
export type RateDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number; readonly details?: object }
  | { readonly allowed: false; readonly unavailable: true; readonly details?: object };

const NO_CONTEXT: RateContext = { ip: null, socketId: null };

export interface ExecutorOptions {
  readonly registry: ConfigRegistry;
  /** Bus for configs with `nodes: "local"`. */
  readonly local: ServiceBus;
  /** Bus for configs with `nodes: "nats"`; null without NATS. */
  nats: ServiceBus | null;
  readonly selector: NodeSelector;
  readonly hooks: HookRegistry;
  readonly resilience: Resilience;
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  readonly gatewayId: string;
  readonly argLimits?: ArgLimits;
  /** Show failure reasons to clients ("Internal Server Error: <reason>"). Default false. */
  readonly detailError?: boolean;
  readonly rateLimiter?: RateLimitGate | null;
  /** Initial stream credit; the gateway tops it up as the client drains. Default 32. */
  readonly streamCredit?: number;
  /** Where `genapi_request` events go (the gateway's telemetry). Default: none. */
  readonly telemetry?: Telemetry;
}

/** Executor counters for metrics and leak checks. */
export interface ExecutorStats {
  /** Requests running now. */
  inflight: number;
  /** Streams being relayed now. */
  streams: number;
  /** Requests received since start. */
  requests: number;
  /** Requests failed since start. */
  failures: number;
}

/** A stream the gateway is relaying to a client. */
class RelayedStream implements StreamSink, TimerEntry {
  timerSlot = -1;
  control: StreamControl | null = null;
  private received = 0;
  private granted: number;
  private waitingForDrain = false;
  done = false;
  private lastActivity: number;
  /** Events that arrived before the start message was pushed (they must follow it). */
  private held: (() => void)[] | null = [];
  /** Settles when the relay ends, whatever the reason (its bulkhead slot is held until then). */
  readonly finished: Promise<void>;
  private settleFinished!: () => void;
  private readonly onAbort = () => this.stop(null);

  constructor(
    private readonly executor: Executor,
    readonly requestId: unknown,
    /** The owner's key for this stream (the request_id as a string). */
    readonly key: string,
    readonly sink: RequestSink,
    private readonly credit: number,
    private readonly idleTimeoutMs: number,
  ) {
    this.granted = credit;
    this.finished = new Promise((resolve) => (this.settleFinished = resolve));
    this.lastActivity = executor.wheel.clock();
    sink.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The start message is pushed: held events follow it, the idle timer starts. */
  live(control: StreamControl): void {
    this.control = control;
    const held = this.held ?? [];
    this.held = null;
    this.touch();
    for (const event of held) event();
  }

  chunk(data: unknown): void {
    if (this.done) return;
    if (this.held) {
      this.held.push(() => this.chunk(data));
      return;
    }
    this.touch();
    this.sink.push(streamResponse(this.requestId, data, true));
    this.received++;
    this.topUp();
  }

  last(data: unknown): void {
    if (this.held) this.held.push(() => this.last(data));
    else this.finish(streamResponse(this.requestId, data, false));
  }

  end(): void {
    if (this.held) this.held.push(() => this.end());
    else this.finish(streamEndResponse(this.requestId));
  }

  error(message: string): void {
    if (this.held) this.held.push(() => this.error(message));
    else this.finish(errorResponse(this.requestId, this.executor.internalError(message)));
  }

  /** Client cancel: the worker is told to stop, the client gets the end marker. */
  cancel(): void {
    this.stop(streamEndResponse(this.requestId));
  }

  onTimer(now: number): void {
    if (this.done) return;
    // Only time the worker out while it may send: a client that does not drain holds credit back.
    if (this.waitingForDrain || this.granted - this.received <= 0) {
      this.touch();
      return;
    }
    if (now - this.lastActivity >= this.idleTimeoutMs) {
      this.executor.logger.warn(
        {
          requestId: this.requestId,
          idleMs: this.idleTimeoutMs,
          ...traceLogFields(this.sink.trace),
        },
        'stream timed out',
      );
      this.stop(errorResponse(this.requestId, ERRORS.streamTimeout));
      return;
    }
    this.executor.wheel.schedule(this, this.lastActivity + this.idleTimeoutMs);
  }

  private touch(): void {
    this.lastActivity = this.executor.wheel.clock();
    if (!this.done) this.executor.wheel.schedule(this, this.lastActivity + this.idleTimeoutMs);
  }

  /** Grants more credit when half is spent, but only while the client's connection drains. */
  private topUp(): void {
    const outstanding = this.granted - this.received;
    if (outstanding > this.credit / 2 || this.waitingForDrain || !this.control) return;
    if (this.sink.writable()) {
      this.grant();
      return;
    }
    this.waitingForDrain = true;
    this.sink
      .whenWritable()
      .then(() => {
        this.waitingForDrain = false;
        if (!this.done) {
          this.grant();
          this.touch();
        }
      })
      .catch((err: unknown) => {
        // Flow control broke (a sink or a control publish failed): end the stream as failed
        // rather than leave the worker waiting for credit that never comes.
        this.waitingForDrain = false;
        this.executor.logger.error(
          { err, requestId: this.requestId, ...traceLogFields(this.sink.trace) },
          'stream flow control failed',
        );
        if (!this.done)
          this.stop(
            errorResponse(
              this.requestId,
              this.executor.internalError('stream flow control failed'),
            ),
          );
      });
  }

  private grant(): void {
    const more = this.credit - (this.granted - this.received);
    if (more <= 0) return;
    this.granted += more;
    this.control?.grant(more);
  }

  private finish(final: GenApiResponse): void {
    if (this.done) return;
    this.cleanup();
    this.sink.push(final);
  }

  /** Ends the relay from the gateway side, telling the worker to stop. */
  stop(final: GenApiResponse | null): void {
    if (this.done) return;
    this.cleanup();
    this.control?.cancel();
    if (final) this.sink.push(final);
  }

  private cleanup(): void {
    this.done = true;
    this.settleFinished();
    this.executor.wheel.cancel(this);
    this.sink.signal.removeEventListener('abort', this.onAbort);
    this.executor.streamEnded(this);
    this.sink.streamEnded?.();
  }
}

/** One request on its way to a function: everything the dispatch steps share. */
interface Dispatch {
  readonly bus: ServiceBus;
  readonly config: ResolvedFunConfig;
  readonly request: GenApiRequest;
  readonly meta: RequestMeta;
  /** Instances in selection order, computed once per request. */
  readonly order: readonly ServiceInstance[];
  readonly requestId: unknown;
  readonly sink: RequestSink;
  /** The instance the last attempt went to (null: the queue group, or none yet). */
  readonly tried: { instanceId: string | null };
}

const outcomeOfCall = (outcome: CallOutcome): CallOutcome => outcome;
const unreachedCall = (outcome: CallOutcome): CallOutcome => outcome;
const outcomeOfStart = (start: StreamStart): CallOutcome => start.outcome;
const unreachedStart = (outcome: CallOutcome): StreamStart => ({ outcome, control: null });

/** Failures where nothing ran: the next instance is tried at once. */
const FAST_FAILURES = new Set<TransportFailure>(['no_responders', 'unavailable']);
/**
 * The failures breakers count: the call used up its time (timeout) or its instance died under
 * it. Fast failures where nothing ran (no responders, 503/404, an open instance breaker) already
 * fail fast, so a breaker gains nothing from them, and counting them would keep a service
 * unavailable after it is back (workers resubscribing after a NATS restart answer "no
 * responders" for a moment). The gateway's own NATS outage (disconnected) and a client that left
 * (cancelled) say nothing about the service.
 */
const BREAKER_FAILURES = new Set<TransportFailure>(['timeout', 'instance_lost']);

/** Whether the instance itself answered: a result, the function's error, or its 503/404. */
function answeredByInstance(outcome: CallOutcome): boolean {
  return outcome.ok || outcome.kind === 'business' || outcome.reason === 'unavailable';
}

function countsForBreakers(outcome: CallOutcome): boolean {
  return !outcome.ok && outcome.kind === 'transport' && BREAKER_FAILURES.has(outcome.reason);
}

/**
 * Starts work behind a bulkhead or breaker and waits only until it is admitted (`admit` was
 * called: it runs, or waits in a queue) or refused before running (`result` settled first).
 */
async function admission<T>(
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
 * PhoenixGenApi's rate-limit push (`Rate limit exceeded. Please retry after N seconds.`, N ≥ 1
 * rounded up) plus `rate_limit`, the machine-readable details (protocol/gen_api.md §2).
 */
function rateLimitedResponse(
  requestId: unknown,
  retryAfterMs: number,
  details: object | undefined,
): GenApiResponse {
  const response = errorResponse(
    requestId,
    ERRORS.rateLimited(Math.max(1, Math.ceil(retryAfterMs / 1000))),
    true,
  );
  return details === undefined ? response : { ...response, rate_limit: details };
}

/** Error codes whose message the client sees as-is (404 and 503 are transport signals). */
export function isClientError(code: number): boolean {
  return code >= 400 && code < 500 && code !== 404;
}
/** Failures where the function surely did not run: the client may retry later. */
const NOT_EXECUTED = new Set<TransportFailure>(['no_responders', 'unavailable', 'disconnected']);

/**
 * PhoenixGenApi's Executor over buses: config lookup → before hook → permission (built-in mode,
 * then the worker's own check) → rate limit → arguments → dispatch by response type, with
 * instance selection, fallback, retries, breakers and bulkheads → after hook. Every request ends
 * in exactly one reply and, except a `none` call a worker took, at least one push: nothing is
 * lost silently.
 */
export class Executor {
  readonly stats: ExecutorStats = { inflight: 0, streams: 0, requests: 0, failures: 0 };
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  private readonly streams = new Map<object, Map<string, RelayedStream>>();
  private readonly limits: ArgLimits;
  /** Told once nothing runs (`whenIdle`, for a drain). */
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: ExecutorOptions) {
    this.wheel = options.wheel;
    this.logger = options.logger;
    this.limits = options.argLimits ?? DEFAULT_ARG_LIMITS;
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
    let cut = 0;
    for (const byId of [...this.streams.values()]) {
      for (const stream of [...byId.values()]) {
        stream.stop(errorResponse(stream.requestId, ERRORS.streamInterrupted, true));
        cut++;
      }
    }
    return cut;
  }

  /** Client cancel of a stream by request_id; false when no such stream runs for this owner. */
  cancel(owner: object, requestId: string): boolean {
    const stream = this.streams.get(owner)?.get(requestId);
    if (!stream) return false;
    stream.cancel();
    return true;
  }

  /** @internal */
  streamEnded(stream: RelayedStream): void {
    const byId = this.streams.get(stream.sink.owner);
    if (byId?.get(stream.key) !== stream) return;
    byId.delete(stream.key);
    if (byId.size === 0) this.streams.delete(stream.sink.owner);
    this.stats.streams--;
    this.checkIdle();
  }

  private async run(original: GenApiRequest, requestId: unknown, sink: RequestSink): Promise<void> {
    let request = original;
    const lookup = this.options.registry.resolve(
      request.service,
      request.request_type,
      request.version,
    );
    if (!lookup.ok) {
      if (lookup.reason !== 'disabled' && this.awaitingNats?.(request.service) === true) {
        sink.push(errorResponse(requestId, ERRORS.unavailable, true));
        sink.reply('ok', request.request_type);
        return;
      }
      const message =
        lookup.reason === 'disabled'
          ? ERRORS.disabled(request.request_type, request.version)
          : ERRORS.unsupported(request.request_type, request.version);
      sink.push(errorResponse(requestId, message));
      sink.reply('ok', request.request_type);
      return;
    }
    let config = lookup.config;

    // Before hook: may rewrite the request/config or reject.
    if (config.beforeExecute !== null) {
      const outcome = await this.runBefore(config.beforeExecute, request, config);
      if ('reject' in outcome) {
        await this.finishEarly(
          request,
          config,
          requestId,
          sink,
          errorResponse(requestId, ERRORS.hookRejected(inspect(outcome.reject))),
        );
        return;
      }
      request = outcome.request;
      config = outcome.config;
    }

    const bus = config.nodes === 'local' ? this.options.local : this.options.nats;
    if (bus === null) {
      await this.finishEarly(
        request,
        config,
        requestId,
        sink,
        errorResponse(requestId, ERRORS.unavailable, true),
      );
      return;
    }

    // PhoenixGenApi's order: permission, then rate limit, then arguments. Permission sees the
    // client's args as sent; a denied caller learns nothing about the argument schema and a
    // request with bad arguments still counts against rate limits.
    // One instance order per request (round-robin advances once, whatever the steps).
    const dispatch: Dispatch = {
      bus,
      config,
      request,
      meta: this.meta(request, config, sink),
      order: this.order(bus, config, request),
      tried: { instanceId: null },
      requestId,
      sink,
    };
    // Most functions have no worker-side permission check: decided synchronously, no promise.
    const checked = this.permitted(dispatch);
    const permission = typeof checked === 'string' ? checked : await checked;
    if (permission !== 'allowed') {
      const response =
        permission === 'denied'
          ? errorResponse(requestId, ERRORS.permissionDenied)
          : errorResponse(requestId, ERRORS.unavailable, true);
      await this.finishEarly(request, config, requestId, sink, response);
      return;
    }

    const limiter = this.options.rateLimiter;
    if (limiter) {
      const checked = limiter.check(request, config, sink.rateContext ?? NO_CONTEXT);
      const decision = checked instanceof Promise ? await checked : checked;
      if (!decision.allowed) {
        const response =
          'unavailable' in decision
            ? {
                ...errorResponse(requestId, ERRORS.rateLimiterUnavailable, true),
                ...(decision.details === undefined ? {} : { rate_limit: decision.details }),
              }
            : rateLimitedResponse(requestId, decision.retryAfterMs, decision.details);
        await this.finishEarly(request, config, requestId, sink, response);
        return;
      }
    }

    let args: Record<string, unknown>;
    try {
      args = argChecker(config.args)(request.args, request.request_type, this.limits);
    } catch (err) {
      if (!(err instanceof ArgumentError)) throw err;
      sink.push(errorResponse(requestId, ERRORS.processingFailed));
      sink.reply('error', err.message);
      return;
    }

    switch (config.responseType) {
      case 'sync': {
        const response = await this.guarded(dispatch, args);
        sink.push(
          config.afterExecute === null ? response : await this.runAfter(request, config, response),
        );
        sink.reply('ok', request.request_type);
        return;
      }
      case 'async': {
        // PhoenixGenApi: a call refused before it runs (bulkhead full, breaker open) gets the
        // error as its first and only push; an admitted one gets the ack, then its result.
        const { admitted, result } = await admission((admit) =>
          this.guarded(dispatch, args, admit),
        );
        if (!admitted) {
          await this.finishEarly(request, config, requestId, sink, await result);
          return;
        }
        sink.push(await this.runAfter(request, config, asyncResponse(requestId)));
        sink.reply('ok', request.request_type);
        sink.push(await result);
        return;
      }
      case 'none': {
        const { admitted, result } = await admission((admit) =>
          this.guarded(dispatch, args, admit),
        );
        if (!admitted) {
          await this.finishEarly(request, config, requestId, sink, await result);
          return;
        }
        await this.runAfter(request, config, null);
        sink.reply('ok', request.request_type);
        this.dropped(config, requestId, sink, await result);
        return;
      }
      case 'stream':
        await this.relayStream(dispatch, args);
        return;
    }
  }

  /**
   * The outcome of a `none` call, whose result nobody waits for (protocol/gen_api.md §7.22):
   * when nothing ran (no worker answered, every instance refused, NATS down) the client is told
   * with `Service temporarily unavailable` (can_retry), since sending it again is safe; a failure
   * after a worker took the call (function error, timeout, instance lost) is only logged — it may
   * have run, and PhoenixGenApi drops `none` results.
   */
  private dropped(
    config: ResolvedFunConfig,
    requestId: unknown,
    sink: RequestSink,
    response: GenApiResponse,
  ): void {
    if (response.success) return;
    const fields = {
      requestId,
      service: config.service,
      requestType: config.requestType,
      error: response.error,
      ...traceLogFields(sink.trace),
    };
    if (response.can_retry) {
      this.logger.warn(fields, 'fire-and-forget call not delivered');
      sink.push(response);
    } else {
      this.logger.warn(fields, 'fire-and-forget call failed');
    }
  }

  private meta(request: GenApiRequest, config: ResolvedFunConfig, sink: RequestSink): RequestMeta {
    return {
      origin: sink.owner,
      requestId: request.request_id,
      service: config.service,
      requestType: config.requestType,
      version: config.version,
      userId: request.user_id,
      deviceId: request.device_id,
      roles: request.user_roles ?? [],
      responseType: config.responseType,
      deadline: Date.now() + config.timeoutMs,
      gateway: this.options.gatewayId,
      trace: sink.trace ?? null,
    };
  }

  /** Pushes an early error (after the after hook saw it) and replies ok, as PhoenixGenApi does. */
  private async finishEarly(
    request: GenApiRequest,
    config: ResolvedFunConfig,
    requestId: unknown,
    sink: RequestSink,
    response: GenApiResponse,
  ): Promise<void> {
    sink.push(await this.runAfter(request, config, response));
    sink.reply('ok', request.request_type);
  }

  private async runBefore(
    name: string,
    request: GenApiRequest,
    config: ResolvedFunConfig,
  ): Promise<{ request: GenApiRequest; config: ResolvedFunConfig } | { reject: unknown }> {
    const hook = this.options.hooks.get(name)?.before;
    if (!hook) return { request, config };
    try {
      const result = await withHookTimeout(() => hook(request, config), config.hookTimeoutMs);
      if (result && typeof result === 'object') {
        if ('reject' in result) return { reject: result.reject };
        return { request: result.request ?? request, config: result.config ?? config };
      }
      return { request, config };
    } catch (err) {
      const message = hookErrorMessage(err);
      this.logger.warn({ hook: name, err: message }, 'before hook failed');
      return { reject: message };
    }
  }

  private async runAfter(
    request: GenApiRequest,
    config: ResolvedFunConfig,
    response: GenApiResponse,
  ): Promise<GenApiResponse>;
  private async runAfter(
    request: GenApiRequest,
    config: ResolvedFunConfig,
    response: null,
  ): Promise<null>;
  private async runAfter(
    request: GenApiRequest,
    config: ResolvedFunConfig,
    response: GenApiResponse | null,
  ): Promise<GenApiResponse | null> {
    if (config.afterExecute === null) return response;
    const hook = this.options.hooks.get(config.afterExecute)?.after;
    if (!hook) return response;
    try {
      const replaced = await withHookTimeout(
        () => hook(request, config, response),
        config.hookTimeoutMs,
      );
      if (replaced === undefined || replaced === null) return response;
      if (isResponse(replaced)) return replaced;
      this.logger.warn(
        { hook: config.afterExecute },
        'after hook returned something other than a Response; kept the original',
      );
      return response;
    } catch (err) {
      this.logger.warn(
        { hook: config.afterExecute, err: hookErrorMessage(err) },
        'after hook failed; kept the original',
      );
      return response;
    }
  }

  /**
   * The built-in mode, then the worker's own check (fail-closed). Instances that cannot be asked
   * at all are skipped; when none can, the answer is `unavailable`, not a denial.
   */
  private permitted(dispatch: Dispatch): Authorization | Promise<Authorization> {
    const { config, request } = dispatch;
    // Permission sees the client's arguments as sent.
    if (!checkPermission(config.permission, request, request.args, config.argsAsMap))
      return 'denied';
    if (!config.permissionCallback) return 'allowed';
    return this.askWorkers(dispatch);
  }

  /** The worker's own permission check, on each instance in order until one can answer. */
  private async askWorkers({
    bus,
    config,
    request,
    meta,
    order,
  }: Dispatch): Promise<Authorization> {
    const args = request.args;
    const candidates: (ServiceInstance | null)[] = order.length === 0 ? [null] : [...order];
    for (const instance of candidates) {
      const answer: Authorization = await withDeadline(
        bus.authorize({ config, instance }, meta, args, config.timeoutMs),
        config.timeoutMs,
        () => 'denied' as const,
      );
      if (answer !== 'unavailable') return answer;
    }
    return 'unavailable';
  }

  /**
   * Whether a failed request counts toward its service's breaker: a breaker failure (timeout,
   * instance lost) with no other healthy instance left. While another instance is known to
   * discovery with a closed breaker, the failure is the failed instance's alone: its own breaker
   * and discovery take it out of rotation, and the service keeps answering from the others.
   */
  private countsForService(dispatch: Dispatch, outcome: CallOutcome): boolean {
    if (!countsForBreakers(outcome)) return false;
    const failed = dispatch.tried.instanceId;
    const resilience = this.options.resilience;
    const known = dispatch.bus.instances(dispatch.config.service);
    if (failed !== null)
      for (const instance of known)
        if (instance.id !== failed && resilience.instanceHealthy(instance.id)) return false;
    resilience.noteServiceFailure(dispatch.config.service, known);
    return true;
  }

  /** Live instances in selection order (primary first); [] when discovery knows none. */
  private order(
    bus: ServiceBus,
    config: ResolvedFunConfig,
    request: GenApiRequest,
  ): ServiceInstance[] {
    const instances = bus.instances(config.service);
    if (instances.length === 0) return [];
    // Stalled instances (holding calls they do not answer) go last: frozen ones stop taking calls.
    return this.options.resilience.stalls.reorder(
      this.options.selector.order(config, request, instances),
    );
  }

  /**
   * Bulkhead + service breaker around the call; maps every outcome to the Response to push.
   * `admit` is called once the call is past both (or waits in the bulkhead's queue, which
   * PhoenixGenApi also counts as accepted).
   */
  private async guarded(
    dispatch: Dispatch,
    args: Record<string, unknown>,
    admit?: () => void,
  ): Promise<GenApiResponse> {
    const { config, requestId } = dispatch;
    const resilience = this.options.resilience;
    const bulkhead = resilience.bulkhead(config.service);
    const queued = bulkhead.executionSlots <= 0 && bulkhead.queueSlots > 0;
    resilience.reviveService(config.service, dispatch.bus.instances(config.service));
    let outcome: CallOutcome;
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
      outcome = await running;
    } catch (err) {
      if (err instanceof TransportFailureError) outcome = err.cause as CallOutcome;
      else if (err instanceof BulkheadRejectedError || err instanceof BrokenCircuitError) {
        return errorResponse(requestId, ERRORS.unavailable, true);
      } else throw err;
    }
    return this.toResponse(outcome, requestId, config, dispatch.sink.trace);
  }

  private toResponse(
    outcome: CallOutcome,
    requestId: unknown,
    config: ResolvedFunConfig,
    trace: RequestTrace | null | undefined,
  ): GenApiResponse {
    if (outcome.ok) return syncResponse(requestId, outcome.result);
    this.stats.failures++;
    if (outcome.kind === 'business') {
      // 4xx from the function are meant for the client (relay's "Group not found", a worker's
      // "invalid coupon"); anything else stays behind "Internal Server Error".
      if (isClientError(outcome.code)) return errorResponse(requestId, outcome.message);
      return errorResponse(requestId, this.internalError(outcome.message));
    }
    this.logger.warn(
      {
        requestId,
        service: config.service,
        requestType: config.requestType,
        reason: outcome.reason,
        message: outcome.message,
        ...traceLogFields(trace),
      },
      'call failed',
    );
    // Nothing ran (no worker, instance draining, NATS down): safe to retry later.
    if (NOT_EXECUTED.has(outcome.reason)) return errorResponse(requestId, ERRORS.unavailable, true);
    const response = errorResponse(requestId, this.internalError(outcome.message));
    return outcome.reason === 'timeout' ? markTimedOut(response) : response;
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
        (instance) => bus.call({ config, instance }, attemptMeta, args, config.timeoutMs, signal),
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
    let result!: T;
    for (let i = 0; i < order.length; i++) {
      const instance = order[(start + i) % order.length]!;
      tried.instanceId = instance.id;
      try {
        result = await this.options.resilience.instance(instance.id).execute(async () => {
          const stalls = this.options.resilience.stalls;
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

  /**
   * A stream: admitted through the bulkhead (whose slot it holds for its whole life) and the
   * service breaker, then `init` + reply, then the start Response, chunks and end. Refused before
   * it runs (bulkhead full, breaker open), the error is the first and only push, as for async.
   * A stream that waits in the bulkhead's queue is accepted (init) and starts when a slot frees.
   */
  private async relayStream(dispatch: Dispatch, args: Record<string, unknown>): Promise<void> {
    const { config, request, requestId, sink } = dispatch;
    if (sink.signal.aborted) {
      sink.reply('ok', request.request_type);
      return;
    }
    const credit = this.options.streamCredit ?? DEFAULT_STREAM_CREDIT;
    const relay = new RelayedStream(
      this,
      requestId,
      request.request_id,
      sink,
      credit,
      config.timeoutMs,
    );

    const bulkhead = this.options.resilience.bulkhead(config.service);
    const queued = bulkhead.executionSlots <= 0 && bulkhead.queueSlots > 0;
    let holdSlot!: () => void;
    const slot = new Promise<'slot'>((resolve) => (holdSlot = () => resolve('slot')));
    const lifetime = bulkhead.execute(() => {
      holdSlot();
      return relay.finished;
    });
    const refused = lifetime.then(
      () => null,
      (err: unknown) => err,
    );

    if (queued) {
      await this.acceptStream(dispatch, relay);
      await Promise.race([slot, relay.finished]);
      if (relay.done) return;
      this.streamStarted(dispatch, relay, await this.startStream(dispatch, args, relay, credit));
      return;
    }
    const gate = await Promise.race([slot, refused]);
    if (gate !== 'slot') {
      relay.stop(null);
      if (!(gate instanceof BulkheadRejectedError)) throw gate;
      await this.finishEarly(
        request,
        config,
        requestId,
        sink,
        errorResponse(requestId, ERRORS.unavailable, true),
      );
      return;
    }
    const { admitted, result } = await admission((admit) =>
      this.startStream(dispatch, args, relay, credit, admit),
    );
    if (!admitted) {
      relay.stop(null);
      await this.finishEarly(
        request,
        config,
        requestId,
        sink,
        this.toResponse((await result).outcome, requestId, config, sink.trace),
      );
      return;
    }
    await this.acceptStream(dispatch, relay);
    this.streamStarted(dispatch, relay, await result);
  }

  /** The `init` push and the reply; from then on the client can cancel the stream by request_id. */
  private async acceptStream(
    { config, request, requestId, sink }: Dispatch,
    relay: RelayedStream,
  ): Promise<void> {
    sink.push(await this.runAfter(request, config, streamResponse(requestId, 'init')));
    sink.reply('ok', request.request_type);
    if (relay.done) return;
    let byId = this.streams.get(sink.owner);
    if (!byId) {
      byId = new Map();
      this.streams.set(sink.owner, byId);
    }
    byId.get(request.request_id)?.stop(null);
    byId.set(request.request_id, relay);
    this.stats.streams++;
  }

  /** The stream's start through the service breaker and the instances; `admit` once the breaker lets it through. */
  private async startStream(
    dispatch: Dispatch,
    args: Record<string, unknown>,
    relay: RelayedStream,
    credit: number,
    admit?: () => void,
  ): Promise<StreamStart> {
    const { bus, config, meta, order } = dispatch;
    this.options.resilience.reviveService(config.service, bus.instances(config.service));
    try {
      return await this.options.resilience.service(config.service).execute(async () => {
        admit?.();
        const result = await this.tryInstances(
          dispatch,
          order,
          0,
          (instance) =>
            bus.stream({ config, instance }, meta, args, config.timeoutMs, credit, relay),
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

  /** After the start: the nested start Response and live relaying, or the start's error. */
  private streamStarted(
    { config, requestId, sink }: Dispatch,
    relay: RelayedStream,
    start: StreamStart,
  ): void {
    if (relay.done) {
      start.control?.cancel();
      return;
    }
    if (!start.outcome.ok || !start.control) {
      relay.stop(null);
      const { outcome } = start;
      const timedOut = !outcome.ok && outcome.kind === 'transport' && outcome.reason === 'timeout';
      sink.push(
        timedOut
          ? errorResponse(requestId, ERRORS.streamTimeout)
          : this.toResponse(outcome, requestId, config, sink.trace),
      );
      return;
    }
    // PhoenixGenApi's first stream message nests the start call's whole Response.
    sink.push(streamResponse(requestId, syncResponse(requestId, start.outcome.result)));
    relay.live(start.control);
  }
}

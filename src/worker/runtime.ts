import type { RequestContext, RequestMeta } from './context.js';
import { ServiceError, type ResolvedFunction } from './define.js';
import { CreditStream, StreamClosedError, type StreamIO, type StreamWriter } from './stream.js';
import { CancelledError, InvalidStateError } from '../errors.js';
import type { Broadcaster } from './pushes.js';
import type { RequestTrace } from '../nats/trace-context.js';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.js';
import { traceLogFields } from '../nats/trace-otel.js';

/** Where `ctx.logger` writes when the transport gave no logger. */
const SILENT = silentLogger();

/**
 * `ctx.logger`: a child of the transport's logger with the request's fields (`request_id`,
 * `service`, `function`, and `trace_id`/`span_id` when traced), made on first use.
 */
function requestLogger(base: Logger, meta: RequestMeta): Logger {
  return base.child({
    request_id: meta.requestId,
    service: meta.service,
    function: meta.requestType,
    ...traceLogFields(meta.trace),
  });
}

/** A handler's outcome, as a transport replies it. */
export type CallResult =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: string; readonly code: number };

const NO_STREAM: StreamWriter = {
  closed: true,
  write: () => Promise.reject(new StreamClosedError('not a stream function')),
  last: () => Promise.reject(new StreamClosedError('not a stream function')),
  end: () => Promise.resolve(),
};

function errorOf(err: unknown): { error: string; code: number } {
  if (err instanceof ServiceError) return { error: err.message, code: err.status };
  if (err instanceof Error) return { error: err.message || err.name, code: 500 };
  return { error: String(err), code: 500 };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/** For transports that cannot push (tests calling the runtime directly). */
export const NO_PUSHES: Broadcaster = {
  broadcast: () => {
    throw new InvalidStateError('this transport cannot broadcast');
  },
  disconnect: () => {
    throw new InvalidStateError('this transport cannot disconnect sockets');
  },
};

function context(
  meta: RequestMeta,
  signal: AbortSignal,
  stream: StreamWriter,
  pushes: Broadcaster,
  logger: Logger,
): RequestContext {
  let child: Logger | null = null;
  return {
    ...meta,
    trace: meta.trace ?? null,
    get logger() {
      return (child ??= requestLogger(logger, meta));
    },
    signal,
    stream,
    broadcast: (topic, event, payload) => pushes.broadcast(topic, event, payload),
    disconnect: (socketId) => pushes.disconnect(socketId),
  };
}

/** The code of a call that ran out of time: the gateway treats it like its own timeout. */
export const DEADLINE_CODE = 504;

/**
 * A call's abort signal, made only if its handler reads `ctx.signal`: most handlers never do,
 * and an AbortController, a deadline timer and a listener on the caller's signal per call are
 * the bulk of what a worker allocates per request. Once made, it aborts at the deadline, when
 * the caller's signal aborts, or on `cancel` (the worker stopping), as if it had existed all along.
 */
export class CallSignal {
  private controller: AbortController | null = null;
  private timer: NodeJS.Timeout | null = null;
  private cancelled: { reason: unknown } | null = null;
  private deadlineFired = false;
  private readonly forward = (): void => this.abort(this.parent?.reason);

  constructor(
    private readonly deadline: number,
    private readonly parent?: AbortSignal,
  ) {}

  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    if (this.cancelled) controller.abort(this.cancelled.reason);
    else if (this.parent?.aborted) controller.abort(this.parent.reason);
    else {
      this.parent?.addEventListener('abort', this.forward, { once: true });
      const left = this.deadline - Date.now();
      if (left <= 0) this.expire();
      else this.timer = setTimeout(() => this.expire(), left);
    }
    return controller.signal;
  }

  /**
   * True once the deadline timer fired. A timer may fire a millisecond before Date.now() reaches
   * the deadline, so a handler that honoured this abort must still count as past its deadline.
   */
  get expired(): boolean {
    return this.deadlineFired;
  }

  private expire(): void {
    this.deadlineFired = true;
    this.abort(new CancelledError('deadline exceeded'));
  }

  /** Aborts the call (now, or as soon as its signal is made). */
  cancel(reason: unknown): void {
    this.cancelled ??= { reason };
    this.abort(reason);
  }

  /** The call is over: no timer or listener outlives it. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.parent?.removeEventListener('abort', this.forward);
  }

  private abort(reason: unknown): void {
    if (this.controller && !this.controller.signal.aborted) this.controller.abort(reason);
  }
}

/** A request context whose `signal` is made on first use. */
class CallContext implements RequestContext {
  readonly requestId: string;
  readonly service: string;
  readonly requestType: string;
  readonly version: string | null;
  readonly userId: string | null;
  readonly deviceId: string | null;
  readonly roles: readonly string[];
  readonly responseType: RequestMeta['responseType'];
  readonly deadline: number;
  readonly gateway: string | null;
  readonly origin?: unknown;
  readonly trace: RequestTrace | null;
  readonly stream = NO_STREAM;
  private child: Logger | null = null;

  constructor(
    private readonly meta: RequestMeta,
    private readonly call: CallSignal,
    private readonly pushes: Broadcaster,
    private readonly baseLogger: Logger,
  ) {
    this.requestId = meta.requestId;
    this.service = meta.service;
    this.requestType = meta.requestType;
    this.version = meta.version;
    this.userId = meta.userId;
    this.deviceId = meta.deviceId;
    this.roles = meta.roles;
    this.responseType = meta.responseType;
    this.deadline = meta.deadline;
    this.gateway = meta.gateway;
    this.trace = meta.trace ?? null;
    if (meta.origin !== undefined) this.origin = meta.origin;
  }

  get signal(): AbortSignal {
    return this.call.signal;
  }

  get logger(): Logger {
    return (this.child ??= requestLogger(this.baseLogger, this.meta));
  }

  broadcast(topic: string, event: string, payload?: unknown): void {
    this.pushes.broadcast(topic, event, payload);
  }

  disconnect(socketId: string): void {
    this.pushes.disconnect(socketId);
  }
}

/**
 * Runs a sync/async/none function. Its signal aborts at the deadline (or with `cancel`); a
 * handler that settles after the deadline (typically because it honoured the signal) reports
 * 504, not a failure of its own. `cancel` is the caller's signal, or a CallSignal it keeps to
 * cancel the call itself.
 */
export async function runCall(
  fn: ResolvedFunction,
  args: Record<string, unknown>,
  meta: RequestMeta,
  cancel?: AbortSignal | CallSignal,
  pushes: Broadcaster = NO_PUSHES,
  logger: Logger = SILENT,
): Promise<CallResult> {
  const call = cancel instanceof CallSignal ? cancel : new CallSignal(meta.deadline, cancel);
  const expired = () => call.expired || Date.now() >= meta.deadline;
  try {
    const result = await fn.definition.handler(args, new CallContext(meta, call, pushes, logger));
    if (expired()) return { ok: false, error: 'deadline exceeded', code: DEADLINE_CODE };
    return { ok: true, result: result === undefined ? null : result };
  } catch (err) {
    if (expired()) return { ok: false, error: 'deadline exceeded', code: DEADLINE_CODE };
    return { ok: false, ...errorOf(err) };
  } finally {
    call.dispose();
  }
}

/** Runs a permission check (`authorize`); anything but `true` — including a throw — denies. */
export async function runAuthorize(
  fn: ResolvedFunction,
  args: Record<string, unknown>,
  meta: RequestMeta,
  pushes: Broadcaster = NO_PUSHES,
  logger: Logger = SILENT,
): Promise<boolean> {
  const definition = fn.definition;
  if (!definition.authorize) return false;
  const controller = new AbortController();
  try {
    return (
      (await definition.authorize(
        args,
        context(meta, controller.signal, NO_STREAM, pushes, logger),
      )) === true
    );
  } catch {
    return false;
  }
}

/**
 * Runs a stream function over `io`. The handler writes through `ctx.stream` or returns an async
 * iterable; a non-iterable return value other than undefined becomes the last chunk. The
 * returned CreditStream takes the gateway's credit grants and cancels.
 */
export function runStream(
  fn: ResolvedFunction,
  args: Record<string, unknown>,
  meta: RequestMeta,
  io: StreamIO,
  initialCredit: number,
  creditTimeoutMs = 0,
  pushes: Broadcaster = NO_PUSHES,
  logger: Logger = SILENT,
): { stream: CreditStream; controller: AbortController; done: Promise<void> } {
  const controller = new AbortController();
  const stream = new CreditStream(
    io,
    initialCredit,
    fn.definition.startResult ?? 'started',
    creditTimeoutMs,
  );
  // Start on the next turn unless the handler already failed: an immediate error is a start
  // error, and otherwise the gateway learns the control subject (and starts its idle timer) at
  // once, even if the first chunk takes a while.
  setImmediate(() => {
    if (!stream.closed) stream.ensureStarted();
  });
  const done = (async () => {
    try {
      const result: unknown = await fn.definition.handler(
        args,
        context(meta, controller.signal, stream, pushes, logger),
      );
      if (isAsyncIterable(result)) {
        for await (const chunk of result) {
          if (stream.closed) break;
          await stream.write(chunk);
        }
        await stream.end();
      } else if (!stream.closed) {
        if (result === undefined) await stream.end();
        else await stream.last(result);
      }
    } catch (err) {
      if (err instanceof StreamClosedError && stream.closed) return;
      const { error, code } = errorOf(err);
      try {
        stream.fail(error, code);
      } catch {
        // The transport is gone (e.g. the connection closed): nobody is left to tell.
      }
    }
  })();
  return { stream, controller, done };
}

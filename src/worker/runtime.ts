import type { RequestContext, RequestMeta } from './context.js';
import { ServiceError, type ResolvedFunction } from './define.js';
import { CreditStream, StreamClosedError, type StreamIO, type StreamWriter } from './stream.js';

/** A handler's outcome, as a transport replies it. */
export type CallResult = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: string; readonly code: number };

const NO_STREAM: StreamWriter = {
  closed: true,
  write: () => Promise.reject(new StreamClosedError('not a stream function')),
  last: () => Promise.reject(new StreamClosedError('not a stream function')),
  end: () => Promise.resolve(),
};

function errorOf(err: unknown): { error: string; code: number } {
  if (err instanceof ServiceError) return { error: err.message, code: err.code };
  if (err instanceof Error) return { error: err.message || err.name, code: 500 };
  return { error: String(err), code: 500 };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

function context(meta: RequestMeta, signal: AbortSignal, stream: StreamWriter): RequestContext {
  return { ...meta, signal, stream };
}

/** The code of a call that ran out of time: the gateway treats it like its own timeout. */
export const DEADLINE_CODE = 504;

/**
 * Runs a sync/async/none function. Aborts its signal at the deadline; a handler that settles
 * after that (typically because it honoured the signal) reports 504, not a failure of its own.
 */
export async function runCall(fn: ResolvedFunction, args: Record<string, unknown>, meta: RequestMeta, signal?: AbortSignal): Promise<CallResult> {
  const controller = new AbortController();
  const forward = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error('deadline exceeded'));
  }, Math.max(0, meta.deadline - Date.now()));
  try {
    const result = await fn.definition.handler(args as never, context(meta, controller.signal, NO_STREAM));
    if (expired) return { ok: false, error: 'deadline exceeded', code: DEADLINE_CODE };
    return { ok: true, result: result === undefined ? null : result };
  } catch (err) {
    if (expired) return { ok: false, error: 'deadline exceeded', code: DEADLINE_CODE };
    return { ok: false, ...errorOf(err) };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', forward);
  }
}

/** Runs a permission check (`authorize`); anything but `true` — including a throw — denies. */
export async function runAuthorize(fn: ResolvedFunction, args: Record<string, unknown>, meta: RequestMeta): Promise<boolean> {
  const authorize = fn.definition.authorize;
  if (!authorize) return false;
  const controller = new AbortController();
  try {
    return (await authorize(args as never, context(meta, controller.signal, NO_STREAM))) === true;
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
): { stream: CreditStream; controller: AbortController; done: Promise<void> } {
  const controller = new AbortController();
  const stream = new CreditStream(io, initialCredit, fn.definition.startResult ?? 'started', creditTimeoutMs);
  // Start on the next turn unless the handler already failed: an immediate error is a start
  // error, and otherwise the gateway learns the control subject (and starts its idle timer) at
  // once, even if the first chunk takes a while.
  setImmediate(() => {
    if (!stream.closed) stream.ensureStarted();
  });
  const done = (async () => {
    try {
      const result: unknown = await fn.definition.handler(args as never, context(meta, controller.signal, stream));
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

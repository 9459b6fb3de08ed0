/**
 * The one place tests wait. Every wait is for an event or a condition, with a deadline that is
 * generous on a loaded 2-core machine and a label that says what did not happen.
 *
 * - `until(probe, label)`: poll a condition until it holds; resolves with the probe's value.
 * - `eventually(assertion, label)`: retry an assertion (expect…) until it passes.
 * - `once(emitter, event, label)`: the next event of a Node EventEmitter.
 * - `deferred<T>()`: a promise and its resolve/reject, to turn a callback into an awaitable event.
 * - `realTime(ms, why)`: the only sleep. Use it only where a real process (nats-server, a child
 *   gateway or worker) must act on its own clock and there is no event to wait for, or where a test
 *   must show that something does NOT happen within a span. Never to order events.
 *
 * Deadlines are not test assertions on speed: a wait that times out is a failure because the event
 * never came, and the defaults are long on purpose.
 */
import { once as onceEvent, type EventEmitter } from 'node:events';

/** Default deadline for waits on in-process events. Long: a loaded machine must not fail a test. */
export const WAIT_MS = 10_000;
/** Default poll interval. */
const POLL_MS = 10;

export type Label = string | (() => string);

function describe(label: Label): string {
  return typeof label === 'string' ? label : label();
}

export interface WaitOptions {
  /** Give up after this many ms. Default `WAIT_MS` (10 s). */
  timeoutMs?: number;
  /** Poll every this many ms. Default 10. */
  intervalMs?: number;
}

function optionsOf(options: number | WaitOptions | undefined): Required<WaitOptions> {
  if (typeof options === 'number') return { timeoutMs: options, intervalMs: POLL_MS };
  return { timeoutMs: options?.timeoutMs ?? WAIT_MS, intervalMs: options?.intervalMs ?? POLL_MS };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves with `probe()`'s value once it is truthy (sync or async probe); rejects with
 * "timed out waiting for <label>" after the deadline. A probe that throws fails at once.
 */
export async function until<T>(
  probe: () => T | Promise<T>,
  label: Label,
  options?: number | WaitOptions,
): Promise<NonNullable<T>> {
  const { timeoutMs, intervalMs } = optionsOf(options);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false && value !== 0 && value !== '') {
      return value;
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe(label)}`);
    }
    await pause(intervalMs);
  }
}

/**
 * Runs `assertion` until it stops throwing; after the deadline rethrows its last error, prefixed
 * with the label. For `expect(...)` checks on state that converges (cluster views, counters).
 */
export async function eventually<T>(
  assertion: () => T | Promise<T>,
  label: Label,
  options?: number | WaitOptions,
): Promise<T> {
  const { timeoutMs, intervalMs } = optionsOf(options);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (performance.now() > deadline) {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`${describe(label)}: still failing after ${timeoutMs} ms: ${message}`, {
          cause: error,
        });
      }
    }
    await pause(intervalMs);
  }
}

/** The next `event` of `emitter` (its arguments), or a labelled timeout. */
export async function once(
  emitter: EventEmitter,
  event: string | symbol,
  label: Label,
  timeoutMs = WAIT_MS,
): Promise<unknown[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const args: unknown[] = await onceEvent(emitter, event, { signal });
    return args;
  } catch (error) {
    if (signal.aborted) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe(label)}`, {
        cause: error,
      });
    }
    throw error;
  }
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A promise with its settle functions, for turning a callback into an event a test can await. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** `promise`, or a labelled rejection after `timeoutMs`. */
export async function within<T>(
  promise: Promise<T>,
  label: Label,
  timeoutMs = WAIT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${describe(label)}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A real-time pause, for a real process's own clock or a span in which something must NOT happen.
 * `why` is required so every use says which of those it is; `grep -rn "realTime(" test` counts them.
 */
export function realTime(ms: number, why: string): Promise<void> {
  void why;
  return pause(ms);
}

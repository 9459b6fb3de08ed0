/**
 * Services for the gen_api fault and stream tests, defined with the worker SDK and instrumented
 * through a probe: what each handler saw, wrote and when it was told to stop (measured in the
 * handler itself, with performance.now(), so tests compare it with when the client acted).
 */
// The handlers' own work and pace (what a worker does), not waits of a test.
import { setTimeout as work } from 'node:timers/promises';
import {
  defineService,
  fn,
  ServiceError,
  type ServiceDefinition,
} from '../../src/worker/define.js';
import { StreamClosedError } from '../../src/worker/stream.js';
import type { RequestContext } from '../../src/worker/context.js';

export interface StreamProbe {
  /** Chunks each stream's handler has handed to ctx.stream.write (resolved writes), by request id. */
  readonly written: Map<string, number>;
  /** When each handler first learned it was stopped (signal abort or StreamClosedError), by request id. */
  readonly stopped: Map<string, { at: number; how: 'signal' | 'closed' }>;
  /** When each handler started, by request id. */
  readonly started: Map<string, number>;
  /** Writes that threw something other than StreamClosedError, by request id. */
  readonly writeErrors: Map<string, unknown>;
}

export function streamProbe(): StreamProbe {
  return { written: new Map(), stopped: new Map(), started: new Map(), writeErrors: new Map() };
}

/** Records the first moment the handler learns it must stop. */
function watchStop(probe: StreamProbe, ctx: RequestContext): (how: 'signal' | 'closed') => void {
  const mark = (how: 'signal' | 'closed') => {
    if (!probe.stopped.has(ctx.requestId))
      probe.stopped.set(ctx.requestId, { at: performance.now(), how });
  };
  if (ctx.signal.aborted) mark('signal');
  else ctx.signal.addEventListener('abort', () => mark('signal'), { once: true });
  return mark;
}

/**
 * The `streams` service:
 * - `ticks {n, interval_ms}`: chunks 1..n, then the end marker;
 * - `flood {n, size}`: n chunks of about `size` bytes as fast as credit allows;
 * - `endless {interval_ms}`: chunks until stopped;
 * - `stall`: one chunk, then nothing (timeout 300 ms): the gateway must time it out;
 * - `silent`: nothing at all until stopped (timeout 300 ms);
 * - `boom`: throws before writing; `boom_later`: two chunks, then throws;
 * - `finale`: chunks 1, 2 and returns `{done: true}` (the last chunk).
 */
export function streamService(probe: StreamProbe, name = 'streams'): ServiceDefinition {
  return defineService({
    name,
    version: '1.0.0',
    functions: {
      ticks: fn({
        response: 'stream',
        args: { n: 'num', interval_ms: { type: 'num', default_value: 0 } },
        timeout: 5000,
        async handler({ n, interval_ms }, ctx) {
          probe.started.set(ctx.requestId, performance.now());
          const mark = watchStop(probe, ctx);
          for (let i = 1; i <= n; i++) {
            if (interval_ms > 0) await work(interval_ms, undefined, { signal: ctx.signal });
            try {
              await ctx.stream.write(i);
            } catch (err) {
              if (err instanceof StreamClosedError) mark('closed');
              else probe.writeErrors.set(ctx.requestId, err);
              throw err;
            }
            probe.written.set(ctx.requestId, i);
          }
        },
      }),
      flood: fn({
        response: 'stream',
        args: { n: 'num', size: 'num' },
        timeout: 10000,
        async handler({ n, size }, ctx) {
          probe.started.set(ctx.requestId, performance.now());
          const pad = 'x'.repeat(size);
          for (let i = 1; i <= n; i++) {
            await ctx.stream.write({ i, pad });
            probe.written.set(ctx.requestId, i);
          }
        },
      }),
      endless: fn({
        response: 'stream',
        args: { interval_ms: { type: 'num', default_value: 20 } },
        timeout: 10000,
        async handler({ interval_ms }, ctx) {
          probe.started.set(ctx.requestId, performance.now());
          const mark = watchStop(probe, ctx);
          for (let i = 1; ; i++) {
            try {
              await ctx.stream.write(i);
            } catch (err) {
              if (err instanceof StreamClosedError) mark('closed');
              else probe.writeErrors.set(ctx.requestId, err);
              throw err;
            }
            probe.written.set(ctx.requestId, i);
            await work(interval_ms, undefined, { signal: ctx.signal });
          }
        },
      }),
      stall: fn({
        response: 'stream',
        timeout: 300,
        async handler(_args, ctx) {
          probe.started.set(ctx.requestId, performance.now());
          watchStop(probe, ctx);
          await ctx.stream.write(1);
          probe.written.set(ctx.requestId, 1);
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        },
      }),
      silent: fn({
        response: 'stream',
        timeout: 300,
        async handler(_args, ctx) {
          probe.started.set(ctx.requestId, performance.now());
          watchStop(probe, ctx);
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        },
      }),
      boom: fn({
        response: 'stream',
        handler() {
          throw new ServiceError('kaput');
        },
      }),
      boom_later: fn({
        response: 'stream',
        async handler(_args, ctx) {
          await ctx.stream.write(1);
          await ctx.stream.write(2);
          throw new ServiceError('kaput later');
        },
      }),
      finale: fn({
        response: 'stream',
        async handler(_args, ctx) {
          await ctx.stream.write(1);
          await ctx.stream.write(2);
          return { done: true };
        },
      }),
    },
  });
}

/**
 * The `slowsvc` service (one definition per worker so each counts its own calls):
 * - `slow {ms}` (timeout `timeoutMs`): sleeps, then returns who served it;
 * - `echo {message}`: returns the message and who served it.
 */
export function slowService(
  label: string,
  counter: { calls: number; inflight: number },
  timeoutMs = 4000,
): ServiceDefinition {
  return defineService({
    name: 'slowsvc',
    version: '1.0.0',
    functions: {
      slow: fn({
        args: { ms: 'num' },
        timeout: timeoutMs,
        async handler({ ms }, ctx) {
          counter.calls++;
          counter.inflight++;
          try {
            await work(ms, undefined, { signal: ctx.signal });
          } finally {
            counter.inflight--;
          }
          return { slept: ms, by: label };
        },
      }),
      echo: fn({
        args: { message: 'string' },
        handler({ message }) {
          counter.calls++;
          return { message, by: label };
        },
      }),
    },
  });
}

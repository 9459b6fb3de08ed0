/**
 * A benchmark worker process: the `bench` service on NATS (BENCH_NATS_URL) with the worker SDK.
 * - `echo` (sync): returns its args;
 * - `stream` (stream): `chunks` chunks `{seq, t}` every `interval_ms`; when a stream is cancelled
 *   it tells the bench process when (epoch ms, high resolution), to time cancel propagation.
 * A raw NATS echo responder on `bench.raw.echo` (the same process and connection) is the
 * baseline of gen_api requests.
 */
// The stream's pacer: a chunk waits for its due time (cancellable through the request's signal).
import { setTimeout as pace } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { emit, serveCommands } from '../lib/ipc.js';
import { productModule } from '../lib/product.js';
import { profilingCommands } from '../lib/profiling.js';
import type * as WorkerDefineModule from '../../../src/worker/define.js';
import type * as WorkerNatsModule from '../../../src/worker/nats.js';
import type * as LogLoggerModule from '../../../src/log/logger.js';

// The worker SDK from dist/ when the runner built it, else from src/ (see lib/product.ts).
const { defineService, fn } = (await import(
  productModule('worker/define.js')
)) as typeof WorkerDefineModule;
const { serve } = (await import(productModule('worker/nats.js'))) as typeof WorkerNatsModule;
const { createLogger } = (await import(productModule('log/logger.js'))) as typeof LogLoggerModule;

const epochMs = (): number => performance.timeOrigin + performance.now();

let served = 0;
let cancelled = 0;
const cancels: { requestId: string; at: number }[] = [];

// BENCH_SERVICE renames the service (e.g. a "ghost" service whose worker is then stopped).
export const benchService = defineService({
  name: process.env.BENCH_SERVICE ?? 'bench',
  version: '1.0.0',
  functions: {
    echo: fn({
      handler: (args) => {
        served++;
        return args;
      },
    }),
    stream: fn({
      response: 'stream',
      args: { chunks: 'num', interval_ms: 'num' },
      timeout: 10_000,
      async handler({ chunks, interval_ms }, ctx) {
        const onAbort = () => {
          cancelled++;
          cancels.push({ requestId: ctx.requestId, at: epochMs() });
        };
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        try {
          // Paced against the start, so a slow tick does not stretch the stream.
          const started = performance.now();
          for (let seq = 1; seq <= chunks; seq++) {
            const due = started + seq * interval_ms - performance.now();
            if (due > 0) await pace(due, undefined, { signal: ctx.signal });
            await ctx.stream.write({ seq, t: epochMs() });
          }
        } catch (err) {
          if (!ctx.signal.aborted) throw err;
        } finally {
          ctx.signal.removeEventListener('abort', onAbort);
        }
      },
    }),
  },
});

const nc = await connect({
  servers: process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222',
  name: 'bench worker',
});
const raw = nc.subscribe('bench.raw.echo', {
  queue: 'bench',
  callback: (err, msg) => {
    if (!err) msg.respond(msg.data);
  },
});
const running = await serve(benchService, { nats: nc, logger: createLogger({ level: 'error' }) });

serveCommands(
  {
    counts: () => ({ served, cancelled }),
    /** Cancel times recorded since the last call. */
    takeCancels: () => cancels.splice(0),
    ...profilingCommands(),
  },
  async () => {
    raw.unsubscribe();
    await running.stop();
    await nc.drain();
  },
);

emit('ready', { id: running.id, pid: process.pid });

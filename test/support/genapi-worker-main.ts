/**
 * A worker process for fault tests (run with tsx by test/support/genapi-worker-process.ts): serves
 * `streams` or `slowsvc` (test/support/genapi-services.ts) with the SDK on NATS_URL, so a test
 * can SIGKILL a real process. It prints JSON lines: `ready` (with the instance id), `call` when a
 * handler starts (request id, request type), `settled` when it returned or threw, `connection
 * closed`, `alive` (on SIGWINCH, with the chunks written per stream). Signals: SIGUSR2 closes the
 * NATS connection abruptly but keeps the process running (it must survive that); SIGTERM stops
 * gracefully.
 */
import { connect } from '@nats-io/transport-node';
import { serve } from '../../src/worker/nats.js';
import { defineService, type FunctionDefinition } from '../../src/worker/define.js';
import { slowService, streamProbe, streamService } from './genapi-services.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const kind = process.env.WORKER_SERVICE ?? 'slowsvc';
const label = process.env.WORKER_LABEL ?? 'worker';
const line = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ msg, label, ...fields })}\n`);

const probe = streamProbe();
const base =
  kind === 'streams'
    ? streamService(probe)
    : slowService(label, { calls: 0, inflight: 0 }, Number(process.env.WORKER_TIMEOUT ?? 4000));
// Wrap every handler to report when it starts.
const functions: Record<string, FunctionDefinition> = {};
for (const fn of base.functions.values()) {
  const definition = fn.definition;
  functions[fn.requestType] = {
    ...definition,
    handler: async (args, ctx) => {
      line('call', { request_id: ctx.requestId, request_type: fn.requestType });
      try {
        return await definition.handler(args, ctx);
      } finally {
        line('settled', { request_id: ctx.requestId });
      }
    },
  };
}
const service = defineService({ name: base.name, version: base.version, functions });

const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
const running = await serve(service, { nats: nc, pushTimeoutMs: 300 });
line('ready', { id: running.id, acks: running.startupAcks.length });

// Like a real worker process, live on after losing NATS (until told to stop).
setInterval(() => undefined, 60_000);

// SIGWINCH (harmless by default) asks for a sign of life: a test sends it after an event it
// expects the process to survive, and waits for the line.
// The line carries the chunks each stream handler has written so far (streams service).
let answered = 0;
process.on('SIGWINCH', () =>
  line('alive', { n: ++answered, written: Object.fromEntries(probe.written) }),
);

process.on('SIGUSR2', () => {
  nc.close().then(
    () => line('connection closed'),
    (err: unknown) => line('close failed', { error: String(err) }),
  );
});
process.on('SIGTERM', () => {
  running
    .stop()
    .then(() => nc.close())
    .then(
      () => process.exit(0),
      (err: unknown) => {
        line('stop failed', { error: String(err) });
        process.exit(1);
      },
    );
});

/**
 * A worker process run by `runWorker` (as the README's worker is), for lifecycle tests: serves
 * `holder` on NATS_URL with
 * - `hold`: logs `held` (request id, label), then answers `{ released: label }` once the test
 *   publishes on `release.<request_id>`, so a test decides when an in-flight call ends;
 * - `echo`: answers its args with the label.
 * MAX_RECONNECTS limits the connection's reconnect attempts (what nats.js's defaults do: the
 * README worker of issue 14 lost its connection for good that way); unset, runWorker connects
 * itself and reconnects for ever. DRAIN_MS sets drainTimeoutMs. RUNWORKER_CONNECTS=1 lets runWorker
 * connect by itself (from NATS_URL, waiting for a server that is not up yet); `hold` then needs
 * the test's own connection and is not used.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { defineService, fn } from '../../src/worker/define.js';
import { runWorker } from '../../src/worker/run.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const label = process.env.WORKER_LABEL ?? 'worker';
const maxReconnects = process.env.MAX_RECONNECTS;

const selfConnect = process.env.RUNWORKER_CONNECTS === '1';
const nc: NatsConnection | null = selfConnect
  ? null
  : await connect({
      servers: url,
      name: `holder-${label}`,
      maxReconnectAttempts: maxReconnects === undefined ? -1 : Number(maxReconnects),
      reconnectTimeWait: 100,
    });

const holder = defineService({
  name: 'holder',
  version: '1.0.0',
  functions: {
    hold: fn({
      timeout: 20_000,
      async handler(_args, ctx) {
        if (nc === null) throw new Error('hold needs the test connection');
        const release = nc.subscribe(`release.${ctx.requestId}`, { max: 1 });
        await nc.flush();
        process.stdout.write(`${JSON.stringify({ msg: 'held', label, id: ctx.requestId })}\n`);
        for await (const _ of release) break;
        return { released: label };
      },
    }),
    echo: fn({ handler: (args) => ({ ...args, from: label }) }),
  },
});

await runWorker(holder, {
  ...(nc === null ? {} : { nats: nc }),
  pushTimeoutMs: 300,
  ...(process.env.DRAIN_MS ? { drainTimeoutMs: Number(process.env.DRAIN_MS) } : {}),
});

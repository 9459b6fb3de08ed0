/**
 * A benchmark auth worker: the `benchauth` auth service (`defineAuthService` + `serveAuth`) on
 * NATS at BENCH_NATS_URL, for the `auth` suite's `worker` strategy. A token `u<n>` is user `u<n>`;
 * anything else is refused. The decision is trivial on purpose: the suite measures what the
 * round trip costs the gateway, not a user lookup.
 */
import { connect } from '@nats-io/transport-node';
import { emit, serveCommands } from '../lib/ipc.js';
import { productModule } from '../lib/product.js';
import type * as WorkerAuthModule from '../../../src/worker/auth.js';
import type * as LogLoggerModule from '../../../src/log/logger.js';

// The worker SDK from dist/ when the runner built it, else from src/ (see lib/product.ts).
const { defineAuthService, serveAuth } = (await import(
  productModule('worker/auth.js')
)) as typeof WorkerAuthModule;
const { createLogger } = (await import(productModule('log/logger.js'))) as typeof LogLoggerModule;

/** The token shape this worker accepts. */
const USER_TOKEN = /^u\d+$/;
let answered = 0;

const service = defineAuthService({
  name: process.env.BENCH_AUTH_SERVICE ?? 'benchauth',
  version: '1.0.0',
  authenticate: ({ token }) => {
    answered++;
    return token !== null && USER_TOKEN.test(token) ? { userId: token } : null;
  },
});

const nc = await connect({
  servers: process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222',
  name: 'bench auth worker',
});
const running = await serveAuth(service, { nats: nc, logger: createLogger({ level: 'error' }) });

serveCommands({ counts: () => ({ answered }) }, async () => {
  await running.stop();
  await nc.drain();
});

emit('ready', { id: running.id, pid: process.pid });

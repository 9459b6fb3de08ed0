#!/usr/bin/env node
/**
 * `npm run worker:demo`: serves the demo service over NATS (NATS_URL, default
 * nats://127.0.0.1:4222; credentials and TLS from NATS_CREDS, NATS_USER/NATS_PASS, NATS_TOKEN,
 * NATS_NKEY_SEED, NATS_CA/NATS_CERT/NATS_KEY, NATS_INBOX_PREFIX; GENAPI_PUSH_TOKEN signs its
 * configs for gateways with `genApi.pushToken`). Start gateways with
 * `gen-gateway --demo --nats <url>` to use it; `announce` broadcasts over this worker's connection to the rooms of every gateway.
 */
import { createLogger } from '../log/logger.js';
import { serve } from '../worker/nats.js';
import { connectWorker, workerConnectOptionsFromEnv } from '../worker/connect.js';
import { demoService } from './service.js';

const logger = createLogger({ name: 'demo-worker' });
const options = { ...workerConnectOptionsFromEnv(process.env), service: demoService.name };
const nc = await connectWorker(options);
const url = nc.getServer();
const running = await serve(demoService, {
  nats: nc,
  logger,
  ...(process.env.GENAPI_PREFIX ? { prefix: process.env.GENAPI_PREFIX } : {}),
  // The gateways' genApi.pushToken, when they have one (examples/secure).
  ...(process.env.GENAPI_PUSH_TOKEN ? { pushToken: process.env.GENAPI_PUSH_TOKEN } : {}),
});
logger.info({ url, id: running.id, gateways: running.startupAcks.length }, 'demo worker ready');

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    running
      .stop()
      .then(() => nc.drain())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'demo worker did not stop cleanly');
          process.exit(1);
        },
      );
  });
}

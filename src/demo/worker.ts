#!/usr/bin/env node
/**
 * `npm run worker:demo`: serves the demo service over NATS (NATS_URL, default
 * nats://127.0.0.1:4222). Start gateways with `gen-gateway --demo --nats <url>` to use it;
 * `announce` broadcasts over this worker's connection to the rooms of every gateway.
 */
import { connect } from '@nats-io/transport-node';
import { createLogger } from '../log/logger.js';
import { serve } from '../worker/nats.js';
import { demoService } from './service.js';

const logger = createLogger({ name: 'demo-worker' });
const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const nc = await connect({
  servers: url,
  name: 'gen-gateway demo worker',
  maxReconnectAttempts: -1,
  waitOnFirstConnect: true,
});
const running = await serve(demoService, {
  nats: nc,
  logger,
  ...(process.env.GENAPI_PREFIX ? { prefix: process.env.GENAPI_PREFIX } : {}),
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

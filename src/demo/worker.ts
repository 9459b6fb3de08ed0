#!/usr/bin/env node
/**
 * `npm run worker:demo`: serves the demo service over NATS (NATS_URL, default
 * nats://127.0.0.1:4222; credentials and TLS from NATS_CREDS, NATS_USER/NATS_PASS, NATS_TOKEN,
 * NATS_NKEY_SEED, NATS_CA/NATS_CERT/NATS_KEY, NATS_INBOX_PREFIX; GENAPI_PUSH_TOKEN signs its
 * configs for gateways with `genApi.pushToken`; WORKER_METRICS_PORT serves Prometheus metrics on
 * 127.0.0.1:<port>/metrics). Start gateways with `gen-gateway --demo --nats <url>` to use it;
 * `announce` broadcasts over this worker's connection to the rooms of every gateway.
 *
 * `runWorker` owns the process: it waits for NATS and reconnects for ever, drains on
 * SIGTERM/SIGINT (exit 0; a second signal exits at once) and exits 1 if the service ever ends
 * otherwise.
 */
import { createLogger } from '../log/logger.js';
import { connectWorker, workerConnectOptionsFromEnv } from '../worker/connect.js';
import { runWorker } from '../worker/run.js';
import { demoService } from './service.js';

const logger = createLogger({ name: 'demo-worker' });
const metricsPort = process.env.WORKER_METRICS_PORT;
// Connected here (runWorker could do it) to log the server it reached.
const nc = await connectWorker({ ...workerConnectOptionsFromEnv(), service: demoService.name });
const running = await runWorker(demoService, {
  nats: nc,
  logger,
  ...(process.env.GENAPI_PREFIX ? { prefix: process.env.GENAPI_PREFIX } : {}),
  // The gateways' genApi.pushToken, when they have one (examples/secure).
  ...(process.env.GENAPI_PUSH_TOKEN ? { pushToken: process.env.GENAPI_PUSH_TOKEN } : {}),
  ...(metricsPort ? { metrics: { port: Number(metricsPort) } } : {}),
});
logger.info(
  {
    url: nc.getServer(),
    id: running.id,
    gateways: running.startupAcks.length,
    ...(running.metrics?.url ? { metrics: running.metrics.url } : {}),
  },
  'demo worker ready',
);

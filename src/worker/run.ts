import type { NatsConnection } from '@nats-io/nats-core';
import { withDeadline } from '../util/deadline.js';
import type { Logger } from 'pino';
import { createLogger } from '../log/logger.js';
import {
  connectWorker,
  workerConnectOptionsFromEnv,
  type WorkerConnectOptions,
} from './connect.js';
import type { ServiceDefinition } from './define.js';
import { serve, type RunningService, type ServeOptions } from './nats.js';

/** Options of `runWorker`: those of `serve` (but `nats`, given or made here) plus the process's. */
export interface RunWorkerOptions extends Omit<ServeOptions, 'nats' | 'logger'> {
  /**
   * Where and as whom to connect (`connectWorker`). Default: `workerConnectOptionsFromEnv()`
   * (NATS_URL, NATS_CREDS, …), the connection named after the service.
   */
  connect?: WorkerConnectOptions;
  /** An open connection to use instead; runWorker closes it when the worker ends. */
  nats?: NatsConnection;
  /** A pino logger. Default: JSON lines on stdout (level LOG_LEVEL, else info), name `worker-<service>`. */
  logger?: Logger;
  /** Signals that drain the worker; a second one exits at once. Default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
}

/** The defaults of `runWorker`. */
export const RUN_WORKER_DEFAULTS = {
  signals: ['SIGTERM', 'SIGINT'] as readonly NodeJS.Signals[],
  /** How long closing the NATS connection after the drain may take before it is cut. */
  closeTimeoutMs: 2_000,
  /** While NATS is not there at start, "waiting for NATS" is logged this often. */
  waitLogIntervalMs: 5_000,
} as const;

/** Flushes and closes `nc`, or cuts it when that does not finish in time (NATS down). */
async function closeConnection(nc: NatsConnection): Promise<void> {
  if (nc.isClosed()) return;
  await withDeadline(
    nc.drain().catch(() => undefined),
    RUN_WORKER_DEFAULTS.closeTimeoutMs,
    () => undefined,
  );
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}

/**
 * Runs a worker process: connects to NATS (waiting for it, reconnecting for ever), serves
 * `definition`, and owns the process's end:
 * - on SIGTERM/SIGINT it drains (`running.drain()`: new calls refused, in-flight ones finished
 *   within `drainTimeoutMs`), closes the connection and exits 0; a second signal exits 1 at once;
 * - when the service ends any other way (the connection closed for good, credentials revoked, the
 *   Services API stopped it) it logs why and exits 1, so a supervisor restarts it;
 * - a connection refused at start (auth, TLS, credentials file) is logged and exits 1.
 * Resolves with the running service once it serves.
 */
export async function runWorker(
  definition: ServiceDefinition,
  options: RunWorkerOptions = {},
): Promise<RunningService> {
  const logger = options.logger ?? createLogger({ name: `worker-${definition.name}` });
  const { connect, nats, signals, ...serveOptions } = options;
  let phase: 'connecting' | 'serving' | 'stopping' = 'connecting';
  let running: RunningService | null = null;
  let nc: NatsConnection | null = nats ?? null;

  const exit = (code: number): never => process.exit(code);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (phase === 'stopping') {
      logger.warn({ signal }, 'second signal: exiting at once');
      exit(1);
    }
    if (phase === 'connecting' || running === null) {
      logger.info({ signal }, 'signal before serving: exiting');
      exit(0);
      return;
    }
    phase = 'stopping';
    logger.info({ signal }, 'signal: draining the worker');
    const current = running;
    current
      .drain()
      .then(() => (nc ? closeConnection(nc) : undefined))
      .then(
        () => {
          logger.info('worker drained: exiting 0');
          exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'worker drain failed');
          exit(1);
        },
      );
  };
  for (const signal of signals ?? RUN_WORKER_DEFAULTS.signals) process.on(signal, onSignal);

  if (nc === null) {
    const connectOptions = connect ?? workerConnectOptionsFromEnv();
    const servers = connectOptions.servers ?? 'nats://127.0.0.1:4222';
    logger.info({ servers }, 'connecting to NATS');
    const startedAt = Date.now();
    const waiting = setInterval(
      () => logger.warn({ servers, waitedMs: Date.now() - startedAt }, 'still waiting for NATS'),
      RUN_WORKER_DEFAULTS.waitLogIntervalMs,
    );
    try {
      nc = await connectWorker({ service: definition.name, ...connectOptions });
    } catch (err) {
      logger.fatal({ err }, 'cannot connect to NATS: exiting 1');
      return exit(1);
    } finally {
      clearInterval(waiting);
    }
  }

  try {
    running = await serve(definition, { ...serveOptions, nats: nc, logger });
  } catch (err) {
    logger.fatal({ err }, 'cannot serve: exiting 1');
    return exit(1);
  }
  phase = phase === 'connecting' ? 'serving' : phase;
  running.closed.then(
    () => undefined,
    (err: unknown) => {
      logger.fatal({ err }, 'worker stopped unexpectedly: exiting 1');
      exit(1);
    },
  );
  logger.info({ id: running.id, server: nc.getServer() }, 'worker serving');
  return running;
}

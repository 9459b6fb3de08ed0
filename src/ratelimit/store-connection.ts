import { connect } from '@nats-io/transport-node';
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';

/** The strict store's own NATS connection (`rateLimits.strict.servers`), and whether it is up. */
export async function connectStore(
  servers: string | string[],
  /** The gateway's credential, TLS and inbox options (natsClientOptions). */
  credentials: ConnectionOptions,
  logger: Logger,
): Promise<{ nc: NatsConnection; connected: () => boolean }> {
  const nc = await connect({
    servers,
    name: 'gen-gateway rate-limit store',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    ...credentials,
  });
  return { nc, connected: watchConnected(nc, logger) };
}

/** Tracks whether a connection is up (for a store connection of its own). */
function watchConnected(nc: NatsConnection, logger: Logger): () => boolean {
  let up = true;
  let watching = true;
  (async () => {
    for await (const event of nc.status()) {
      if (event.type === 'disconnect' || event.type === 'close') up = false;
      else if (event.type === 'reconnect') up = true;
    }
  })().catch((err: unknown) => {
    // Without status events only a closed connection is known: report that alone from now on.
    watching = false;
    logger.error({ err }, 'rate-limit store connection watch failed');
  });
  return () => (watching ? up : true) && !nc.isClosed();
}

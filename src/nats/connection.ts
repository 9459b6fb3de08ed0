import type { ConnectionOptions } from '@nats-io/nats-core';

/**
 * Where a gateway connects to NATS and as whom: shared by its gen_api link
 * (`genApi.connectNats`) and its cluster connection (`gateway.connectCluster`).
 */
export interface NatsConnectionOptions {
  /** NATS server URL(s), e.g. "nats://127.0.0.1:4222". */
  servers: string | string[];
  /** Subject prefix shared with the other gateways and the workers. Default "genapi". */
  prefix?: string;
  /** NATS user. */
  user?: string;
  /** NATS password. */
  pass?: string;
  /** NATS token. */
  token?: string;
  /** Delay between reconnect attempts (jittered by the client). Default 250 ms. */
  reconnectTimeWaitMs?: number;
}

/**
 * nats.js options for a gateway connection named `name`: it waits for the first connect and then
 * reconnects for ever (requests fail fast while it is down; the gateway keeps serving).
 */
export function gatewayConnectOptions(
  options: NatsConnectionOptions,
  name: string,
): ConnectionOptions {
  return {
    servers: options.servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
    waitOnFirstConnect: true,
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.pass === undefined ? {} : { pass: options.pass }),
    ...(options.token === undefined ? {} : { token: options.token }),
  };
}

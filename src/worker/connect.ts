import type { NatsConnection } from '@nats-io/nats-core';
import {
  connectNats,
  natsClientOptions,
  type NatsCredentials,
  type NatsTlsOptions,
} from '../nats/connection.js';

/**
 * Options of `connectWorker`: where the worker's NATS is, as whom (the gateway's credential and TLS
 * settings: `user`/`pass`, `token`, `nkeySeed`/`nkeySeedFile`, `credsFile`, `tls`) and its inbox
 * prefix.
 */
export interface WorkerConnectOptions extends NatsCredentials {
  /** NATS server URL(s). Default "nats://127.0.0.1:4222". */
  servers?: string | string[];
  /** The service this worker serves: names the connection `genapi-worker-<service>`. */
  service?: string;
  /** The connection's name as servers show it. Default `genapi-worker-<service>` (or `genapi-worker`). */
  name?: string;
  /** Delay between reconnect attempts (jittered by the client). Default 250 ms. */
  reconnectTimeWaitMs?: number;
}

/** Defaults of `connectWorker` (it also reconnects for ever and waits for the first connect). */
export const WORKER_CONNECT_DEFAULTS = {
  servers: 'nats://127.0.0.1:4222',
  reconnectTimeWaitMs: 250,
} as const;

/**
 * Connects a worker to NATS for `serve(service, { nats })`: it waits for the first connect (a
 * worker may start before NATS), then reconnects for ever. Rejects with InvalidArgumentError for
 * contradicting credentials and NatsConnectError when the server refuses them (`reason` `auth`),
 * TLS fails (`tls`) or a credentials file cannot be read (`credentials`).
 */
export async function connectWorker(options: WorkerConnectOptions = {}): Promise<NatsConnection> {
  const name =
    options.name ??
    (options.service === undefined ? 'genapi-worker' : `genapi-worker-${options.service}`);
  return connectNats(
    {
      servers: options.servers ?? WORKER_CONNECT_DEFAULTS.servers,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectTimeWaitMs ?? WORKER_CONNECT_DEFAULTS.reconnectTimeWaitMs,
      waitOnFirstConnect: true,
      ...natsClientOptions(options),
    },
    name,
  );
}

/**
 * Worker connect options from environment variables: `NATS_URL` (comma-separated URLs),
 * `NATS_CREDS` (a `.creds` file), `NATS_USER` + `NATS_PASS`, `NATS_TOKEN`, `NATS_NKEY_SEED` (the
 * seed itself), `NATS_CA`, `NATS_CERT` + `NATS_KEY` (PEM files; any of them turns TLS on) and
 * `NATS_INBOX_PREFIX`. Empty variables count as unset; contradictions are reported by
 * `connectWorker`.
 */
export function workerConnectOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): WorkerConnectOptions {
  const value = (key: string): string | undefined => {
    const raw = env[key]?.trim();
    return raw === undefined || raw === '' ? undefined : raw;
  };
  const url = value('NATS_URL');
  const tls: NatsTlsOptions = {};
  const ca = value('NATS_CA');
  const cert = value('NATS_CERT');
  const key = value('NATS_KEY');
  if (ca !== undefined) tls.caFile = ca;
  if (cert !== undefined) tls.certFile = cert;
  if (key !== undefined) tls.keyFile = key;
  const fields: [keyof WorkerConnectOptions, string | undefined][] = [
    ['credsFile', value('NATS_CREDS')],
    ['user', value('NATS_USER')],
    ['pass', env.NATS_PASS === '' ? undefined : env.NATS_PASS],
    ['token', value('NATS_TOKEN')],
    ['nkeySeed', value('NATS_NKEY_SEED')],
    ['inboxPrefix', value('NATS_INBOX_PREFIX')],
  ];
  return {
    ...(url === undefined ? {} : { servers: url.split(',').map((s) => s.trim()) }),
    ...Object.fromEntries(fields.filter(([, v]) => v !== undefined)),
    ...(Object.keys(tls).length === 0 ? {} : { tls }),
  };
}

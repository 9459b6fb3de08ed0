import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { NatsServer } from './nats.js';
import { createGateway, GenApi, type Gateway, type GenApiOptions } from '../../src/index.js';
import type { NatsGatewayOptions } from '../../src/bus/nats/link.js';
import { serve, type RunningService, type ServeOptions } from '../../src/worker/nats.js';
import type { ServiceDefinition } from '../../src/worker/define.js';

/** Socket assigns of gen_api tests: identity from connect params (like the demo). */
export interface ApiAssigns {
  user_id: string | null;
  device_id: string | null;
  roles: string[] | null;
}

export interface GenApiApp {
  gateway: Gateway;
  genApi: GenApi;
  port: number;
  /** ws URL of /socket with `query` (vsn=2.0.0 is added). */
  wsUrl(query?: string): string;
  close(): Promise<void>;
}

export interface GenApiAppOptions {
  /** Run services on NATS at this URL (otherwise embedded). */
  nats?: string;
  /**
   * Discovery timing: `harness` (default here) pings every 200 ms and drops instances after 1 s
   * so tests run fast; `defaults` uses the gateway's shipped defaults (protocol/nats.md §3).
   */
  discovery?: 'harness' | 'defaults';
  natsOptions?: Partial<NatsGatewayOptions>;
  /** In-process services. */
  local?: ServiceDefinition[];
  genApi?: GenApiOptions;
  port?: number;
}

/** A gateway with the gen_api channel on /socket; identity from params user_id, device_id, roles. */
export async function startGenApiApp(options: GenApiAppOptions = {}): Promise<GenApiApp> {
  const gateway = createGateway({ logger: false });
  const socket = gateway.socket<ApiAssigns>('/socket', {
    connect: ({ params }) => {
      const user =
        typeof params.user_id === 'string' && params.user_id !== '' ? params.user_id : null;
      const device =
        typeof params.device_id === 'string' && params.device_id !== '' ? params.device_id : null;
      // roles[]=a (raw clients), roles[0]=a (the phoenix client serialises arrays by index) or roles=a,b.
      const raw = params.roles;
      const list = Array.isArray(raw)
        ? raw
        : typeof raw === 'string'
          ? raw.split(',')
          : raw !== null && typeof raw === 'object'
            ? Object.values(raw)
            : null;
      const roles =
        list === null ? null : list.filter((r): r is string => typeof r === 'string' && r !== '');
      return {
        assigns: { user_id: user, device_id: device, roles },
        id: user === null ? null : `user:${user}`,
      };
    },
  });
  const genApi = new GenApi(gateway, options.genApi ?? {}).mount(socket);
  for (const service of options.local ?? []) genApi.register(service);
  if (options.nats) {
    await genApi.connectNats({
      servers: options.nats,
      // Tests of worker authentication set a push token; the others run on a trusted network.
      ...(options.genApi?.pushToken ? {} : { trustedNetwork: true }),
      ...(options.discovery === 'defaults'
        ? {}
        : { discovery: { intervalMs: 200, ttlMs: 1_000, pingWaitMs: 100 } }),
      ...options.natsOptions,
    });
  }
  const { port } = await gateway.listen(options.port ?? 0, '127.0.0.1');
  return {
    gateway,
    genApi,
    port,
    wsUrl: (query = '') =>
      `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0${query ? `&${query}` : ''}`,
    close: () => gateway.close(),
  };
}

export interface Worker {
  nc: NatsConnection;
  running: RunningService;
  stop(): Promise<void>;
  /** Closes the connection without draining (like a crashed process). */
  crash(): Promise<void>;
}

export async function startWorker(
  service: ServiceDefinition,
  url: string,
  options: Partial<ServeOptions> = {},
  connection: { reconnectTimeWaitMs?: number } = {},
): Promise<Worker> {
  const nc = await connect({
    servers: url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: connection.reconnectTimeWaitMs ?? 100,
  });
  const running = await serve(service, { nats: nc, pushTimeoutMs: 300, ...options });
  return {
    nc,
    running,
    stop: async () => {
      await running.stop();
      await nc.close();
    },
    crash: async () => {
      await nc.close();
    },
  };
}

export interface GenApiModeContext {
  readonly app: GenApiApp;
  readonly nats: NatsServer | null;
  readonly worker: Worker | null;
}

/**
 * Runs `services` for the file's tests (beforeAll/afterAll): in-process (`embedded`), or on one
 * SDK worker over a nats-server the test starts (`nats`).
 */
export function useGenApi(
  mode: 'embedded' | 'nats',
  services: () => ServiceDefinition[],
  options: { worker?: Partial<ServeOptions>; app?: GenApiAppOptions } = {},
): GenApiModeContext {
  const ctx = {
    app: null as unknown as GenApiApp,
    nats: null as NatsServer | null,
    worker: null as Worker | null,
  };
  beforeAll(async () => {
    const defs = services();
    if (mode === 'nats') {
      ctx.nats = await NatsServer.start();
      const [first, ...others] = defs;
      if (others.length > 0) throw new Error('useGenApi: one service per NATS worker');
      if (first) ctx.worker = await startWorker(first, ctx.nats.url, options.worker);
      ctx.app = await startGenApiApp({ ...options.app, nats: ctx.nats.url });
    } else {
      ctx.app = await startGenApiApp({ ...options.app, local: defs });
    }
  });
  afterAll(async () => {
    await ctx.app?.close();
    await ctx.worker?.stop();
    await ctx.nats?.dispose();
  });
  return ctx;
}

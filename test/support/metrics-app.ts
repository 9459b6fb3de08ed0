/**
 * A gateway for the telemetry and metrics tests: a `room:*` channel (join refused for
 * `room:locked`, `echo` replies, `slow` waits), the gen_api channel with an in-process `calc`
 * service (ok, failing, slow past its timeout, a call held until the test releases it, a stream,
 * an endless stream), and the identity from connect params like the demo (`user_id`; `refuse=1`
 * refuses the connect).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  createGateway,
  defineChannel,
  error,
  GenApi,
  ok,
  refuse,
  type Gateway,
  type GatewayOptions,
  type GenApiOptions,
  type SocketOptions,
} from '../../src/index.js';
import { defineService, fn, ServiceError } from '../../src/worker/define.js';
import type { ApiAssigns } from './genapi-app.js';

/** Resolves the `hold` calls running in this process. */
const held = new Set<() => void>();

/** Ends every `hold` call running in this process; returns how many there were. */
export function releaseHeld(): number {
  const count = held.size;
  for (const release of held) release();
  held.clear();
  return count;
}

/** The in-process service the metrics tests call. */
export const calcService = defineService({
  name: 'calc',
  version: '1.0.0',
  functions: {
    add: fn({ args: { a: 'num', b: 'num' }, handler: ({ a, b }) => a + b }),
    fail: fn({
      handler: () => {
        throw new ServiceError('it broke', 500);
      },
    }),
    slow: fn({
      timeout: 100,
      // Outlives its 100 ms timeout: the gateway answers `timeout` without waiting for it.
      handler: (_args, ctx) =>
        new Promise((resolve) => {
          const timer = setTimeout(resolve, 2_000);
          ctx.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
        }),
    }),
    hold: fn({
      timeout: 30_000,
      // Runs until releaseHeld() (or the client goes): a call a test sees in flight.
      handler: (_args, ctx) =>
        new Promise((resolve) => {
          const release = () => resolve('released');
          held.add(release);
          ctx.signal.addEventListener('abort', () => held.delete(release), { once: true });
        }),
    }),
    count: fn({
      response: 'stream',
      args: { to: 'num' },
      handler: async ({ to }, ctx) => {
        for (let i = 1; i <= to; i++) await ctx.stream.write(i);
        return undefined;
      },
    }),
    ticker: fn({
      response: 'stream',
      // Writes until the client goes (the stream is then cancelled).
      handler: async (_args, ctx) => {
        for (let i = 0; !ctx.signal.aborted; i++) {
          await ctx.stream.write(i);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        return undefined;
      },
    }),
  },
});

/** Log lines a test can read (the gateway logs JSON through pino). */
export class LogLines {
  readonly lines: Record<string, unknown>[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  readonly logger = pino({ level: 'info' }, this.stream);

  /** Lines whose `msg` is `message`. */
  withMessage(message: string): Record<string, unknown>[] {
    return this.lines.filter((line) => line.msg === message);
  }
}

export interface MetricsApp {
  gateway: Gateway;
  genApi: GenApi;
  port: number;
  log: LogLines;
  close(): Promise<void>;
}

/** Starts the gateway on a free port. */
export async function startMetricsApp(
  options: {
    gateway?: GatewayOptions;
    socket?: SocketOptions<ApiAssigns>;
    genApi?: GenApiOptions;
    listen?: boolean;
  } = {},
): Promise<MetricsApp> {
  const log = new LogLines();
  const gateway = createGateway({ logger: log.logger, ...options.gateway });
  const socket = gateway.socket<ApiAssigns>('/socket', {
    connect: ({ params }) => {
      if (params.refuse === '1') return refuse(403, 'refused by the test');
      const user = typeof params.user_id === 'string' ? params.user_id : null;
      return { assigns: { user_id: user, device_id: null, roles: null } };
    },
    ...options.socket,
  });
  socket.channel(
    'room:*',
    defineChannel<ApiAssigns>({
      join: (topic) => (topic === 'room:locked' ? error({ reason: 'unauthorized' }) : ok()),
      handleIn: async (event, payload) => {
        if (event === 'slow') await new Promise((resolve) => setTimeout(resolve, 20));
        return ok(payload);
      },
    }),
  );
  const genApi = new GenApi(gateway, options.genApi ?? {}).mount(socket);
  genApi.register(calcService);
  const { port } = options.listen === false ? { port: 0 } : await gateway.listen(0, '127.0.0.1');
  return { gateway, genApi, port, log, close: () => gateway.close() };
}

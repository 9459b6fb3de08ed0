/**
 * A gateway on a real nats-server with one in-process SDK worker (`traced`) whose functions
 * report the trace their context saw, a real `phoenix` client, and the gateway's pino lines
 * captured as parsed JSON.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Channel, Socket } from 'phoenix';
import { createGateway, GenApi, type Gateway } from '../../src/index.js';
import { defineService, fn, ServiceError } from '../../src/worker/define.js';
import type { ServiceDefinition } from '../../src/worker/define.js';
import { NatsServer } from '../support/nats.js';
import { startWorker, type Worker } from '../support/genapi-app.js';
import { joinedChannel, phoenixSocket, type Entry } from '../support/genapi-phoenix.js';
import { waitFor } from '../support/phoenix-client.js';
import { until } from '../support/wait.js';
import type { RequestTrace } from '../../src/nats/trace-context.js';

/** What a `traced` function returns: the trace its context saw. */
export interface SeenTrace {
  trace: RequestTrace | null;
}

let failCalls = 0;

/** The worker's service: `seen` (sync), `fail` (always fails), `slow` (times out), `flaky` (fails once, retried), `ticks` (stream of 3). */
export function tracedService(): ServiceDefinition {
  return defineService({
    name: 'traced',
    version: '1.0.0',
    functions: {
      seen: fn({ handler: (_args, ctx): SeenTrace => ({ trace: ctx.trace }) }),
      logged: fn({
        handler: (_args, ctx): SeenTrace => {
          ctx.logger.info('handled');
          return { trace: ctx.trace };
        },
      }),
      fail: fn({
        handler: () => {
          throw new Error('boom');
        },
      }),
      slow: fn({
        timeout: 200,
        handler: async (_args, ctx) => {
          await new Promise((resolve) => setTimeout(resolve, 600));
          return { trace: ctx.trace };
        },
      }),
      flaky: fn({
        retry: { sameNode: 1 },
        retryOn: 'any',
        handler: (_args, ctx): SeenTrace => {
          failCalls++;
          if (failCalls % 2 === 1) throw new ServiceError('first attempt fails', 500);
          return { trace: ctx.trace };
        },
      }),
      forever: fn({
        response: 'stream',
        async handler(_args, ctx) {
          for (let i = 1; !ctx.signal.aborted; i++) {
            await ctx.stream.write(i);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        },
      }),
      ticks: fn({
        response: 'stream',
        async handler(_args, ctx) {
          for (let i = 1; i <= 3; i++) await ctx.stream.write(i);
        },
      }),
    },
  });
}

/** The running pieces of one test file. */
export interface TracedSetup {
  nats: NatsServer;
  worker: Worker;
  gateway: Gateway;
  port: number;
  /** Every line the gateway logged, parsed. */
  logs: Record<string, unknown>[];
  /** Every line the worker logged, parsed. */
  workerLogs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A stream that parses pino's JSON lines into `lines`. */
function capture(lines: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
}

/** Starts nats-server, the `traced` worker and a gateway (identity from the `user_id` param). */
export async function startTraced(): Promise<TracedSetup> {
  const nats = await NatsServer.start();
  const workerLogs: Record<string, unknown>[] = [];
  const worker = await startWorker(tracedService(), nats.url, {
    logger: pino({ level: 'debug' }, capture(workerLogs)),
  });
  const logs: Record<string, unknown>[] = [];
  const gateway = createGateway({ logger: pino({ level: 'debug' }, capture(logs)) });
  const socket = gateway.socket('/socket', {
    connect: ({ params }) => ({
      assigns: { user_id: typeof params.user_id === 'string' ? params.user_id : null },
    }),
  });
  const genApi = new GenApi(gateway, {}).mount(socket);
  await genApi.connectNats({
    servers: nats.url,
    trustedNetwork: true,
    discovery: { intervalMs: 200, ttlMs: 1_000, pingWaitMs: 100 },
  });
  const { port } = await gateway.listen(0, '127.0.0.1');
  return {
    nats,
    worker,
    gateway,
    port,
    logs,
    workerLogs,
    close: async () => {
      await gateway.close();
      await worker.stop();
      await nats.dispose();
    },
  };
}

/** A phoenix client joined to `gen_api:lobby` with `params`, once `traced.seen` answers. */
export async function tracedClient(
  port: number,
  params: object = {},
): Promise<{
  socket: Socket;
  channel: Channel;
  call: (payload: object, count?: number) => Promise<unknown[]>;
}> {
  const socket = await phoenixSocket(port, { user_id: 'u1' });
  const { channel, log } = await joinedChannel(socket, 'gen_api:lobby', 'phoenix_gen_api', params);
  let n = 0;
  /** Pushes a request and resolves with its `count` pushes (once the last has has_more false). */
  const call = async (payload: object, count = 1): Promise<unknown[]> => {
    const requestId = `r${++n}`;
    const mine = (entry: Entry) =>
      entry[0] === 'on' && (entry[1] as { request_id?: unknown }).request_id === requestId;
    channel.push('phoenix_gen_api', { request_id: requestId, ...payload });
    await waitFor(() => log.filter(mine).length >= count, `${count} pushes for ${requestId}`);
    return log.filter(mine).map((entry) => entry[1]);
  };
  // Config arrives from the worker by push or pull: wait until the function is known.
  await until(
    async () => {
      const [first] = await call({ service: 'traced', request_type: 'seen', args: {} });
      return (first as { success?: boolean }).success === true;
    },
    'traced.seen served',
    { intervalMs: 50 },
  );
  return { socket, channel, call };
}

/**
 * `gateway.drain()` in-process (startGateway, real sockets): sockets closed with 1012 in batches
 * with a `socket_drain` telemetry event per batch, a stream cut at the request deadline with a
 * `Stream interrupted` push, a LongPoll session kept serving while new ones are refused, bad
 * drain options refused at start, and `close()` hurrying a drain.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../src/config/file.js';
import { OutOfRangeError } from '../../src/errors.js';
import { STOPPING_REFUSAL } from '../../src/http/responses.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import type { SocketDrainEvent } from '../../src/telemetry/events.js';
import { defineService, fn } from '../../src/worker/index.js';
import { lp, openSession, post } from '../support/longpoll-client.js';
import { until, within } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

/** A stream that sends one chunk and then waits until it is told to stop. */
const endless = defineService({
  name: 'endless',
  version: '1.0.0',
  functions: {
    ticks: fn({
      response: 'stream',
      timeout: 60_000,
      async handler(_args, ctx) {
        await ctx.stream.write(1);
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      },
    }),
  },
});

let running: RunningGateway | null = null;
afterEach(async () => {
  await running?.gateway.close();
  running = null;
});

async function start(config: GatewayConfig = {}): Promise<RunningGateway> {
  running = await startGateway({
    config: {
      demo: true,
      setup: (_gateway, genApi) => {
        genApi.register(endless);
      },
      ...config,
    },
    fromFile: false,
    port: 0,
    logger: pino({ level: 'silent' }),
  });
  return running;
}

function wsUrl(port: number, user: string): string {
  return `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=${user}`;
}

describe('gateway.drain()', () => {
  it('closes the sockets with 1012 in batches of batchSize, one socket_drain event per batch', async () => {
    const { gateway, address } = await start({
      drain: { batchSize: 2, batchIntervalMs: 20, requestDeadlineMs: 1_000 },
    });
    const events: SocketDrainEvent[] = [];
    const closedPerBatch: number[] = [];
    const clients = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((user) => RawClient.connect(wsUrl(address.port, user))),
    );
    const codes = clients.map((client) => client.closed.then((info) => info.code));
    gateway.telemetry.on('socket_drain', (event) => {
      events.push(event);
      closedPerBatch.push(gateway.stats.sockets);
    });
    await within(gateway.drain(), 'the drain');
    expect(await Promise.all(codes)).toEqual([1012, 1012, 1012, 1012, 1012]);
    expect(events).toEqual([
      { count: 2, total: 5, index: 0, intervalMs: 20 },
      { count: 2, total: 5, index: 1, intervalMs: 20 },
      { count: 1, total: 5, index: 2, intervalMs: 0 },
    ]);
    // Each batch closed its sockets only: the next batch's were still open when it was reported.
    expect(closedPerBatch).toEqual([3, 1, 0]);
  });

  it('cuts a stream still running at requestDeadlineMs with a Stream interrupted push, then closes', async () => {
    const { gateway, genApi, address } = await start({
      drain: { requestDeadlineMs: 100 },
    });
    const client = await RawClient.connect(wsUrl(address.port, 'ada'));
    await client.join('gen_api:lobby', '1');
    client.send([
      '1',
      '2',
      'gen_api:lobby',
      'phoenix_gen_api',
      { request_id: 's1', service: 'endless', request_type: 'ticks', args: {} },
    ]);
    await until(() => genApi.executor.stats.streams === 1, 'the stream to run');
    const outcomes: string[] = [];
    gateway.telemetry.on('genapi_request', (event) => outcomes.push(event.outcome));
    const drained = gateway.drain();
    const info = await within(client.closed, 'the socket to close');
    await drained;
    expect(info.code).toBe(1012);
    const pushes = client.frames
      .filter((frame) => Array.isArray(frame) && frame[3] === 'phoenix_gen_api')
      .map((frame) => (frame as unknown[])[4] as Record<string, unknown>);
    expect(pushes.at(-1)).toEqual({
      request_id: 's1',
      result: null,
      success: false,
      error: 'Stream interrupted',
      async: false,
      has_more: false,
      can_retry: true,
    });
    expect(genApi.executor.stats.streams).toBe(0);
    // The service went away under it, as for any can_retry refusal.
    expect(outcomes).toEqual(['unavailable']);
  });

  it('keeps serving a LongPoll session while refusing new ones (503 with a reason)', async () => {
    const { gateway, genApi, address } = await start({ drain: { requestDeadlineMs: 10_000 } });
    const base = `http://127.0.0.1:${address.port}/socket/longpoll`;
    const token = await openSession(base, 'vsn=2.0.0&user_id=ada');
    const ws = await RawClient.connect(wsUrl(address.port, 'bob'));
    await ws.join('gen_api:lobby', '1');
    // A slow request holds the drain in its first phase.
    ws.send([
      '1',
      '2',
      'gen_api:lobby',
      'phoenix_gen_api',
      { request_id: 'r1', service: 'demo', request_type: 'slow', args: { ms: 600 } },
    ]);
    await until(() => genApi.executor.stats.inflight === 1, 'the slow request in flight');
    const drained = gateway.drain();
    expect(gateway.stopping).toBe(true);
    const refused = await lp(`${base}?vsn=2.0.0&user_id=eve`);
    expect([refused.http, refused.text]).toEqual([503, STOPPING_REFUSAL]);
    const heartbeat = await post(base, token, [
      JSON.stringify([null, '9', 'phoenix', 'heartbeat', {}]),
    ]);
    expect(heartbeat.body).toEqual({ status: 200 });
    await within(drained, 'the drain');
    const frames = ws.frames.filter(
      (frame) => Array.isArray(frame) && frame[3] === 'phoenix_gen_api',
    );
    expect((frames.at(-1) as unknown[])[4]).toMatchObject({ request_id: 'r1', success: true });
  });

  it('rejects a drain() with an option out of range and keeps serving', async () => {
    const { gateway, address } = await start();
    await expect(gateway.drain({ batchIntervalMs: 1.5 })).rejects.toThrow(OutOfRangeError);
    expect(gateway.stopping).toBe(false);
    const client = await RawClient.connect(wsUrl(address.port, 'ada'));
    client.close();
  });

  it('refuses bad drain options at start', async () => {
    await expect(start({ drain: { batchSize: 0 } })).rejects.toThrow(OutOfRangeError);
    await expect(start({ drain: { shutdownMs: -1 } })).rejects.toThrow(
      'drain.shutdownMs must be an integer of at least 0',
    );
  });

  it('close() during a drain hurries it: the remaining waits are skipped', async () => {
    const { gateway, genApi, address } = await start({
      drain: { requestDeadlineMs: 60_000 },
    });
    const client = await RawClient.connect(wsUrl(address.port, 'ada'));
    await client.join('gen_api:lobby', '1');
    client.send([
      '1',
      '2',
      'gen_api:lobby',
      'phoenix_gen_api',
      { request_id: 's1', service: 'endless', request_type: 'ticks', args: {} },
    ]);
    await until(() => genApi.executor.stats.streams === 1, 'the stream to run');
    const drained = gateway.drain();
    await gateway.close();
    await within(drained, 'the drain to end with close()', 5_000);
    expect((await client.closed).code).toBe(1012);
  });
});

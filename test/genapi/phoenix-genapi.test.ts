/**
 * End to end with the real `phoenix` 1.8 JS client: transcript §B
 * (../shared/spec/phoenix-gen-api-transcript.md) against a NATS-mode gateway whose demo service
 * runs in the real demo worker process (src/demo/worker.ts → src/demo/service.ts) on a real
 * nats-server. Every request type and error case, asserting the order of the client callbacks
 * (channel.on("phoenix_gen_api") events and push receive ok/error) as the transcript lists them,
 * except where protocol/gen_api.md §7 departs on purpose (whoami's device_id: decision 2; a wrong
 * argument type is named: decision 7). Then a LongPoll run of echo and count.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LongPoll, Socket, type Channel, type TransportConstructor } from 'phoenix';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { heartbeatRoundTrip } from '../support/genapi-phoenix.js';
import { until, WAIT_MS } from '../support/wait.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { spawnTs, type Spawned } from '../support/spawn.js';

const TOPIC = 'gen_api:lobby';
const EVENT = 'phoenix_gen_api';
type Entry = [string, unknown];

const resp = (id: string, fields: Record<string, unknown> = {}) => ({
  async: false,
  can_retry: false,
  error: null,
  has_more: false,
  request_id: id,
  result: null,
  success: true,
  ...fields,
});
const on = (id: string, fields: Record<string, unknown> = {}): Entry => ['on', resp(id, fields)];
const ok = (response: unknown): Entry => ['push ok', response];
const err = (response: unknown): Entry => ['push error', response];

let nats: NatsServer;
let app: GenApiApp;
let worker: Spawned;

beforeAll(async () => {
  nats = await NatsServer.start();
  app = await startGenApiApp({ nats: nats.url });
  worker = spawnTs('src/demo/worker.ts', [], { NATS_URL: nats.url });
  await worker.logLine('demo worker ready', 20_000);
  await until(
    () =>
      app.genApi.registry.resolve('demo', 'count', null).ok &&
      app.genApi.nats!.discovery.instances('demo').length === 1,
    'the demo worker at the gateway',
  );
}, 30_000);
afterAll(async () => {
  await app?.close();
  if (worker) {
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker.kill('SIGKILL'), 5_000);
    await worker.exited;
    clearTimeout(timer);
  }
  await nats?.dispose();
});

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});

/** A connected socket; `perTest` ones are disconnected after each test. */
async function connected(
  transport: TransportConstructor,
  params: Record<string, unknown>,
  perTest = true,
): Promise<Socket> {
  const socket = new Socket(`ws://127.0.0.1:${app.port}/socket`, { transport, params });
  if (perTest) sockets.push(socket);
  socket.connect();
  await waitFor(() => socket.isConnected(), 'socket open');
  return socket;
}

/** A joined gen_api channel whose callbacks all land in `log`, in the order the client runs them. */
async function joined(
  socket: Socket,
  params: object,
): Promise<{ channel: Channel; log: Entry[]; joinReply: Entry }> {
  const channel = socket.channel(TOPIC, params);
  const log: Entry[] = [];
  channel.on(EVENT, (payload) => log.push(['on', payload]));
  const join = channel.join();
  const reply = await replyOf(join);
  return { channel, log, joinReply: [`join ${reply.status}`, reply.response] };
}

/**
 * Pushes a request, records the push's ok/error/timeout callbacks into `log` next to the
 * channel events, waits for `expected.length` callbacks and a heartbeat round trip, and returns
 * them.
 */
async function exchange(
  channel: Channel,
  log: Entry[],
  payload: object,
  expectedCount: number,
  timeoutMs = WAIT_MS,
): Promise<Entry[]> {
  log.length = 0;
  const push = channel.push(EVENT, payload);
  for (const status of ['ok', 'error', 'timeout'])
    push.receive(status, (response) => log.push([`push ${status}`, response]));
  await waitFor(
    () => log.length >= expectedCount,
    `${expectedCount} callbacks for ${JSON.stringify(payload)}`,
    timeoutMs,
  );
  // Anything more the server sent for it arrives before the reply to a later heartbeat.
  await heartbeatRoundTrip((channel as unknown as { socket: Socket }).socket);
  return [...log];
}

describe('transcript B over the phoenix 1.8 client (websocket, NATS gateway, demo worker process)', () => {
  let socket: Socket;
  let channel: Channel;
  let log: Entry[];

  beforeAll(async () => {
    socket = await connected(WebSocket, { user_id: 'u1', device_id: 'd1' }, false);
    const j = await joined(socket, { user_id: 'u1', device_id: 'd1' });
    channel = j.channel;
    log = j.log;
    expect(j.joinReply).toEqual(['join ok', {}]);
  });
  afterAll(() => socket?.disconnect());

  it('B1 echo (sync): on(result), then push ok "echo"', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-echo', service: 'demo', request_type: 'echo', args: { message: 'hello' } },
      2,
    );
    expect(entries).toEqual([on('r-echo', { result: { message: 'hello' } }), ok('echo')]);
  });

  it('B1 echo_async: on(ack), push ok "echo_async", on(result)', async () => {
    const entries = await exchange(
      channel,
      log,
      {
        request_id: 'r-echo-async',
        service: 'demo',
        request_type: 'echo_async',
        args: { message: 'hello async' },
      },
      3,
    );
    expect(entries).toEqual([
      on('r-echo-async', { async: true }),
      ok('echo_async'),
      on('r-echo-async', { result: { message: 'hello async' } }),
    ]);
  });

  it('B1 count (stream, to=3): on(init), push ok "count", on(started Response), on(1..3), on(end)', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-count', service: 'demo', request_type: 'count', args: { to: 3 } },
      7,
    );
    expect(entries).toEqual([
      on('r-count', { result: 'init', async: true, has_more: true }),
      ok('count'),
      on('r-count', {
        result: resp('r-count', { result: 'started' }),
        async: true,
        has_more: true,
      }),
      on('r-count', { result: 1, async: true, has_more: true }),
      on('r-count', { result: 2, async: true, has_more: true }),
      on('r-count', { result: 3, async: true, has_more: true }),
      on('r-count', { async: true }),
    ]);
  });

  it('B1 notify (none): push ok "notify" only', async () => {
    const entries = await exchange(
      channel,
      log,
      {
        request_id: 'r-notify',
        service: 'demo',
        request_type: 'notify',
        args: { message: 'fire and forget' },
      },
      1,
    );
    expect(entries).toEqual([ok('notify')]);
  });

  it('B1 fail: on(Internal Server Error), push ok "fail"', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-fail', service: 'demo', request_type: 'fail', args: {} },
      2,
    );
    expect(entries).toEqual([
      on('r-fail', { success: false, error: 'Internal Server Error' }),
      ok('fail'),
    ]);
  });

  it('B1 whoami (decision 2: the socket device_id is reported)', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-whoami', service: 'demo', request_type: 'whoami', args: {} },
      2,
    );
    expect(entries).toEqual([
      on('r-whoami', { result: { device_id: 'd1', user_id: 'u1', roles: [] } }),
      ok('whoami'),
    ]);
  });

  it('B1 whoami with device_id in the payload (decision 2: the socket device_id wins)', async () => {
    const entries = await exchange(
      channel,
      log,
      {
        request_id: 'r-whoami-dev',
        service: 'demo',
        request_type: 'whoami',
        args: {},
        device_id: 'payload-dev',
      },
      2,
    );
    expect(entries).toEqual([
      on('r-whoami-dev', { result: { device_id: 'd1', user_id: 'u1', roles: [] } }),
      ok('whoami'),
    ]);
  });

  it('B1 slow (ms=50, under the timeout)', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-slow', service: 'demo', request_type: 'slow', args: { ms: 50 } },
      2,
    );
    expect(entries).toEqual([on('r-slow', { result: { slept: 50 } }), ok('slow')]);
  });

  it('B1 slow (ms=1500, over the 1000 ms timeout): Internal Server Error after about a second', async () => {
    const t0 = performance.now();
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-slow-timeout', service: 'demo', request_type: 'slow', args: { ms: 1500 } },
      2,
    );
    const elapsed = performance.now() - t0;
    // The error (not the handler's late result) shows the 1000 ms timeout fired; and not before it.
    expect(entries).toEqual([
      on('r-slow-timeout', { success: false, error: 'Internal Server Error' }),
      ok('slow'),
    ]);
    expect(elapsed).toBeGreaterThanOrEqual(950);
  });

  it('B1 a missing required field: on(Invalid request: …), push error', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-no-type', service: 'demo', args: { message: 'x' } },
      2,
    );
    expect(entries).toEqual([
      on('r-no-type', {
        success: false,
        error: 'Invalid request: Missing required fields: request_type',
      }),
      err('Missing required fields: request_type'),
    ]);
  });

  it('B1 an extra argument: on(Request processing failed), push error with the message', async () => {
    const entries = await exchange(
      channel,
      log,
      {
        request_id: 'r-extra',
        service: 'demo',
        request_type: 'echo',
        args: { message: 'hi', extra: 1 },
      },
      2,
    );
    expect(entries).toEqual([
      on('r-extra', { success: false, error: 'Request processing failed' }),
      err('extra arguments for "echo", extra: ["extra"]'),
    ]);
  });

  it('B1 a wrong argument type (decision 7: named)', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-wrongtype', service: 'demo', request_type: 'echo', args: { message: 123 } },
      2,
    );
    expect(entries).toEqual([
      on('r-wrongtype', { success: false, error: 'Request processing failed' }),
      err('invalid argument type for "message", expected :string, got 123'),
    ]);
  });

  it('B1 a missing argument', async () => {
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-missing-arg', service: 'demo', request_type: 'echo', args: {} },
      2,
    );
    expect(entries).toEqual([
      on('r-missing-arg', { success: false, error: 'Request processing failed' }),
      err('missing or nil argument "message" in "echo"'),
    ]);
  });

  it('B1 an unknown request_type: on(unsupported function), push ok with the request type', async () => {
    const entries = await exchange(
      channel,
      log,
      {
        request_id: 'r-unknown',
        service: 'demo',
        request_type: 'no_such_fn',
        args: { message: 'x' },
      },
      2,
    );
    expect(entries).toEqual([
      on('r-unknown', { success: false, error: 'unsupported function: no_such_fn version latest' }),
      ok('no_such_fn'),
    ]);
  });

  it('B1 an unknown version "9.9.9"', async () => {
    const entries = await exchange(
      channel,
      log,
      {
        request_id: 'r-version',
        service: 'demo',
        request_type: 'echo',
        args: { message: 'x' },
        version: '9.9.9',
      },
      2,
    );
    expect(entries).toEqual([
      on('r-version', { success: false, error: 'unsupported function: echo version 9.9.9' }),
      ok('echo'),
    ]);
  });

  it('gen-gateway extension: cancelling a running count stream (cancel event) → on(end), push ok {cancelled: true}', async () => {
    log.length = 0;
    const started = channel.push(EVENT, {
      request_id: 'r-long',
      service: 'demo',
      request_type: 'count',
      args: { to: 100_000, interval_ms: 20 },
    });
    expect(await replyOf(started)).toEqual({ status: 'ok', response: 'count' });
    await waitFor(() => log.length >= 4, 'a few chunks');
    const cancelled = await replyOf(
      channel.push('phoenix_gen_api_cancel', { request_id: 'r-long' }),
    );
    expect(cancelled).toEqual({ status: 'ok', response: { cancelled: true } });
    await waitFor(
      () => log.some(([, p]) => (p as { has_more?: boolean }).has_more === false),
      'the end push',
    );
    expect(log.at(-1)).toEqual(on('r-long', { async: true }));
  });
});

describe('transcript B2: a socket without user_id (phoenix 1.8, websocket)', () => {
  it('join ok; echo → on(Authentication required), push error "Authentication required"', async () => {
    const socket = await connected(WebSocket, {
      device_id: 'd2',
    });
    const { channel, log, joinReply } = await joined(socket, {});
    expect(joinReply).toEqual(['join ok', {}]);
    const entries = await exchange(
      channel,
      log,
      { request_id: 'r-anon', service: 'demo', request_type: 'echo', args: { message: 'hi' } },
      2,
    );
    expect(entries).toEqual([
      on('r-anon', { success: false, error: 'Authentication required' }),
      err('Authentication required'),
    ]);
  });
});

describe('LongPoll (phoenix 1.8 client, fetch)', () => {
  it('echo and count give the same callbacks in the same order', async () => {
    const socket = await connected(LongPoll, { user_id: 'u1', device_id: 'd1' });
    const { channel, log, joinReply } = await joined(socket, { user_id: 'u1', device_id: 'd1' });
    expect(joinReply).toEqual(['join ok', {}]);
    expect(
      await exchange(
        channel,
        log,
        {
          request_id: 'lp-echo',
          service: 'demo',
          request_type: 'echo',
          args: { message: 'hello' },
        },
        2,
      ),
    ).toEqual([on('lp-echo', { result: { message: 'hello' } }), ok('echo')]);
    expect(
      await exchange(
        channel,
        log,
        { request_id: 'lp-count', service: 'demo', request_type: 'count', args: { to: 3 } },
        7,
      ),
    ).toEqual([
      on('lp-count', { result: 'init', async: true, has_more: true }),
      ok('count'),
      on('lp-count', {
        result: resp('lp-count', { result: 'started' }),
        async: true,
        has_more: true,
      }),
      on('lp-count', { result: 1, async: true, has_more: true }),
      on('lp-count', { result: 2, async: true, has_more: true }),
      on('lp-count', { result: 3, async: true, has_more: true }),
      on('lp-count', { async: true }),
    ]);
  });
});

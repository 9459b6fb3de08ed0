/**
 * Telemetry events (README "Telemetry") with the real `phoenix` client over WebSocket and
 * LongPoll: each event arrives with the documented fields as sockets connect, join, push, leave
 * and close, and as gen_api requests end in each outcome. A handler that throws is detached and
 * logged once; the emitter goes on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LongPoll, Socket, type TransportConstructor } from 'phoenix';
import type { TelemetryEventName, TelemetryEvents } from '../../src/index.js';
import { startMetricsApp, type MetricsApp } from '../support/metrics-app.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { until } from '../support/wait.js';

let app: MetricsApp;
const sockets: Socket[] = [];
const detach: (() => void)[] = [];

beforeAll(async () => {
  app = await startMetricsApp();
});
afterAll(async () => {
  await app?.close();
});
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  for (const off of detach.splice(0)) off();
});

/** Records every `name` event from now on. */
function record<N extends TelemetryEventName>(name: N): TelemetryEvents[N][] {
  const events: TelemetryEvents[N][] = [];
  detach.push(app.gateway.telemetry.on(name, (event) => events.push(event)));
  return events;
}

async function connected(
  params: Record<string, unknown> = { user_id: 'u1' },
  transport: TransportConstructor = WebSocket,
): Promise<Socket> {
  const socket = new Socket(`ws://127.0.0.1:${app.port}/socket`, {
    transport,
    params,
    // The V2 serializer (phoenix.js default); LongPoll speaks it too.
  });
  sockets.push(socket);
  socket.connect();
  await waitFor(() => socket.isConnected(), 'socket open');
  return socket;
}

describe('socket events', () => {
  it('socket_connected for accepted and refused connects, on both transports', async () => {
    const events = record('socket_connected');
    await connected();
    await connected({ user_id: 'u2' }, LongPoll);
    await until(() => events.length >= 2, 'two socket_connected');
    expect(events[0]).toMatchObject({
      transport: 'websocket',
      vsn: '2.0.0',
      serializer: 'binary',
      result: 'ok',
      path: '/socket/websocket',
    });
    expect(events[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(events[1]).toMatchObject({
      transport: 'longpoll',
      vsn: '2.0.0',
      result: 'ok',
      path: '/socket/longpoll',
    });

    const refused = new WebSocket(`ws://127.0.0.1:${app.port}/socket/websocket?vsn=1.0.0&refuse=1`);
    refused.on('error', () => undefined);
    await until(() => events.length >= 3, 'the refused socket_connected');
    expect(events[2]).toMatchObject({
      transport: 'websocket',
      vsn: '1.0.0',
      serializer: 'json',
      result: 'error',
      status: 403,
      reason: 'refused by the test',
    });
  });

  it('socket_closed when the client goes (no code) and when the gateway closes (code)', async () => {
    const closed = record('socket_closed');
    const socket = await connected();
    socket.disconnect();
    await until(() => closed.length >= 1, 'socket_closed');
    expect(closed[0]).toEqual({ transport: 'websocket' });

    const raw = new WebSocket(`ws://127.0.0.1:${app.port}/socket/websocket?vsn=2.0.0`);
    await new Promise((resolve) => raw.once('open', resolve));
    // An undecodable frame: the gateway closes the socket itself (1011).
    raw.send('not json');
    await until(() => closed.some((event) => event.code !== undefined), 'a gateway close');
    expect(closed.find((event) => event.code !== undefined)).toMatchObject({
      transport: 'websocket',
      code: 1011,
    });
  });
});

describe('channel events', () => {
  it('channel_joined ok and refused (with reason), handled_in, channel_left', async () => {
    const joined = record('channel_joined');
    const handled = record('channel_handled_in');
    const left = record('channel_left');
    const socket = await connected();

    const room = socket.channel('room:1');
    expect((await replyOf(room.join())).status).toBe('ok');
    expect((await replyOf(socket.channel('room:locked').join())).response).toEqual({
      reason: 'unauthorized',
    });
    expect((await replyOf(socket.channel('nowhere').join())).status).toBe('error');
    expect(joined).toMatchObject([
      { topic: 'room:1', result: 'ok', transport: 'websocket' },
      { topic: 'room:locked', result: 'error', reason: 'unauthorized', transport: 'websocket' },
      { topic: 'nowhere', result: 'error', reason: 'unmatched topic', transport: 'websocket' },
    ]);
    for (const event of joined) expect(event.durationMs).toBeGreaterThanOrEqual(0);

    expect((await replyOf(room.push('echo', { a: 1 }))).response).toEqual({ a: 1 });
    expect((await replyOf(room.push('slow', {}))).status).toBe('ok');
    expect(handled).toMatchObject([
      { topic: 'room:1', event: 'echo' },
      { topic: 'room:1', event: 'slow' },
    ]);
    // The async handler's wait counts.
    expect(handled[1]!.durationMs).toBeGreaterThanOrEqual(15);

    await replyOf(room.leave());
    await until(() => left.length >= 1, 'channel_left');
    expect(left).toEqual([{ topic: 'room:1' }]);
  });
});

describe('genapi_request', () => {
  const push = async (socket: Socket, request: Record<string, unknown>) => {
    const channel = socket.channel('gen_api:lobby');
    await replyOf(channel.join());
    return replyOf(channel.push('phoenix_gen_api', { request_id: 'r', ...request }));
  };

  it('reports each outcome with service, function, duration and stream', async () => {
    const events = record('genapi_request');
    const socket = await connected();
    const cases: [Record<string, unknown>, string][] = [
      [{ service: 'calc', request_type: 'add', args: { a: 1, b: 2 } }, 'ok'],
      [{ service: 'calc', request_type: 'fail', args: {} }, 'error'],
      [{ service: 'calc', request_type: 'slow', args: {} }, 'timeout'],
      [{ service: 'calc', request_type: 'nope', args: {} }, 'not_found'],
      [{ service: 'calc', request_type: 'add', args: { a: 'x', b: 2 } }, 'invalid'],
      [{ service: 'calc', request_type: 'count', args: { to: 3 } }, 'ok'],
    ];
    for (const [request, outcome] of cases) {
      const before = events.length;
      await push(socket, request);
      await until(() => events.length > before, `the event of ${JSON.stringify(request)}`);
      expect(events[before]).toMatchObject({
        service: 'calc',
        function: request.request_type,
        outcome,
        stream: request.request_type === 'count',
      });
      expect(events[before]!.durationMs).toBeGreaterThanOrEqual(0);
    }
    // The timed-out call waited for its 100 ms timeout.
    expect(events[2]!.durationMs).toBeGreaterThanOrEqual(90);
  });

  it('a stream the client leaves ends as cancelled, when it ends', async () => {
    const events = record('genapi_request');
    const socket = await connected();
    const channel = socket.channel('gen_api:lobby');
    await replyOf(channel.join());
    let chunks = 0;
    channel.on('phoenix_gen_api', () => chunks++);
    await replyOf(
      channel.push('phoenix_gen_api', {
        request_id: 't',
        service: 'calc',
        request_type: 'ticker',
        args: {},
      }),
    );
    await until(() => chunks >= 3, 'a few chunks');
    // Running: no event yet.
    expect(events).toEqual([]);
    channel.leave();
    await until(() => events.length === 1, 'the stream event');
    expect(events[0]).toMatchObject({
      service: 'calc',
      function: 'ticker',
      outcome: 'cancelled',
      stream: true,
    });
  });
});

describe('handlers', () => {
  it('a throwing handler is detached and logged once; the others still get events', async () => {
    const telemetry = app.gateway.telemetry;
    let calls = 0;
    telemetry.on('channel_left', () => {
      calls++;
      throw new Error('handler bug');
    });
    const good = record('channel_left');
    const socket = await connected();
    for (const topic of ['room:a', 'room:b']) {
      const channel = socket.channel(topic);
      await replyOf(channel.join());
      await replyOf(channel.leave());
    }
    await until(() => good.length >= 2, 'two channel_left');
    expect(calls).toBe(1);
    const logged = app.log.withMessage('telemetry handler failed and was detached');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ event: 'channel_left', err: { message: 'handler bug' } });
  });

  it('has() is false once the last handler detached', () => {
    const telemetry = app.gateway.telemetry;
    expect(telemetry.has('socket_drain')).toBe(false);
    const off = telemetry.on('socket_drain', () => undefined);
    expect(telemetry.has('socket_drain')).toBe(true);
    off();
    off();
    expect(telemetry.has('socket_drain')).toBe(false);
  });
});

/**
 * Prometheus metrics of an in-process gateway, scraped over HTTP and parsed (test/support/
 * prom-text.ts): the values move as real `phoenix` clients connect, join, push and leave, as
 * gen_api calls succeed and fail, and as the gateway closes a flooding client and a slow consumer.
 * Two gateways in one process keep separate registries.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LongPoll, Socket, type TransportConstructor } from 'phoenix';
import { gatewayMetrics, type GatewayMetrics } from '../../src/index.js';
import { releaseHeld, startMetricsApp, type MetricsApp } from '../support/metrics-app.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { scrape, type Scrape } from '../support/prom-text.js';
import { RawClient } from '../support/ws-client.js';
import { eventually, until } from '../support/wait.js';

let app: MetricsApp;
let metrics: GatewayMetrics;
const sockets: Socket[] = [];

beforeAll(async () => {
  app = await startMetricsApp();
  metrics = gatewayMetrics(app.gateway, app.genApi);
  app.gateway.route('/metrics', metrics.route);
});
afterAll(async () => {
  await app?.close();
});
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  // LongPoll sessions outlive their client until their window expires: WebSocket ones only.
  const { stats } = app.gateway;
  await until(
    () => stats.sockets - stats.longpollSessions === 0,
    'every WebSocket of the test gone',
  );
});

const read = (target: MetricsApp = app): Promise<Scrape> =>
  scrape(`http://127.0.0.1:${target.port}/metrics`);

async function connected(
  params: Record<string, unknown> = { user_id: 'u1' },
  transport: TransportConstructor = WebSocket,
): Promise<Socket> {
  const socket = new Socket(`ws://127.0.0.1:${app.port}/socket`, { transport, params });
  sockets.push(socket);
  socket.connect();
  await waitFor(() => socket.isConnected(), 'socket open');
  return socket;
}

describe('the endpoint', () => {
  it('serves the text format with its content type; HEAD has no body; POST is refused', async () => {
    const response = await fetch(`http://127.0.0.1:${app.port}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const head = await fetch(`http://127.0.0.1:${app.port}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(`http://127.0.0.1:${app.port}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('every metric is prefixed gen_gateway_, typed and documented; process metrics are there', async () => {
    const scraped = await read();
    for (const family of scraped.families.values()) {
      expect(family.name).toMatch(/^gen_gateway_/);
      expect(family.help).not.toBe('');
      expect(['counter', 'gauge', 'histogram', 'summary']).toContain(family.type);
    }
    expect(scraped.type('gen_gateway_process_cpu_user_seconds_total')).toBe('counter');
    expect(scraped.value('gen_gateway_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(scraped.type('gen_gateway_genapi_request_duration_seconds')).toBe('histogram');
    // No NATS link here.
    expect(scraped.value('gen_gateway_nats_connected')).toBe(0);
    expect(scraped.samples('gen_gateway_nats_status')).toEqual([]);
  });

  it('two gateways in one process: separate registries, separate values', async () => {
    const other = await startMetricsApp();
    try {
      const otherMetrics = gatewayMetrics(other.gateway, other.genApi);
      other.gateway.route('/metrics', otherMetrics.route);
      expect(otherMetrics.registry).not.toBe(metrics.registry);
      await connected();
      const [mine, theirs] = await Promise.all([read(), read(other)]);
      expect(mine.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(1);
      expect(theirs.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(0);
    } finally {
      await other.close();
    }
  });
});

describe('sockets, channels, messages', () => {
  it('sockets and channels by transport move as clients connect, join and leave', async () => {
    const before = await read();
    expect(before.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(0);
    expect(before.value('gen_gateway_channels', { transport: 'longpoll' })).toBe(0);

    const ws = await connected();
    const lp = await connected({ user_id: 'u2' }, LongPoll);
    const wsRoom = ws.channel('room:1');
    const lpRoom = lp.channel('room:2');
    await replyOf(wsRoom.join());
    await replyOf(lpRoom.join());
    await replyOf(ws.channel('room:locked').join());
    await replyOf(ws.channel('nowhere').join());

    const during = await read();
    expect(during.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(1);
    expect(during.value('gen_gateway_sockets', { transport: 'longpoll' })).toBe(1);
    expect(during.value('gen_gateway_channels', { transport: 'websocket' })).toBe(1);
    expect(during.value('gen_gateway_channels', { transport: 'longpoll' })).toBe(1);
    expect(
      during.value('gen_gateway_channel_joins_total', { result: 'ok', reason: '' }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      during.value('gen_gateway_channel_joins_total', { result: 'error', reason: 'unauthorized' }),
    ).toBe(1);
    expect(
      during.value('gen_gateway_channel_joins_total', {
        result: 'error',
        reason: 'unmatched topic',
      }),
    ).toBe(1);
    expect(
      during.value('gen_gateway_connects_total', {
        transport: 'longpoll',
        result: 'ok',
        status: '',
      }),
    ).toBeGreaterThanOrEqual(1);

    // phoenix.js answers a leave itself at once: wait for the gateway to have it.
    wsRoom.leave();
    lpRoom.leave();
    await eventually(async () => {
      const after = await read();
      expect(after.value('gen_gateway_channels', { transport: 'websocket' })).toBe(0);
      expect(after.value('gen_gateway_channels', { transport: 'longpoll' })).toBe(0);
    }, 'both channels left');

    ws.disconnect();
    await eventually(async () => {
      const gone = await read();
      expect(gone.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(0);
    }, 'the WebSocket gone');
  });

  it('messages and bytes in/out count what crossed the sockets', async () => {
    const socket = await connected();
    const room = socket.channel('room:bytes');
    await replyOf(room.join());
    const before = await read();
    const payload = { text: 'x'.repeat(1000) };
    for (let i = 0; i < 5; i++) await replyOf(room.push('echo', payload));
    const after = await read();
    const delta = (name: string) => after.value(name)! - before.value(name)!;
    // Five pushes in and five replies out, each over 1000 bytes (+ the scrape-to-scrape heartbeats).
    expect(delta('gen_gateway_messages_in_total')).toBeGreaterThanOrEqual(5);
    expect(delta('gen_gateway_messages_out_total')).toBeGreaterThanOrEqual(5);
    expect(delta('gen_gateway_bytes_in_total')).toBeGreaterThanOrEqual(5000);
    expect(delta('gen_gateway_bytes_out_total')).toBeGreaterThanOrEqual(5000);
  });

  it('a connect refused by the connect hook counts by status', async () => {
    const before = await read();
    const labels = { transport: 'websocket', result: 'error', status: '403' };
    const refused = new WebSocket(`ws://127.0.0.1:${app.port}/socket/websocket?refuse=1`);
    await new Promise((resolve) => refused.once('error', resolve));
    const after = await read();
    expect(
      (after.value('gen_gateway_connects_total', labels) ?? 0) -
        (before.value('gen_gateway_connects_total', labels) ?? 0),
    ).toBe(1);
  });
});

describe('gen_api requests', () => {
  it('requests by service/function/outcome and the duration histogram', async () => {
    const socket = await connected();
    const channel = socket.channel('gen_api:lobby');
    await replyOf(channel.join());
    const call = (request_type: string, args: object) =>
      replyOf(
        channel.push('phoenix_gen_api', { request_id: 'r', service: 'calc', request_type, args }),
      );
    await call('add', { a: 1, b: 2 });
    await call('add', { a: 3, b: 4 });
    await call('fail', {});
    await call('slow', {});
    await call('ghost', {});
    await call('count', { to: 2 });

    const requests = (fn: string, outcome: string) =>
      scraped.value('gen_gateway_genapi_requests_total', {
        service: 'calc',
        function: fn,
        outcome,
      });
    let scraped = await read();
    await eventually(async () => {
      scraped = await read();
      // The stream's event comes with its last chunk, after the reply.
      expect(requests('count', 'ok')).toBe(1);
    }, 'the stream counted');
    expect(requests('add', 'ok')).toBe(2);
    expect(requests('fail', 'error')).toBe(1);
    expect(requests('slow', 'timeout')).toBe(1);
    // A function the gateway does not know: the client's names are not label values.
    expect(
      scraped.value('gen_gateway_genapi_requests_total', {
        service: '(unknown)',
        function: '(unknown)',
        outcome: 'not_found',
      }),
    ).toBe(1);
    expect(scraped.samples('gen_gateway_genapi_requests_total', { function: 'ghost' })).toEqual([]);

    const histogram = { service: 'calc', function: 'add' };
    expect(scraped.value('gen_gateway_genapi_request_duration_seconds_count', histogram)).toBe(2);
    expect(
      scraped.value('gen_gateway_genapi_request_duration_seconds_bucket', {
        ...histogram,
        le: '+Inf',
      }),
    ).toBe(2);
    expect(
      scraped.value('gen_gateway_genapi_request_duration_seconds_sum', histogram),
    ).toBeGreaterThan(0);
    // The timed-out call took at least its 100 ms timeout: not in the 50 ms bucket.
    const slow = { service: 'calc', function: 'slow' };
    expect(
      scraped.value('gen_gateway_genapi_request_duration_seconds_bucket', { ...slow, le: '0.05' }),
    ).toBe(0);
    expect(scraped.value('gen_gateway_genapi_request_duration_seconds_count', slow)).toBe(1);
    expect(scraped.value('gen_gateway_genapi_inflight')).toBe(0);
    expect(scraped.value('gen_gateway_genapi_streams')).toBe(0);
    // The calls went through calc's service breaker: closed (one timeout is under its 10 failures).
    const breaker = (state: string) =>
      scraped.value('gen_gateway_breaker_state', { scope: 'service', name: 'calc', state });
    expect(breaker('closed')).toBe(1);
    for (const state of ['open', 'half_open', 'isolated', 'stalled'])
      expect(breaker(state)).toBe(0);
  });

  it('the in-flight and stream gauges count a running call and a running stream, then 0', async () => {
    const socket = await connected();
    const channel = socket.channel('gen_api:lobby');
    await replyOf(channel.join());
    let chunks = 0;
    channel.on('phoenix_gen_api', () => chunks++);
    const held = replyOf(
      channel.push('phoenix_gen_api', { request_id: 'h', service: 'calc', request_type: 'hold' }),
    );
    const ticker = await replyOf(
      channel.push('phoenix_gen_api', {
        request_id: 't',
        service: 'calc',
        request_type: 'ticker',
        args: {},
      }),
    );
    expect(ticker.status).toBe('ok');
    await until(() => chunks > 0, 'the stream running');
    const during = await eventually(async () => {
      const now = await read();
      expect(now.value('gen_gateway_genapi_inflight')).toBe(1);
      return now;
    }, 'the held call in flight');
    expect(during.value('gen_gateway_genapi_streams')).toBe(1);

    // The call ends; the stream ends when its client goes (it is cancelled).
    expect(releaseHeld()).toBe(1);
    expect((await held).status).toBe('ok');
    const afterCall = await read();
    expect(afterCall.value('gen_gateway_genapi_inflight')).toBe(0);
    expect(afterCall.value('gen_gateway_genapi_streams')).toBe(1);
    socket.disconnect();
    await eventually(async () => {
      const now = await read();
      expect(now.value('gen_gateway_genapi_streams')).toBe(0);
      expect(now.value('gen_gateway_genapi_inflight')).toBe(0);
    }, 'the stream gone');
  });
});

describe('circuit breakers', () => {
  it('breaker_state shows a service breaker open after its consecutive timeouts', async () => {
    const own = await startMetricsApp({
      genApi: { resilience: { serviceFailures: 2, halfOpenAfterMs: 60_000 } },
    });
    const socket = new Socket(`ws://127.0.0.1:${own.port}/socket`, {
      transport: WebSocket,
      params: { user_id: 'u1' },
    });
    try {
      const ownMetrics = gatewayMetrics(own.gateway, own.genApi, { processMetrics: false });
      own.gateway.route('/metrics', ownMetrics.route);
      socket.connect();
      const channel = socket.channel('gen_api:lobby');
      await replyOf(channel.join());
      const answers: Record<string, unknown>[] = [];
      channel.on('phoenix_gen_api', (payload) => answers.push(payload as Record<string, unknown>));
      const call = (request_id: string) =>
        replyOf(
          channel.push('phoenix_gen_api', { request_id, service: 'calc', request_type: 'slow' }),
        );
      const breaker = (scraped: Scrape, state: string) =>
        scraped.value('gen_gateway_breaker_state', { scope: 'service', name: 'calc', state });

      await call('1');
      const once = await read(own);
      expect(breaker(once, 'closed')).toBe(1);
      expect(breaker(once, 'open')).toBe(0);
      // The second consecutive timeout opens it; the third call is refused without running.
      await call('2');
      await call('3');
      const open = await read(own);
      expect(breaker(open, 'open')).toBe(1);
      expect(breaker(open, 'closed')).toBe(0);
      expect(breaker(open, 'half_open')).toBe(0);
      expect(
        open.value('gen_gateway_genapi_requests_total', {
          service: 'calc',
          function: 'slow',
          outcome: 'timeout',
        }),
      ).toBe(2);
      await until(() => answers.some((a) => a.request_id === '3'), 'the refused call answered');
      expect(answers.find((a) => a.request_id === '3')).toMatchObject({
        success: false,
        can_retry: true,
      });
    } finally {
      socket.disconnect();
      await own.close();
    }
  });
});

describe('label limits', () => {
  it('pairs past maxFunctionLabels and reasons past maxReasonLabels count as other', async () => {
    const own = await startMetricsApp();
    try {
      const ownMetrics = gatewayMetrics(own.gateway, own.genApi, {
        processMetrics: false,
        maxFunctionLabels: 1,
        maxReasonLabels: 1,
      });
      own.gateway.route('/metrics', ownMetrics.route);
      const socket = new Socket(`ws://127.0.0.1:${own.port}/socket`, {
        transport: WebSocket,
        params: { user_id: 'u1' },
      });
      socket.connect();
      try {
        const channel = socket.channel('gen_api:lobby');
        await replyOf(channel.join());
        for (const request_type of ['add', 'fail', 'fail'])
          await replyOf(
            channel.push('phoenix_gen_api', {
              request_id: 'r',
              service: 'calc',
              request_type,
              args: { a: 1, b: 1 },
            }),
          );
        await replyOf(socket.channel('room:locked').join());
        await replyOf(socket.channel('nowhere').join());
        const scraped = await read(own);
        expect(
          scraped.value('gen_gateway_genapi_requests_total', {
            service: 'calc',
            function: 'add',
            outcome: 'ok',
          }),
        ).toBe(1);
        expect(
          scraped.value('gen_gateway_genapi_requests_total', {
            service: 'other',
            function: 'other',
            outcome: 'error',
          }),
        ).toBe(2);
        // The gen_api join took the one reason slot (""), so both refusals are `other`.
        expect(
          scraped.value('gen_gateway_channel_joins_total', { result: 'error', reason: 'other' }),
        ).toBe(2);
      } finally {
        socket.disconnect();
      }
    } finally {
      await own.close();
    }
  });
});

describe('closes by the gateway', () => {
  it('a message flood and a slow consumer show in socket_closes_total', async () => {
    const own = await startMetricsApp({
      socket: {
        messageRate: { limit: 1, windowMs: 60_000, burst: 1, floodDenials: 2 },
        maxBufferedBytes: 64 * 1024,
        maxBufferedBytesHard: 1024 * 1024,
      },
    });
    try {
      const ownMetrics = gatewayMetrics(own.gateway, own.genApi, { processMetrics: false });
      own.gateway.route('/metrics', ownMetrics.route);
      const url = `ws://127.0.0.1:${own.port}/socket/websocket?vsn=2.0.0`;

      const flooder = await RawClient.connect(url);
      for (let i = 0; i < 6; i++) flooder.send(['1', String(i), 'room:f', 'echo', {}]);
      expect((await flooder.closed).code).toBe(1008);

      const slow = await RawClient.connect(url);
      await slow.join('room:s', '1');
      slow.pauseReading();
      const data = 'h'.repeat(1024 * 1024);
      // Kernel buffers take a few MB; 64 MB cannot all fit.
      for (let n = 0; n < 64 && own.gateway.stats.slowConsumers === 0; n++)
        own.gateway.broadcast('room:s', 'chunk', { n, data });
      slow.resumeReading();
      await slow.closed;

      const scraped = await read(own);
      expect(scraped.value('gen_gateway_socket_closes_total', { reason: 'flood' })).toBe(1);
      expect(scraped.value('gen_gateway_socket_closes_total', { reason: 'slow_consumer' })).toBe(1);
      expect(scraped.value('gen_gateway_rate_limited_messages_total')).toBeGreaterThanOrEqual(2);
      expect(scraped.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(0);
      // processMetrics: false
      expect(scraped.samples('gen_gateway_process_cpu_user_seconds_total')).toEqual([]);
    } finally {
      await own.close();
    }
  });
});

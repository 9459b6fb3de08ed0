/**
 * Metrics as the `gen-gateway` command serves them (startGateway): `/metrics` on the gateway port
 * with a real nats-server and a real SDK worker (gen_api outcome labels and histogram counts over
 * NATS, discovered instances, breaker and NATS gauges, an instance and a service breaker opened
 * by timeouts, the status gauge flipping when NATS goes down and back), the `ops` listener, and
 * `enabled: false`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { NatsServer } from '../support/nats.js';
import { startWorker, type Worker } from '../support/genapi-app.js';
import { calcService, LogLines } from '../support/metrics-app.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { scrape, type Scrape } from '../support/prom-text.js';
import { eventually, until } from '../support/wait.js';

const connectHook = {
  connect: ({ params }: { params: Record<string, unknown> }) => ({
    assigns: { user_id: typeof params.user_id === 'string' ? params.user_id : null },
  }),
};

async function joinedGenApi(port: number): Promise<{ socket: Socket; channel: Channel }> {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: 'u1' },
  });
  socket.connect();
  await waitFor(() => socket.isConnected(), 'socket open');
  const channel = socket.channel('gen_api:lobby');
  expect((await replyOf(channel.join())).status).toBe('ok');
  return { socket, channel };
}

describe('on NATS with a real worker', () => {
  let nats: NatsServer;
  let worker: Worker;
  let running: RunningGateway;
  let socket: Socket;
  let channel: Channel;
  const read = (): Promise<Scrape> => scrape(`http://127.0.0.1:${running.address.port}/metrics`);
  const call = (request_type: string, args: object = {}) =>
    replyOf(
      channel.push('phoenix_gen_api', { request_id: 'r', service: 'calc', request_type, args }),
    );

  beforeAll(async () => {
    nats = await NatsServer.start();
    worker = await startWorker(calcService, nats.url);
    running = await startGateway({
      config: {
        nats: {
          servers: nats.url,
          reconnectTimeWaitMs: 100,
          trustedNetwork: true,
          discovery: { intervalMs: 200, ttlMs: 1_000, pingWaitMs: 100 },
        },
        socket: connectHook,
      },
      fromFile: true,
      port: 0,
      logger: new LogLines().logger,
    });
    await until(
      () =>
        running.genApi.registry.resolve('calc', 'add', null).ok &&
        running.genApi.nats!.discovery.instances('calc').length === 1,
      'the worker',
    );
    ({ socket, channel } = await joinedGenApi(running.address.port));
  }, 20_000);
  afterAll(async () => {
    socket?.disconnect();
    await running?.gateway.close();
    await worker?.stop();
    await nats?.dispose();
  });

  it('gen_api outcomes and durations of calls a worker answers', async () => {
    await call('add', { a: 1, b: 2 });
    await call('fail');
    await call('slow');
    await call('count', { to: 3 });
    const requests = (scraped: Scrape, fn: string, outcome: string) =>
      scraped.value('gen_gateway_genapi_requests_total', {
        service: 'calc',
        function: fn,
        outcome,
      });
    const scraped = await eventually(async () => {
      const now = await read();
      expect(requests(now, 'count', 'ok')).toBe(1);
      return now;
    }, 'the stream counted');
    expect(requests(scraped, 'add', 'ok')).toBe(1);
    expect(requests(scraped, 'fail', 'error')).toBe(1);
    expect(requests(scraped, 'slow', 'timeout')).toBe(1);
    expect(
      scraped.value('gen_gateway_genapi_request_duration_seconds_count', {
        service: 'calc',
        function: 'add',
      }),
    ).toBe(1);
    expect(
      scraped.value('gen_gateway_genapi_request_duration_seconds_bucket', {
        service: 'calc',
        function: 'slow',
        le: '0.05',
      }),
    ).toBe(0);
  });

  it('NATS, discovery and breaker gauges', async () => {
    const scraped = await read();
    expect(scraped.value('gen_gateway_nats_connected')).toBe(1);
    expect(scraped.value('gen_gateway_nats_status', { status: 'connected' })).toBe(1);
    expect(scraped.value('gen_gateway_nats_status', { status: 'reconnecting' })).toBe(0);
    const rtt = scraped.value('gen_gateway_nats_rtt_seconds')!;
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(1);
    expect(scraped.value('gen_gateway_discovered_instances', { service: 'calc' })).toBe(1);
    expect(scraped.value('gen_gateway_genapi_functions')).toBeGreaterThanOrEqual(4);
    expect(
      scraped.value('gen_gateway_breaker_state', {
        scope: 'service',
        name: 'calc',
        state: 'closed',
      }),
    ).toBe(1);
    // On NATS the gateway is a cluster node.
    expect(scraped.value('gen_gateway_cluster_connected')).toBe(1);
    // The demo's rate limits are off (no --demo), but the limiter exists: no policy, no series.
    expect(scraped.samples('gen_gateway_ratelimit_checks_total')).toEqual([]);
  });

  it('breaker_state shows the worker instance and its service open after consecutive timeouts', async () => {
    const own = await startGateway({
      config: {
        nats: {
          servers: nats.url,
          trustedNetwork: true,
          discovery: { intervalMs: 200, ttlMs: 1_000, pingWaitMs: 100 },
        },
        genApi: {
          resilience: { instanceFailures: 2, serviceFailures: 2, halfOpenAfterMs: 60_000 },
        },
        socket: connectHook,
      },
      fromFile: true,
      port: 0,
      logger: new LogLines().logger,
    });
    const ownRead = () => scrape(`http://127.0.0.1:${own.address.port}/metrics`);
    await until(
      () => own.genApi.nats?.discovery.instances('calc').length === 1,
      'the worker discovered',
    );
    const joined = await joinedGenApi(own.address.port);
    try {
      const instance = own.genApi.nats!.discovery.instances('calc')[0]!.id;
      const breaker = (scraped: Scrape, scope: string, name: string, state: string) =>
        scraped.value('gen_gateway_breaker_state', { scope, name, state });
      const slow = (request_id: string) =>
        replyOf(
          joined.channel.push('phoenix_gen_api', {
            request_id,
            service: 'calc',
            request_type: 'slow',
          }),
        );
      await slow('1');
      const once = await ownRead();
      expect(breaker(once, 'instance', instance, 'closed')).toBe(1);
      expect(breaker(once, 'service', 'calc', 'closed')).toBe(1);
      // The second timeout in a row (the worker's `slow` outlives its 100 ms) opens both.
      await slow('2');
      await eventually(async () => {
        const now = await ownRead();
        expect(breaker(now, 'instance', instance, 'open')).toBe(1);
        expect(breaker(now, 'instance', instance, 'closed')).toBe(0);
        expect(breaker(now, 'service', 'calc', 'open')).toBe(1);
        expect(breaker(now, 'service', 'calc', 'closed')).toBe(0);
      }, 'both breakers open');
      // The shared gateway's breakers are its own: still closed.
      expect(
        (await read()).value('gen_gateway_breaker_state', {
          scope: 'service',
          name: 'calc',
          state: 'closed',
        }),
      ).toBe(1);
    } finally {
      joined.socket.disconnect();
      await own.gateway.close();
    }
  }, 20_000);

  it('the NATS status gauge flips when NATS goes down and back; calls meanwhile are unavailable', async () => {
    await nats.stop();
    const down = await eventually(async () => {
      const now = await read();
      expect(now.value('gen_gateway_nats_connected')).toBe(0);
      return now;
    }, 'nats_connected 0');
    expect(down.value('gen_gateway_nats_status', { status: 'connected' })).toBe(0);
    expect(Number.isNaN(down.value('gen_gateway_nats_rtt_seconds'))).toBe(true);
    expect(down.value('gen_gateway_cluster_connected')).toBe(0);

    await call('add', { a: 1, b: 1 });
    await eventually(async () => {
      const now = await read();
      expect(
        now.value('gen_gateway_genapi_requests_total', {
          service: 'calc',
          function: 'add',
          outcome: 'unavailable',
        }),
      ).toBe(1);
    }, 'the unavailable call counted');

    await nats.restart();
    await eventually(
      async () => {
        const now = await read();
        expect(now.value('gen_gateway_nats_connected')).toBe(1);
        expect(now.value('gen_gateway_nats_reconnects_total')).toBeGreaterThanOrEqual(1);
      },
      'nats_connected 1 again',
      20_000,
    );
  }, 40_000);
});

describe('where metrics are served', () => {
  it('the ops listener serves /metrics, /healthz and /readyz; enabled: false keeps /metrics off the gateway port', async () => {
    const running = await startGateway({
      config: { socket: connectHook, metrics: { enabled: false, ops: { port: 0 } } },
      fromFile: true,
      port: 0,
      logger: new LogLines().logger,
    });
    try {
      const gatewayPort = running.address.port;
      const ops = running.metrics.ops!;
      expect(ops.address).toBe('127.0.0.1');
      expect(ops.port).not.toBe(gatewayPort);
      expect((await fetch(`http://127.0.0.1:${gatewayPort}/metrics`)).status).toBe(404);
      const scraped = await scrape(`http://127.0.0.1:${ops.port}/metrics`);
      expect(scraped.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(0);
      expect((await fetch(`http://127.0.0.1:${ops.port}/healthz`)).status).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${ops.port}/readyz`)).json()).toEqual({
        status: 'ready',
      });
      expect((await fetch(`http://127.0.0.1:${ops.port}/socket/websocket`)).status).toBe(404);
      // The socket endpoint is on the gateway port only.
      const { socket } = await joinedGenApi(gatewayPort);
      try {
        const now = await scrape(`http://127.0.0.1:${ops.port}/metrics`);
        expect(now.value('gen_gateway_sockets', { transport: 'websocket' })).toBe(1);
      } finally {
        socket.disconnect();
      }
    } finally {
      await running.gateway.close();
    }
    // Closed with the gateway.
    await expect(fetch(`http://127.0.0.1:${running.metrics.ops!.port}/healthz`)).rejects.toThrow();
  });

  it('by default /metrics is on the gateway port and there is no ops listener', async () => {
    const running = await startGateway({
      config: { socket: connectHook },
      fromFile: true,
      port: 0,
      logger: new LogLines().logger,
    });
    try {
      expect(running.metrics.ops).toBeNull();
      const scraped = await scrape(`http://127.0.0.1:${running.address.port}/metrics`);
      expect(scraped.value('gen_gateway_sockets', { transport: 'longpoll' })).toBe(0);
    } finally {
      await running.gateway.close();
    }
  });

  it('rate-limit decisions by policy and outcome, from real gen_api requests', async () => {
    const running = await startGateway({
      config: {
        socket: connectHook,
        setup: (_gateway, genApi) => {
          genApi.register(calcService);
        },
        rateLimits: {
          policies: [
            { id: 'per-user', key: 'user_id', limit: 1, windowMs: 60_000 },
            { id: 'watch', key: 'user_id', limit: 1, windowMs: 60_000, shadow: true },
          ],
        },
      },
      fromFile: true,
      port: 0,
      logger: new LogLines().logger,
    });
    const { socket, channel } = await joinedGenApi(running.address.port);
    try {
      for (let i = 0; i < 3; i++)
        await replyOf(
          channel.push('phoenix_gen_api', {
            request_id: String(i),
            service: 'calc',
            request_type: 'add',
            args: { a: 1, b: 2 },
          }),
        );
      const scraped = await eventually(async () => {
        const now = await scrape(`http://127.0.0.1:${running.address.port}/metrics`);
        expect(
          now.value('gen_gateway_genapi_requests_total', {
            service: 'calc',
            function: 'add',
            outcome: 'rate_limited',
          }),
        ).toBe(2);
        return now;
      }, 'two rate-limited requests');
      expect(scraped.value('gen_gateway_ratelimit_checks_total', { policy: 'per-user' })).toBe(3);
      expect(
        scraped.value('gen_gateway_ratelimit_decisions_total', {
          policy: 'per-user',
          outcome: 'denied',
        }),
      ).toBe(2);
      expect(
        scraped.value('gen_gateway_ratelimit_decisions_total', {
          policy: 'watch',
          outcome: 'would_deny',
        }),
      ).toBe(2);
    } finally {
      socket.disconnect();
      await running.gateway.close();
    }
  });

  it('auth connects by result and reason', async () => {
    const secretKeyBase = 'a-secret-key-base-of-at-least-64-bytes-for-the-gateway-tests-0123456789';
    const running = await startGateway({
      config: { auth: { phoenixToken: { secretKeyBase, salt: 'user socket', maxAge: null } } },
      fromFile: true,
      port: 0,
      logger: new LogLines().logger,
    });
    try {
      const port = running.address.port;
      // No token, then one that is not a Phoenix token.
      for (const query of ['', '&token=not-a-token']) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0${query}`);
        await new Promise((resolve) => ws.once('error', resolve));
      }
      const scraped = await scrape(`http://127.0.0.1:${port}/metrics`);
      const auth = (result: string, reason: string) =>
        scraped.value('gen_gateway_auth_connects_total', {
          strategy: 'phoenixToken',
          result,
          reason,
        });
      expect(auth('accepted', '')).toBe(0);
      expect(auth('refused', 'missing')).toBe(1);
      expect(auth('refused', 'malformed')! + auth('refused', 'invalid')!).toBe(1);
      expect(
        scraped.value('gen_gateway_connects_total', {
          transport: 'websocket',
          result: 'error',
          status: '403',
        }),
      ).toBe(2);
    } finally {
      await running.gateway.close();
    }
  });

  it('bad metrics options fail with a clear error', async () => {
    await expect(
      startGateway({
        config: { metrics: { ops: { port: 70_000 } } },
        fromFile: true,
        port: 0,
        logger: new LogLines().logger,
      }),
    ).rejects.toThrow('metrics.ops.port must be at most 65535, got 70000');
  });
});

/**
 * The dashboard channel on a gateway built by startGateway with an admin token, a real nats-server,
 * an SDK worker and a rate-limit policy: the token rule (authToken or `token` param, 401 without,
 * the admin API's per-IP budget shared), the snapshot's shape, and its values moving as sockets
 * connect and gen_api calls happen, pushed by one timer to every viewer; every snapshot conforms to
 * its schema in protocol/. And at the default interval, a push at least once a second.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { DASHBOARD_DEFAULTS } from '../../src/dashboard/options.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { startWorker, type Worker } from '../support/genapi-app.js';
import { ApiClient } from '../support/genapi-client.js';
import { slowService } from '../support/genapi-services.js';
import { NatsServer } from '../support/nats.js';
import { conforms } from '../support/protocol.js';
import { until } from '../support/wait.js';
import { bearerProtocol, connectViewer, upgradeStatus, type Viewer } from './viewer.js';

const TOKEN = 'dashboard-token-0123456789abcdef';
const INTERVAL_MS = 200;

describe('admin:dashboard with an admin token', () => {
  let nats: NatsServer;
  let running: RunningGateway;
  let worker: Worker;
  let port = 0;
  const viewers: Viewer[] = [];

  const socketUrl = (query = '') =>
    `ws://127.0.0.1:${port}/admin/socket/websocket?vsn=2.0.0${query}`;
  const viewer = async (options: Parameters<typeof connectViewer>[1] = { token: TOKEN }) => {
    const v = await connectViewer(port, options);
    viewers.push(v);
    return v;
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
    worker = await startWorker(slowService('W', { calls: 0, inflight: 0 }), nats.url);
    running = await startGateway({
      config: {
        // The test's clients are all 127.0.0.1: X-Forwarded-For from it names distinct clients.
        admin: { token: TOKEN, maxAuthFailures: 3, trustedProxies: ['127.0.0.1'] },
        dashboard: { intervalMs: INTERVAL_MS },
        nats: {
          servers: nats.url,
          trustedNetwork: true,
          discovery: { intervalMs: 200, ttlMs: 1_000, pingWaitMs: 100 },
        },
        rateLimits: {
          policies: [
            {
              id: 'echo.per-user',
              scope: { service: 'slowsvc', requestType: 'echo' },
              key: 'user_id',
              limit: 3,
              windowMs: 60_000,
            },
          ],
        },
        socket: {
          connect: ({ params }) => ({ assigns: { user_id: params.user_id ?? null } }),
        },
      },
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    port = running.address.port;
    await until(
      () =>
        running.genApi.registry.resolve('slowsvc', 'echo', null).ok &&
        running.genApi.nats!.discovery.instances('slowsvc').length === 1,
      'the worker',
    );
  }, 20_000);

  afterAll(async () => {
    for (const v of viewers) v.close();
    await running?.gateway.close();
    await worker?.stop();
    await nats?.dispose();
  });

  it('refuses a missing or wrong token with 401; takes it as authToken or as the token param', async () => {
    const client = { 'x-forwarded-for': '10.0.0.1' };
    expect((await upgradeStatus(socketUrl(), { headers: client })).status).toBe(401);
    expect(
      (
        await upgradeStatus(socketUrl(), {
          protocols: ['phoenix', bearerProtocol('wrong-token-0123456789abcdef')],
          headers: { 'x-forwarded-for': '10.0.0.5' },
        })
      ).status,
    ).toBe(401);
    expect(
      (await upgradeStatus(socketUrl(), { protocols: ['phoenix', bearerProtocol(TOKEN)] })).status,
    ).toBe(101);
    expect((await upgradeStatus(socketUrl(`&token=${TOKEN}`))).status).toBe(101);
    // The real client with authToken, and the param.
    expect((await viewer({ token: TOKEN })).join.status).toBe('ok');
    expect((await viewer({ params: { token: TOKEN } })).join.status).toBe('ok');
  });

  it('after admin.maxAuthFailures wrong tokens an IP gets 429, on the admin API too; others are not locked out', async () => {
    const guesser = { 'x-forwarded-for': '10.0.0.2' };
    const wrong = ['phoenix', bearerProtocol('guess-0123456789abcdef-guess')];
    for (let i = 0; i < 3; i++)
      expect(
        (await upgradeStatus(socketUrl(), { protocols: wrong, headers: guesser })).status,
      ).toBe(401);
    const locked = await upgradeStatus(socketUrl(), {
      protocols: ['phoenix', bearerProtocol(TOKEN)],
      headers: guesser,
    });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    // One budget: the admin API refuses the same IP, whatever it sends.
    const admin = await fetch(`http://127.0.0.1:${port}/admin/health`, {
      headers: { ...guesser, authorization: `Bearer ${TOKEN}` },
    });
    expect(admin.status).toBe(429);
    expect(
      (
        await upgradeStatus(socketUrl(), {
          protocols: ['phoenix', bearerProtocol(TOKEN)],
          headers: { 'x-forwarded-for': '10.0.0.3' },
        })
      ).status,
    ).toBe(101);
  });

  it('joins with a snapshot of everything the page shows', async () => {
    const v = await viewer();
    expect(v.join.status).toBe('ok');
    const snapshot = await v.next(
      (s) => s.nats?.rttMs !== null && s.cluster?.connected === true,
      'NATS round trip and the cluster',
    );
    expect(snapshot).toMatchObject({
      node: running.gateway.nodeId,
      intervalMs: INTERVAL_MS,
      sockets: { longpoll: 0 },
      channels: { unscanned: 0 },
      genApi: {
        windowMs: 10_000,
        inflight: 0,
        streams: 0,
        services: expect.arrayContaining(['slowsvc']) as unknown,
      },
      workers: {
        instances: 1,
        groups: [
          {
            service: 'slowsvc',
            version: '1.0.0',
            instances: 1,
            configVersions: [expect.any(String) as unknown],
          },
        ],
      },
      breakers: { instances: {} },
      rateLimits: {
        shadow: false,
        policies: [
          {
            id: 'echo.per-user',
            scope: { service: 'slowsvc', requestType: 'echo' },
            key: 'user_id',
            algorithm: 'sliding_log',
            mode: 'local',
            limit: 3,
            windowMs: 60_000,
          },
        ],
      },
      nats: {
        status: 'connected',
        server: expect.stringContaining(String(nats.port)) as unknown,
        lastError: null,
        pendingRequests: 0,
      },
      cluster: {
        connected: true,
        nodes: [{ node: running.gateway.nodeId, self: true }],
      },
    });
    expect(snapshot.sockets.dashboard).toBeGreaterThanOrEqual(1);
    expect(snapshot.sockets.total).toBeGreaterThanOrEqual(snapshot.sockets.dashboard);
    expect(snapshot.nats!.rttMs).toBeGreaterThanOrEqual(0);
    expect(snapshot.at).toBeLessThanOrEqual(Date.now());
  });

  it('values move as sockets connect, topics fill and gen_api calls happen', async () => {
    const v = await viewer();
    const before = v.snapshots[0]!;
    const url = `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=dash-user`;
    const clients = [await ApiClient.connect(url), await ApiClient.connect(url)];
    try {
      const connected = await v.next(
        (s) =>
          s.sockets.total >= before.sockets.total + 2 &&
          s.channels.top.some((t) => t.topic === 'gen_api:lobby' && t.subscribers === 2),
        'two more sockets on gen_api:lobby',
      );
      expect(connected.channels.joined).toBeGreaterThanOrEqual(before.channels.joined + 2);
      expect(connected.sockets.websocket).toBe(connected.sockets.total);

      // 3 allowed by echo.per-user, the 4th rate limited.
      for (let i = 1; i <= 4; i++)
        await clients[0]!.sync({
          request_id: `d${i}`,
          service: 'slowsvc',
          request_type: 'echo',
          args: { message: 'x' },
        });
      const called = await v.next(
        (s) =>
          s.genApi.functions.some((f) => f.function === 'echo' && f.count === 4) &&
          s.rateLimits!.policies[0]!.topKeys.some((k) => k.key === 'dash-user' && k.blocked),
        'the calls and the blocked key',
      );
      // From genapi_request telemetry, over the window.
      const echo = called.genApi.functions.find((f) => f.function === 'echo')!;
      expect(echo).toMatchObject({
        service: 'slowsvc',
        count: 4,
        outcomes: { ok: 3, rate_limited: 1 },
        errors: 1,
      });
      expect(echo.rate).toBeGreaterThan(0);
      expect(echo.p50Ms).toBeGreaterThan(0);
      expect(echo.p99Ms).toBeGreaterThanOrEqual(echo.p50Ms!);
      expect(called.genApi.requests).toBeGreaterThanOrEqual(before.genApi.requests + 4);
      const policy = called.rateLimits!.policies[0]!;
      expect(policy.topKeys[0]).toEqual({
        key: 'dash-user',
        remaining: 0,
        limit: 3,
        blocked: true,
      });
      expect(policy.keys).toBe(1);
      expect(policy.denied).toBe(1);
      expect(called.breakers.services).toEqual({ slowsvc: 'closed' });
    } finally {
      for (const client of clients) client.close();
    }
    await v.next((s) => s.sockets.total <= before.sockets.total, 'the sockets gone again');
  });

  it('lists every gateway node of the cluster, and drops one that leaves', async () => {
    const v = await viewer();
    const other = await startGateway({
      config: { nodeId: 'dashboard-peer', nats: { servers: nats.url, trustedNetwork: true } },
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    try {
      const both = await v.next(
        (s) => s.cluster?.nodes.some((n) => n.node === 'dashboard-peer') === true,
        'the second gateway',
      );
      expect(both.cluster!.nodes).toEqual([
        { node: running.gateway.nodeId, self: true, presenceEntries: null },
        { node: 'dashboard-peer', self: false, presenceEntries: 0 },
      ]);
    } finally {
      await other.gateway.close();
    }
    await v.next((s) => s.cluster?.nodes.length === 1, 'the second gateway gone');
  });

  it('one timer: every viewer gets the same snapshots, about every intervalMs', async () => {
    const a = await viewer();
    const b = await viewer();
    const pushed = await b.next((s) => s.sockets.dashboard >= 2, 'both viewers counted');
    // The very snapshot b got reached a as well: one was taken for both.
    await until(() => a.snapshots.some((s) => s.at === pushed.at), 'the same snapshot at a');
    const following = await b.next((s) => s.at > pushed.at, 'the next push');
    expect(following.at - pushed.at).toBeGreaterThanOrEqual(INTERVAL_MS / 2);
  });

  it('every snapshot received conforms to protocol/schemas/dashboard-snapshot.schema.json', () => {
    const all = viewers.flatMap((v) => v.snapshots);
    expect(all.length).toBeGreaterThan(10);
    for (const snapshot of all)
      expect(conforms('dashboard-snapshot.schema.json', snapshot)).toBe('valid');
    // The schema has teeth: a snapshot without its sockets is not one.
    const { sockets: _sockets, ...partial } = all[0]!;
    expect(conforms('dashboard-snapshot.schema.json', partial)).not.toBe('valid');
  });
});

describe('admin:dashboard at its default interval', () => {
  it('pushes a snapshot at least once a second: every gap about intervalMs (1000), none missed', async () => {
    const running = await startGateway({
      config: { admin: { token: TOKEN } },
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    const v = await connectViewer(running.address.port, { token: TOKEN });
    try {
      expect(v.join.status).toBe('ok');
      const received: number[] = [];
      v.channel.on('snapshot', () => received.push(performance.now()));
      const { intervalMs } = DASHBOARD_DEFAULTS;
      expect(v.snapshots[0]!.intervalMs).toBe(intervalMs);
      // Six pushes: five gaps, about five seconds.
      const PUSHES = 6;
      await until(() => received.length >= PUSHES, `${PUSHES} snapshot pushes`, 20_000);
      const pushes = v.snapshots.slice(-received.length);
      const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);
      // As the gateway stamped them (`at`) and as the viewer received them.
      for (const [label, list] of [
        ['taken', gaps(pushes.map((s) => s.at))],
        ['received', gaps(received)],
      ] as const) {
        const mean = list.reduce((sum, gap) => sum + gap, 0) / list.length;
        // At least once a second: the mean gap is the interval (timer lateness aside), and no
        // tick is skipped (a gap of two intervals would be one). A flood would be far below.
        expect(mean, `mean gap ${label}`).toBeLessThanOrEqual(intervalMs * 1.25);
        expect(mean, `mean gap ${label}`).toBeGreaterThanOrEqual(intervalMs * 0.75);
        for (const gap of list) {
          expect(gap, `a gap ${label}`).toBeLessThan(intervalMs * 2);
          expect(gap, `a gap ${label}`).toBeGreaterThan(intervalMs / 2);
        }
      }
    } finally {
      v.close();
      await running.gateway.close();
    }
  }, 30_000);
});

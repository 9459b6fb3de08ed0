/**
 * NATS health for operators (protocol/gen_api.md §8): `GET /admin/health` on a gateway built by
 * startGateway (the `gen-gateway` command's wiring) with `admin` and `nats` configured, against a
 * real nats-server that is stopped and restarted, and an SDK worker; plus one log line per NATS
 * status change.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { startWorker, type Worker } from '../support/genapi-app.js';
import { until } from '../support/wait.js';
import { ApiClient } from '../support/genapi-client.js';
import { slowService } from '../support/genapi-services.js';
import { NatsServer } from '../support/nats.js';
import type { HealthReport } from '../../src/admin/health.js';

const TOKEN = 'health-token-0123456789abcdef';

describe('GET /admin/health', () => {
  let nats: NatsServer;
  let running: RunningGateway;
  let worker: Worker;
  const lines: Record<string, unknown>[] = [];
  let base = '';

  beforeAll(async () => {
    nats = await NatsServer.start();
    worker = await startWorker(slowService('W', { calls: 0, inflight: 0 }), nats.url);
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n'))
          if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    running = await startGateway({
      config: {
        admin: { token: TOKEN },
        nats: {
          servers: nats.url,
          reconnectTimeWaitMs: 100,
          trustedNetwork: true,
          discovery: { intervalMs: 200, ttlMs: 1_000, pingWaitMs: 100 },
        },
        socket: { connect: ({ params }) => ({ assigns: { user_id: params.user_id ?? null } }) },
      },
      fromFile: true,
      port: 0,
      logger: pino({ level: 'info' }, sink),
    });
    base = `http://127.0.0.1:${running.address.port}`;
    await until(
      () =>
        running.genApi.registry.resolve('slowsvc', 'echo', null).ok &&
        running.genApi.nats!.discovery.instances('slowsvc').length === 1,
      'the worker',
    );
  }, 20_000);
  afterAll(async () => {
    await running?.gateway.close();
    await worker?.stop();
    await nats?.dispose();
  });

  async function health(
    token: string | null = TOKEN,
  ): Promise<{ status: number; body: HealthReport }> {
    const res = await fetch(`${base}/admin/health`, {
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as HealthReport };
  }

  it('reports NATS (status, server, rtt, pending requests, streams, last error, config pull) and the gateway gauges', async () => {
    const client = await ApiClient.connect(
      `ws://127.0.0.1:${running.address.port}/socket/websocket?vsn=2.0.0&user_id=u1`,
    );
    try {
      expect(
        (
          await client.sync({
            request_id: 'h1',
            service: 'slowsvc',
            request_type: 'echo',
            args: { message: 'x' },
          })
        ).push.success,
      ).toBe(true);
      const { status, body } = await health();
      expect(status).toBe(200);
      expect(body).toMatchObject({
        status: 'ok',
        node: running.gateway.nodeId,
        gateway: { sockets: 1, channels: 1 },
        genApi: {
          services: expect.arrayContaining(['slowsvc']) as unknown,
          failedConfigs: 0,
          executor: { inflight: 0, streams: 0, requests: 1 },
          breakers: { services: { slowsvc: 'closed' } },
        },
        nats: {
          status: 'connected',
          server: expect.stringContaining(`${nats.port}`) as unknown,
          reconnects: 0,
          lastError: null,
          instances: 1,
          pendingRequests: 0,
          streams: 0,
          sync: { pullIntervalMs: 30_000, failures: 0 },
          instancesRefused: 0,
        },
      });
      expect(body.uptimeMs).toBeGreaterThan(0);
      expect(body.genApi.functions).toBeGreaterThanOrEqual(2);
      expect(typeof body.nats!.rttMs).toBe('number');
      expect(body.nats!.rttMs!).toBeGreaterThanOrEqual(0);
      // A plausible round trip (generous: the machine may be loaded).
      expect(body.nats!.rttMs!).toBeLessThan(5_000);
      expect(body.nats!.since).toBeLessThanOrEqual(Date.now());
    } finally {
      client.close();
    }
  });

  it('needs the admin token; only GET', async () => {
    expect((await health(null)).status).toBe(401);
    expect((await health('wrong-token-0123456789abcdef')).status).toBe(401);
    const post = await fetch(`${base}/admin/health`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });

  it('follows a NATS outage: degraded with the status and no rtt while down, connected again after; one log line per status change', async () => {
    const from = lines.length;
    await nats.stop();
    await until(
      () => running.genApi.health().nats!.status !== 'connected',
      'the gateway to notice',
    );
    const down = await health();
    expect(down.status).toBe(200);
    expect(down.body.status).toBe('degraded');
    expect(['disconnected', 'reconnecting']).toContain(down.body.nats!.status);
    expect(down.body.nats!.rttMs).toBeNull();

    await nats.restart();
    // Both of the gateway's connections: gen_api's and the cluster's (status is ok only with both).
    await until(
      () =>
        running.genApi.health().nats!.status === 'connected' &&
        running.gateway.clusterHealth()?.connected === true,
      'the gateway to reconnect',
    );
    const up = await health();
    expect(up.body).toMatchObject({ status: 'ok', nats: { status: 'connected', reconnects: 1 } });
    expect(typeof up.body.nats!.rttMs).toBe('number');

    const changes = lines
      .slice(from)
      .filter((line) => typeof line.msg === 'string' && line.msg.startsWith('NATS status'));
    const path = changes.map((line) => `${String(line.from)}→${String(line.to)}`);
    expect(path[0]).toBe('connected→disconnected');
    expect(path.at(-1)).toMatch(/→connected$/);
    // Every change, and only changes: each line's `from` is the previous line's `to`.
    for (let i = 1; i < changes.length; i++) expect(changes[i]!.from).toBe(changes[i - 1]!.to);
    expect(
      changes.filter((line) => line.to !== 'connected').every((line) => line.level === 40),
    ).toBe(true);
    expect(changes.at(-1)).toMatchObject({
      level: 30,
      msg: 'NATS status: connected',
      reconnects: 1,
    });
  }, 20_000);

  it('without NATS: status ok, nats null', async () => {
    const embedded = await startGateway({
      config: { admin: { token: TOKEN } },
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    try {
      const res = await fetch(`http://127.0.0.1:${embedded.address.port}/admin/health`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: 'ok',
        nats: null,
        genApi: { executor: { inflight: 0 } },
      });
    } finally {
      await embedded.gateway.close();
    }
  });
});

/**
 * `/healthz` and `/readyz` (issue 14, health): no token, even with the admin API's token set
 * (`/admin/health` needs it); readiness follows the listener, the NATS link and the cluster
 * connection — checked against a real nats-server stopped and started again — and a gateway that
 * is stopping.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { NatsServer } from '../support/nats.js';
import { eventually } from '../support/wait.js';

let running: RunningGateway | null = null;
let nats: NatsServer | null = null;

afterEach(async () => {
  await running?.gateway.close();
  running = null;
  await nats?.dispose();
  nats = null;
});

async function get(port: number, path: string, method = 'GET') {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, body: method === 'HEAD' ? null : await res.json() };
}

/** Both probes answer 200, GET and HEAD, with no token. */
async function expectProbesOpen(port: number): Promise<void> {
  expect(await get(port, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
  expect(await get(port, '/readyz')).toEqual({ status: 200, body: { status: 'ready' } });
  expect((await get(port, '/readyz', 'HEAD')).status).toBe(200);
}

describe('/healthz and /readyz', () => {
  it('without NATS: alive and ready, no token needed; only GET and HEAD', async () => {
    running = await startGateway({
      config: {},
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    const { port } = running.address;
    await expectProbesOpen(port);
    expect(await get(port, '/readyz', 'POST')).toEqual({
      status: 405,
      body: { error: 'method not allowed' },
    });
    expect((await get(port, '/healthz/more')).status).toBe(404);
  });

  it('with an admin token configured: the probes still need none; /admin/health does', async () => {
    const token = 'probe-test-admin-token-0123456789';
    running = await startGateway({
      config: { admin: { token } },
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    const { port } = running.address;
    await expectProbesOpen(port);
    // The admin API is there, behind its token.
    expect((await fetch(`http://127.0.0.1:${port}/admin/health`)).status).toBe(401);
    const wrong = await fetch(`http://127.0.0.1:${port}/admin/health`, {
      headers: { authorization: 'Bearer not-the-admin-token-at-all' },
    });
    expect(wrong.status).toBe(401);
    const right = await fetch(`http://127.0.0.1:${port}/admin/health`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(right.status).toBe(200);
    expect(await right.json()).toHaveProperty('status');
  });

  it('on NATS: not ready while NATS is down (the process stays alive), ready again when it is back', async () => {
    nats = await NatsServer.start();
    running = await startGateway({
      config: { nats: { servers: nats.url, trustedNetwork: true, reconnectTimeWaitMs: 100 } },
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    const { port } = running.address;
    expect(await get(port, '/readyz')).toEqual({ status: 200, body: { status: 'ready' } });
    await nats.stop();
    await eventually(
      async () =>
        expect(await get(port, '/readyz')).toEqual({
          status: 503,
          body: { status: 'not_ready', reasons: ['nats', 'cluster'] },
        }),
      'not ready while NATS is down',
    );
    expect(await get(port, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    await nats.restart();
    await eventually(
      async () =>
        expect(await get(port, '/readyz')).toEqual({ status: 200, body: { status: 'ready' } }),
      'ready again once NATS is back',
    );
  });

  it('a stopping gateway is not ready', async () => {
    running = await startGateway({
      config: {},
      fromFile: true,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    const { notReady } = await import('../../src/admin/probes.js');
    expect(notReady(running.gateway, running.genApi)).toEqual([]);
    const closing = running.gateway.close();
    expect(notReady(running.gateway, running.genApi)).toContain('stopping');
    await closing;
    expect(notReady(running.gateway, running.genApi)).toEqual(expect.arrayContaining(['stopping']));
    running = null;
  });
});

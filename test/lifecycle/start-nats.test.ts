/**
 * `genApi.startNats` in-process against a real nats-server started later: it resolves at once with
 * NATS down (settings checked), reports `nats` in readiness, answers gen_api for unknown services
 * with can_retry (in-process services keep their own answers), connects once the server is up,
 * and a close while it still retries stops the retries (`connected` rejects with CancelledError).
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { healthReport } from '../../src/admin/health.js';
import { notReady } from '../../src/admin/probes.js';
import { ConfigError } from '../../src/config/errors.js';
import { CancelledError } from '../../src/errors.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { createGenApi, type GenApi } from '../../src/genapi/gen-api.js';
import { demoConnect } from '../../src/demo/chat.js';
import { demoService } from '../../src/demo/service.js';
import { freePort, NatsServer } from '../support/nats.js';
import { until, within } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

let gateway: Gateway | null = null;
let nats: NatsServer | null = null;
afterEach(async () => {
  await gateway?.close();
  gateway = null;
  await nats?.dispose();
  nats = null;
});

async function setUp(): Promise<{ gateway: Gateway; genApi: GenApi; port: number }> {
  gateway = createGateway({ logger: pino({ level: 'silent' }), port: 0 });
  const genApi = createGenApi(gateway).register(demoService);
  genApi.mount(gateway.socket('/socket', { connect: demoConnect, checkOrigin: false }));
  const { port } = await gateway.listen(0);
  return { gateway, genApi, port };
}

async function call(client: RawClient, id: string, service: string, requestType: string) {
  client.send([
    '1',
    id,
    'gen_api',
    'phoenix_gen_api',
    { request_id: id, service, request_type: requestType, args: { message: 'hi' } },
  ]);
  for (;;) {
    const [frame] = await client.take(1);
    if (Array.isArray(frame) && frame[3] === 'phoenix_gen_api') return frame[4];
  }
}

describe('genApi.startNats', () => {
  it('resolves at once with NATS down, answers can_retry meanwhile, and connects when it comes up', async () => {
    const { gateway, genApi, port } = await setUp();
    const natsPort = await freePort();
    const start = await genApi.startNats(
      { servers: `nats://127.0.0.1:${natsPort}`, trustedNetwork: true },
      { retryMs: 100 },
    );
    expect(await start.firstAttempt).toBe('retrying');
    expect(genApi.natsPending).toBe(true);
    expect(notReady(gateway, genApi)).toEqual(['nats']);
    expect((await healthReport(gateway, genApi)).status).toBe('degraded');

    const client = await RawClient.connect(
      `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&user_id=ada`,
    );
    await client.join('gen_api', '1');
    expect(await call(client, 'a', 'orders', 'create')).toMatchObject({
      success: false,
      error: 'Service temporarily unavailable',
      can_retry: true,
    });
    // In-process services answer as always, unknown functions of theirs too.
    expect(await call(client, 'b', 'demo', 'echo')).toMatchObject({ success: true });
    expect(await call(client, 'c', 'demo', 'nope')).toMatchObject({
      error: 'unsupported function: nope version latest',
      can_retry: false,
    });

    nats = await NatsServer.start({ port: natsPort });
    await within(start.connected, 'the background connect');
    expect(genApi.natsPending).toBe(false);
    await until(() => notReady(gateway, genApi).length === 0, 'ready');
    expect((await healthReport(gateway, genApi)).status).toBe('ok');
    // Connected and no worker for it: the usual answer for an unknown function.
    expect(await call(client, 'd', 'orders', 'create')).toMatchObject({
      error: 'unsupported function: create version latest',
    });
    client.close();
  });

  it('stops retrying when the gateway closes first', async () => {
    const { gateway, genApi } = await setUp();
    const start = await genApi.startNats(
      { servers: `nats://127.0.0.1:${await freePort()}`, trustedNetwork: true },
      { retryMs: 50 },
    );
    expect(await start.firstAttempt).toBe('retrying');
    await gateway.close();
    await expect(within(start.connected, 'the retries to stop')).rejects.toThrow(CancelledError);
    expect(genApi.natsPending).toBe(false);
  });

  it('checks the settings before connecting: no push token and no trusted network is a ConfigError', async () => {
    const { genApi } = await setUp();
    await expect(
      genApi.startNats({ servers: `nats://127.0.0.1:${await freePort()}` }),
    ).rejects.toThrow(ConfigError);
    expect(genApi.natsPending).toBe(false);
    expect(genApi.executor.awaitingNats).toBeNull();
  });
});

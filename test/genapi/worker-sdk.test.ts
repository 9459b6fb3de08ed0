/**
 * The worker SDK on a real nats-server: it is a NATS micro service (ADR-32) that `nats micro ls`
 * style tools see — `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` under every subject form, with its
 * endpoints — and its per-instance concurrency limit (`maxConcurrent`) answers overload with
 * `503` (protocol/nats.md §5), so the gateway goes to another instance at once, or tells the
 * client `Service temporarily unavailable` (can_retry) when every instance is full.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
} from '@nats-io/transport-node';
import { defineService, fn, ServiceError } from '../../src/worker/define.js';
import { serve, SERVE_DEFAULTS } from '../../src/worker/nats.js';
import { setTimeout as pause } from 'node:timers/promises';
import { startGenApiApp, startWorker, type GenApiApp, type Worker } from '../support/genapi-app.js';
import { ApiClient, response } from '../support/genapi-client.js';
import { until } from '../support/wait.js';
import { NatsServer } from '../support/nats.js';

const micro = defineService({
  name: 'micro',
  version: '1.2.3',
  description: 'a micro service test',
  functions: {
    echo: fn({ args: { message: 'string' }, handler: ({ message }) => ({ message }) }),
    'echo@2.0.0': fn({
      args: { message: 'string' },
      handler: ({ message }) => ({ message, v: 2 }),
    }),
    ticks: fn({
      response: 'stream',
      handler: async (_args, ctx) => void (await ctx.stream.write(1)),
    }),
    guarded: fn({ authorize: () => true, handler: () => 'ok' }),
    // Takes 60 ms of (handler) time, so its processing time shows in the stats.
    nap: fn({ handler: async () => void (await pause(60)) }),
    broken: fn({
      handler: () => {
        throw new ServiceError('broken on purpose');
      },
    }),
  },
});

interface MicroIdentity {
  type: string;
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
}
interface Endpoint {
  name: string;
  subject: string;
  queue_group: string;
  metadata?: Record<string, string>;
  num_requests?: number;
  num_errors?: number;
  last_error?: string;
}

async function collect(
  nc: NatsConnection,
  subject: string,
): Promise<(MicroIdentity & { endpoints?: Endpoint[] })[]> {
  const out = [];
  for await (const msg of await nc.requestMany(subject, undefined, {
    strategy: 'stall',
    stall: 100,
    maxWait: 1_000,
  }))
    out.push(msg.json<MicroIdentity & { endpoints?: Endpoint[] }>());
  return out;
}

/** A request to a function subject as a gateway sends it (protocol/nats.md §5 headers). */
function call(nc: NatsConnection, subject: string, body: unknown, requestId: string): Promise<Msg> {
  const h = natsHeaders();
  h.set('Genapi-Request-Id', requestId);
  h.set('Genapi-Response-Type', 'sync');
  h.set('Genapi-Timeout', '2000');
  return nc.request(subject, JSON.stringify(body), { timeout: 2_000, headers: h });
}

describe('an SDK worker is a NATS micro service', () => {
  let nats: NatsServer;
  let worker: Worker;
  let nc: NatsConnection;
  let id: string;

  beforeAll(async () => {
    nats = await NatsServer.start();
    worker = await startWorker(micro, nats.url);
    id = worker.running.id;
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await worker?.stop();
    await nats?.dispose();
  });

  const identity = () => ({
    name: 'micro',
    id,
    version: '1.2.3',
    metadata: {
      genapi_protocol: '1',
      genapi_prefix: 'genapi',
      genapi_config_version: micro.configVersion,
    },
  });

  it.each(['$SRV.PING', '$SRV.PING.micro', '$SRV.PING.micro.{id}'])(
    '%s answers a ping_response with the genapi metadata',
    async (pattern) => {
      const answers = await collect(nc, pattern.replace('{id}', id));
      expect(answers).toEqual([{ type: 'io.nats.micro.v1.ping_response', ...identity() }]);
    },
  );

  it('$SRV.INFO (what `nats micro ls`/`info` read) lists every endpoint: functions in the genapi queue group, the permission check, config, and the direct one', async () => {
    for (const subject of ['$SRV.INFO', '$SRV.INFO.micro', `$SRV.INFO.micro.${id}`]) {
      const [info, ...more] = await collect(nc, subject);
      expect(more).toEqual([]);
      expect(info).toMatchObject({
        type: 'io.nats.micro.v1.info_response',
        ...identity(),
        description: 'a micro service test',
      });
      const endpoints = new Map(info!.endpoints!.map((endpoint) => [endpoint.name, endpoint]));
      expect([...endpoints.keys()].sort()).toEqual(
        [
          'broken',
          'config',
          'direct',
          'echo',
          'echo-v2_0_0',
          'guarded',
          'guarded-permission',
          'nap',
          'ticks',
        ].sort(),
      );
      expect(endpoints.get('echo')).toEqual({
        name: 'echo',
        subject: 'genapi.fn.micro.echo',
        queue_group: 'genapi',
        metadata: { request_type: 'echo', response_type: 'sync' },
      });
      expect(endpoints.get('echo-v2_0_0')).toEqual({
        name: 'echo-v2_0_0',
        subject: 'genapi.fn.micro.echo.2_0_0',
        queue_group: 'genapi',
        metadata: { request_type: 'echo', response_type: 'sync', version: '2.0.0' },
      });
      expect(endpoints.get('ticks')).toMatchObject({
        subject: 'genapi.fn.micro.ticks',
        queue_group: 'genapi',
        metadata: { response_type: 'stream' },
      });
      expect(endpoints.get('guarded-permission')).toEqual({
        name: 'guarded-permission',
        subject: 'genapi.perm.micro.guarded',
        queue_group: 'genapi',
        metadata: { request_type: 'guarded', response_type: 'sync', kind: 'permission' },
      });
      expect(endpoints.get('config')).toMatchObject({
        subject: 'genapi.config.get.micro',
        queue_group: 'genapi',
      });
      // Not load-balanced: gateways address this very instance through it.
      expect(endpoints.get('direct')).toMatchObject({
        subject: `genapi.inst.micro.${id}.>`,
        queue_group: '',
      });
    }
  });

  it('$SRV.STATS counts requests, errors and processing time per endpoint (replies sent after the handler returned included)', async () => {
    const stats = async () => {
      const [answer] = await collect(nc, `$SRV.STATS.micro.${id}`);
      expect(answer).toMatchObject({ type: 'io.nats.micro.v1.stats_response', ...identity() });
      return new Map(answer!.endpoints!.map((endpoint) => [endpoint.name, endpoint]));
    };
    const before = await stats();
    for (let i = 0; i < 3; i++)
      expect(
        (await call(nc, 'genapi.fn.micro.echo', { message: `m${i}` }, `s${i}`)).json(),
      ).toEqual({ message: `m${i}` });
    expect(
      (await call(nc, `genapi.inst.micro.${id}.fn.micro.echo`, { message: 'd' }, 'sd')).json(),
    ).toEqual({ message: 'd' });
    const failed = await call(nc, 'genapi.fn.micro.broken', {}, 'sb');
    expect(failed.headers?.get('Nats-Service-Error')).toBe('broken on purpose');
    const after = await stats();
    expect(after.get('echo')!.num_requests! - before.get('echo')!.num_requests!).toBe(3);
    expect(after.get('direct')!.num_requests! - before.get('direct')!.num_requests!).toBe(1);
    expect(after.get('broken')!.num_requests! - before.get('broken')!.num_requests!).toBe(1);
    expect(after.get('broken')!.num_errors! - before.get('broken')!.num_errors!).toBe(1);
    expect(after.get('broken')!.last_error).toContain('broken on purpose');
    expect(after.get('echo')!.num_errors).toBe(0);
    // Time: nanoseconds, measured until the reply.
    await call(nc, 'genapi.fn.micro.nap', {}, 'sn');
    const nap = (await stats()).get('nap') as Endpoint & {
      processing_time: number;
      average_processing_time: number;
    };
    expect(nap.num_requests).toBe(1);
    expect(nap.processing_time).toBeGreaterThanOrEqual(50e6);
    expect(nap.average_processing_time).toBe(nap.processing_time);
  });

  it('a gateway discovers it by the same ping', async () => {
    const app = await startGenApiApp({ nats: nats.url });
    try {
      await until(() => app.genApi.nats!.discovery.instances('micro').length === 1, 'the instance');
      expect(app.genApi.nats!.discovery.instances('micro')[0]).toMatchObject({
        id,
        service: 'micro',
        version: '1.2.3',
      });
    } finally {
      await app.close();
    }
  });
});

/** Records how many handlers of each worker run at once. */
interface Load {
  running: number;
  max: number;
  served: number;
}

function heldService(label: string, load: Load, release: { promise: Promise<void> }) {
  return defineService({
    name: 'capped',
    functions: {
      hold: fn({
        timeout: 5_000,
        async handler(_args, ctx) {
          load.running++;
          load.max = Math.max(load.max, load.running);
          try {
            await Promise.race([
              release.promise,
              new Promise((resolve) =>
                ctx.signal.addEventListener('abort', resolve, { once: true }),
              ),
            ]);
          } finally {
            load.running--;
          }
          load.served++;
          return { label };
        },
      }),
      quick: fn({
        handler: () => {
          load.served++;
          return { label };
        },
      }),
      endless: fn({
        response: 'stream',
        timeout: 5_000,
        async handler(_args, ctx) {
          for (let i = 1; !ctx.signal.aborted; i++) {
            await ctx.stream.write(i);
            await pause(20); // the handler's own pace between chunks
          }
        },
      }),
    },
  });
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('maxConcurrent: a full worker answers 503', () => {
  let nats: NatsServer;
  let app: GenApiApp | null = null;
  const workers: Worker[] = [];
  const clients: ApiClient[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await app?.close();
    app = null;
    for (const w of workers.splice(0)) await w.stop();
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  async function client(): Promise<ApiClient> {
    const c = await ApiClient.connect(app!.wsUrl('user_id=u1'));
    clients.push(c);
    return c;
  }
  const req = (id: string, rt = 'hold') => ({
    request_id: id,
    service: 'capped',
    request_type: rt,
    args: {},
  });

  it('has a documented default and refuses bad values', async () => {
    expect(SERVE_DEFAULTS.maxConcurrent).toBe(1_000);
    const nc = await connect({ servers: nats.url });
    try {
      for (const bad of [0, -1, 1.5, Number.NaN, '3' as unknown as number]) {
        await expect(
          serve(micro, { nats: nc, maxConcurrent: bad, pushOnStart: false }),
        ).rejects.toThrow(/maxConcurrent must be a positive integer or Infinity/);
      }
    } finally {
      await nc.close();
    }
  });

  it('over raw NATS: the call beyond the limit gets Nats-Service-Error-Code 503; once a slot frees, calls are taken again', async () => {
    const load: Load = { running: 0, max: 0, served: 0 };
    const release = gate();
    const worker = await startWorker(heldService('A', load, release), nats.url, {
      maxConcurrent: 2,
    });
    workers.push(worker);
    const nc = await connect({ servers: nats.url });
    try {
      const held = [
        call(nc, 'genapi.fn.capped.hold', {}, 'h1'),
        call(nc, 'genapi.fn.capped.hold', {}, 'h2'),
      ];
      await until(() => load.running === 2, 'two calls running');
      expect(worker.running.inflight).toBe(2);
      const refused = await call(nc, 'genapi.fn.capped.quick', {}, 'h3');
      expect(refused.headers?.get('Nats-Service-Error-Code')).toBe('503');
      expect(refused.headers?.get('Nats-Service-Error')).toBe(
        'overloaded: 2 requests in flight (maxConcurrent 2)',
      );
      release.open();
      for (const msg of await Promise.all(held)) expect(msg.json()).toEqual({ label: 'A' });
      expect((await call(nc, 'genapi.fn.capped.quick', {}, 'h4')).json()).toEqual({ label: 'A' });
      expect(load.max).toBe(2);
    } finally {
      await nc.close();
    }
  });

  it('through a gateway: calls refused by a full instance go to the other one at once; the full one never runs more than its limit', async () => {
    const loadA: Load = { running: 0, max: 0, served: 0 };
    const loadB: Load = { running: 0, max: 0, served: 0 };
    const release = gate();
    workers.push(
      await startWorker(heldService('A', loadA, release), nats.url, { maxConcurrent: 1 }),
    );
    workers.push(
      await startWorker(heldService('B', loadB, release), nats.url, { maxConcurrent: 100 }),
    );
    app = await startGenApiApp({ nats: nats.url });
    await until(
      () =>
        app!.genApi.nats!.discovery.instances('capped').length === 2 &&
        app!.genApi.registry.resolve('capped', 'hold', null).ok,
      'both instances',
    );
    const c = await client();
    const ids = Array.from({ length: 8 }, (_, i) => `g${i}`);
    for (const id of ids) c.call(req(id));
    await until(() => loadA.running + loadB.running === ids.length, 'all eight running', 3_000);
    expect(loadA.running).toBe(1);
    expect(loadB.running).toBe(7);
    release.open();
    await c.until(() => ids.every((id) => c.pushes(id).length > 0), 'every answer');
    for (const id of ids)
      expect(c.pushes(id)[0]!.success, JSON.stringify(c.pushes(id)[0])).toBe(true);
    expect(loadA.max).toBe(1);
    expect(app.genApi.health().breakers.services.capped ?? 'closed').toBe('closed');
  });

  it('through a gateway: every instance full → Service temporarily unavailable (can_retry) at once; no breaker opens; served again once a slot frees', async () => {
    const load: Load = { running: 0, max: 0, served: 0 };
    const release = gate();
    workers.push(
      await startWorker(heldService('A', load, release), nats.url, { maxConcurrent: 1 }),
    );
    app = await startGenApiApp({ nats: nats.url });
    await until(
      () =>
        app!.genApi.nats!.discovery.instances('capped').length === 1 &&
        app!.genApi.registry.resolve('capped', 'hold', null).ok,
      'the instance',
    );
    const c = await client();
    c.call(req('busy'));
    await until(() => load.running === 1, 'the busy call running');
    for (let i = 0; i < 15; i++) {
      const t = performance.now();
      const { push, reply } = await c.sync(req(`full-${i}`, 'quick'));
      expect(push).toEqual(
        response(`full-${i}`, {
          success: false,
          error: 'Service temporarily unavailable',
          can_retry: true,
        }),
      );
      expect(reply).toEqual({ status: 'ok', response: 'quick' });
      // At once: well below quick's 5 s timeout (the request is refused, not queued).
      expect(performance.now() - t).toBeLessThan(2_500);
    }
    expect(app.genApi.health().breakers.services.capped ?? 'closed').toBe('closed');
    expect(
      Object.values(app.genApi.health().breakers.instances).every((state) => state === 'closed'),
    ).toBe(true);
    release.open();
    await c.until(() => c.pushes('busy').length > 0, 'the busy call to end');
    const { push } = await c.sync(req('after', 'quick'));
    expect(push).toEqual(response('after', { result: { label: 'A' } }));
  });

  it('a running stream counts: the limit refuses a call while it runs, and frees when the client cancels it', async () => {
    const load: Load = { running: 0, max: 0, served: 0 };
    const worker = await startWorker(heldService('A', load, gate()), nats.url, {
      maxConcurrent: 1,
    });
    workers.push(worker);
    app = await startGenApiApp({ nats: nats.url });
    await until(
      () =>
        app!.genApi.nats!.discovery.instances('capped').length === 1 &&
        app!.genApi.registry.resolve('capped', 'endless', null).ok,
      'the instance',
    );
    const c = await client();
    c.call(req('st', 'endless'));
    await c.until(() => c.pushes('st').length >= 4, 'a few chunks');
    expect(worker.running.inflight).toBe(1);
    expect((await c.sync(req('during', 'quick'))).push).toEqual(
      response('during', {
        success: false,
        error: 'Service temporarily unavailable',
        can_retry: true,
      }),
    );
    expect(await c.reply(c.cancel('st'))).toEqual({ status: 'ok', response: { cancelled: true } });
    await until(() => worker.running.inflight === 0, 'the stream to end on the worker', 1_000);
    expect((await c.sync(req('after', 'quick'))).push).toEqual(
      response('after', { result: { label: 'A' } }),
    );
  });
});

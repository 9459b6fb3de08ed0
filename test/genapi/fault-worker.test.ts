/**
 * Worker faults through the real stack (real nats-server, real gateway, SDK workers in-process
 * or as separate processes that get SIGKILLed): a worker killed with requests in flight, no
 * responders, and two instances sharing load. protocol/gen_api.md §2 Errors, §4 Execution, §7.12;
 * protocol/nats.md §2 (queue group), §3 (discovery), §5 (calls).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, startWorker, type GenApiApp, type Worker } from '../support/genapi-app.js';
import { ApiClient, response, type ApiResponse } from '../support/genapi-client.js';
import { slowService } from '../support/genapi-services.js';
import { startWorkerProcess, type WorkerProcess } from '../support/genapi-worker-process.js';
import { until } from '../support/wait.js';
import { subscriptionsGone } from '../support/genapi-exec.js';

/** The slow function's timeout in the worker processes (their default). */
const TIMEOUT_MS = 4_000;
/** echo's timeout (the SDK default): a request that ends well below it did not wait for one. */
const ECHO_TIMEOUT_MS = 5_000;

const slow = (id: string, ms: number) => ({
  request_id: id,
  service: 'slowsvc',
  request_type: 'slow',
  args: { ms },
});
const echo = (id: string, message = id) => ({
  request_id: id,
  service: 'slowsvc',
  request_type: 'echo',
  args: { message },
});
const UNAVAILABLE = response('x', {
  success: false,
  error: 'Service temporarily unavailable',
  can_retry: true,
});

describe('worker faults (nats)', () => {
  // One nats-server for the file: no test kills, freezes or partitions it.
  let nats: NatsServer;
  const workers: (Worker | WorkerProcess)[] = [];
  let app: GenApiApp | null = null;
  const clients: ApiClient[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await app?.close();
    app = null;
    await Promise.all(workers.splice(0).map((w) => ('kill' in w ? w.kill() : w.stop())));
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  async function gateway(): Promise<GenApiApp> {
    app = await startGenApiApp({ nats: nats.url });
    return app;
  }
  async function client(): Promise<ApiClient> {
    const c = await ApiClient.connect(app!.wsUrl('user_id=u1&device_id=d1'));
    clients.push(c);
    return c;
  }
  const instances = () => app!.genApi.nats!.discovery.instances('slowsvc').length;

  /** Two worker processes A and B, a gateway that knows both, a client, and 8 slow requests spread over A and B. */
  async function inflightOnBoth(timeoutMs = TIMEOUT_MS): Promise<{
    a: WorkerProcess;
    b: WorkerProcess;
    c: ApiClient;
    ids: string[];
    refs: Map<string, string>;
  }> {
    const env = { WORKER_TIMEOUT: String(timeoutMs) };
    const [a, b] = await Promise.all([
      startWorkerProcess(nats.url, 'slowsvc', 'A', env),
      startWorkerProcess(nats.url, 'slowsvc', 'B', env),
      gateway(),
    ]);
    workers.push(a, b);
    await until(() => instances() === 2, 'both instances discovered');
    const c = await client();
    const ids: string[] = [];
    const refs = new Map<string, string>();
    // Random selection spreads them; keep asking until both workers hold some (bounded).
    for (
      let round = 0;
      round < 5 && (a.calls('slow').length === 0 || b.calls('slow').length === 0);
      round++
    ) {
      for (let i = 0; i < 8; i++) {
        const id = `s${round}-${i}`;
        ids.push(id);
        refs.set(id, c.call(slow(id, 1_500)));
      }
      await until(
        () => a.calls('slow').length + b.calls('slow').length === ids.length,
        'every slow request to reach a worker',
      );
    }
    expect(a.calls('slow').length).toBeGreaterThan(0);
    expect(b.calls('slow').length).toBeGreaterThan(0);
    return { a, b, c, ids, refs };
  }

  it('a worker SIGKILLed with slow requests in flight: every request ends in one reply and one push; the killed ones get an error push, the others and later requests succeed without waiting', async () => {
    const { a, b, c, ids, refs } = await inflightOnBoth();
    const onA = new Set(a.calls('slow'));
    await a.kill();
    await subscriptionsGone(nats.url, a.id);
    // New requests right after the kill (discovery still lists A): no responders on A's subject
    // moves them to B at once.
    const after = Array.from({ length: 10 }, (_, i) => `after-${i}`);
    const sentAt = new Map<string, number>();
    const afterRefs = new Map<string, string>();
    for (const id of after) {
      sentAt.set(id, performance.now());
      afterRefs.set(id, c.call(echo(id)));
    }
    // Never silence: every request ends, at the latest when its attempt times out (4 s).
    await c.until(
      () => [...ids, ...after].every((id) => c.pushes(id).length > 0),
      'a push for every request',
      TIMEOUT_MS + 4_000,
    );
    // A marker: a second push for any of them would have been sent before the marker's.
    expect((await c.sync(echo('marker'))).push.success).toBe(true);
    for (const id of after) {
      expect(c.pushes(id), id).toEqual([response(id, { result: { message: id, by: 'B' } })]);
      expect(c.replies(afterRefs.get(id)!), id).toEqual([{ status: 'ok', response: 'echo' }]);
      // Without waiting: well below echo's timeout.
      expect(c.pushTimes(id)[0]! - sentAt.get(id)!, `${id} latency`).toBeLessThan(
        ECHO_TIMEOUT_MS / 2,
      );
    }
    for (const id of ids) {
      const pushes = c.pushes(id);
      expect(pushes, id).toHaveLength(1);
      expect(c.replies(refs.get(id)!), id).toEqual([{ status: 'ok', response: 'slow' }]);
      if (onA.has(id)) {
        expect(pushes[0]!.success, id).toBe(false);
        expect(['Internal Server Error', 'Service temporarily unavailable'], id).toContain(
          pushes[0]!.error,
        );
      } else {
        expect(pushes[0], id).toEqual(response(id, { result: { slept: 1_500, by: 'B' } }));
      }
    }
    expect(b.alive).toBe(true);
  }, 30_000);

  it('a request in flight on a killed instance does not wait its full timeout when another instance is available', async () => {
    // A long timeout (10 s), so that "did not wait for it" has a wide margin.
    const timeoutMs = 10_000;
    const { a, c } = await inflightOnBoth(timeoutMs);
    const onA = a.calls('slow');
    const t0 = performance.now();
    await a.kill();
    await c.until(
      () => onA.every((id) => c.pushes(id).length > 0),
      'a push for every request that was on A',
      timeoutMs + 4_000,
    );
    for (const id of onA) {
      const waited = c.pushTimes(id)[0]! - t0;
      // Discovery loses A within its TTL (1 s here): the request must end (error push, or a
      // success from B) well before its 10 s timeout.
      expect(
        waited,
        `${id} ended ${Math.round(waited)} ms after the kill: ${JSON.stringify(c.pushes(id)[0])}`,
      ).toBeLessThan(timeoutMs / 2);
    }
  }, 30_000);

  it('a worker whose NATS connection closes with a request in flight survives it (SDK); the client gets an error push', async () => {
    // slow's timeout is 1 s in this worker.
    const [a] = await Promise.all([
      startWorkerProcess(nats.url, 'slowsvc', 'A', { WORKER_TIMEOUT: '1000' }),
      gateway(),
    ]);
    workers.push(a);
    await until(() => instances() === 1, 'the instance discovered');
    const c = await client();
    const ref = c.call(slow('cut', 300));
    await until(() => a.calls('slow').length === 1, 'the request to reach the worker');
    await a.closeConnection();
    // No other instance: the attempt ends at its timeout at the latest (Internal Server Error),
    // or earlier as Service temporarily unavailable.
    await c.until(() => c.pushes('cut').length > 0, 'an error push');
    expect(c.pushes('cut')[0]).toMatchObject({ success: false });
    expect(['Internal Server Error', 'Service temporarily unavailable']).toContain(
      c.pushes('cut')[0]!.error,
    );
    expect(await c.reply(ref)).toEqual({ status: 'ok', response: 'slow' });
    // The handler finishes 300 ms later and replies into a closed connection: that must not kill
    // the process. It settles, then (a later turn of its event loop) still answers a signal.
    await a.settled('cut');
    await a.answers().catch((err: unknown) => {
      throw new Error(`worker process gone; stderr: ${a.proc.stderr().slice(0, 800)}`, {
        cause: err,
      });
    });
    expect(a.alive).toBe(true);
  }, 30_000);

  describe('no responders: a function whose instances are all gone fails at once', () => {
    async function measured(
      c: ApiClient,
      prefix: string,
      count: number,
    ): Promise<{ push: ApiResponse; ms: number }[]> {
      const out: { push: ApiResponse; ms: number }[] = [];
      for (let i = 0; i < count; i++) {
        const id = `${prefix}-${i}`;
        const t = performance.now();
        const { push, reply } = await c.sync(echo(id));
        expect(reply).toEqual({ status: 'ok', response: 'echo' });
        out.push({ push, ms: c.pushTimes(id)[0]! - t });
      }
      return out;
    }

    it.each(['stopped', 'killed'] as const)(
      'instance %s: Service temporarily unavailable (can_retry) at once, before and after discovery forgets it',
      async (how) => {
        let stopWorker: () => Promise<void>;
        if (how === 'stopped') {
          const w = await startWorker(slowService('A', { calls: 0, inflight: 0 }), nats.url);
          workers.push(w);
          stopWorker = () => w.stop();
        } else {
          const w = await startWorkerProcess(nats.url, 'slowsvc', 'A');
          workers.push(w);
          // Killed and its subscriptions dropped by nats-server: until then the server may route
          // a request to the dead connection, where it is lost (no "no responders" to fail fast).
          stopWorker = async () => {
            await w.kill();
            await subscriptionsGone(nats.url, w.id);
          };
        }
        await gateway();
        await until(() => instances() === 1, 'the instance discovered');
        const c = await client();
        expect((await c.sync(echo('warm'))).push.success).toBe(true);
        await stopWorker();
        // Right away: discovery still lists the instance; its own subject has no responders.
        const first = await measured(c, `${how}-now`, 5);
        // Later: discovery has dropped it; the queue-group subject has no responders either.
        await until(() => instances() === 0, 'discovery to forget the instance');
        const later = await measured(c, `${how}-later`, 5);
        for (const { push, ms } of [...first, ...later]) {
          expect(push).toEqual({ ...UNAVAILABLE, request_id: push.request_id });
          // At once: it did not wait for echo's timeout (5 s).
          expect(ms, `${String(push.request_id)} took ${ms.toFixed(1)} ms`).toBeLessThan(
            ECHO_TIMEOUT_MS / 2,
          );
        }
        // The config stays: it is the instance that is missing, not the function.
        expect(app!.genApi.registry.resolve('slowsvc', 'echo', null).ok).toBe(true);
      },
      30_000,
    );
  });

  it('two instances share the load: 100 requests through the gateway are served by both', async () => {
    const ca = { calls: 0, inflight: 0 };
    const cb = { calls: 0, inflight: 0 };
    const started = await Promise.all([
      startWorker(slowService('A', ca), nats.url),
      startWorker(slowService('B', cb), nats.url),
      gateway(),
    ]);
    workers.push(started[0], started[1]);
    await until(() => instances() === 2, 'both instances discovered');
    const c = await client();
    const ids = Array.from({ length: 100 }, (_, i) => `load-${i}`);
    const results = await Promise.all(ids.map((id) => c.sync(echo(id))));
    const by = { A: 0, B: 0 } as Record<string, number>;
    for (const { push } of results) {
      expect(push.success).toBe(true);
      by[(push.result as { by: string }).by]!++;
    }
    expect(ca.calls + cb.calls).toBe(100);
    expect(by).toEqual({ A: ca.calls, B: cb.calls });
    expect(ca.calls, JSON.stringify(by)).toBeGreaterThanOrEqual(10);
    expect(cb.calls, JSON.stringify(by)).toBeGreaterThanOrEqual(10);
  });

  it('two instances share the queue group: 100 plain NATS requests to <p>.fn.<service>.<rt> are served by both', async () => {
    const ca = { calls: 0, inflight: 0 };
    const cb = { calls: 0, inflight: 0 };
    workers.push(
      ...(await Promise.all([
        startWorker(slowService('A', ca), nats.url),
        startWorker(slowService('B', cb), nats.url),
      ])),
    );
    const nc = await connect({ servers: nats.url });
    try {
      const replies = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const h = natsHeaders();
          h.set('Genapi-Request-Id', `q${i}`);
          h.set('Genapi-Service', 'slowsvc');
          h.set('Genapi-Request-Type', 'echo');
          h.set('Genapi-Response-Type', 'sync');
          h.set('Genapi-Timeout', '10000');
          h.set('Genapi-User-Id', 'u1');
          const msg = await nc.request(
            'genapi.fn.slowsvc.echo',
            JSON.stringify({ message: `q${i}` }),
            { timeout: 10_000, headers: h },
          );
          return msg.json<{ message: string; by: string }>();
        }),
      );
      expect(replies.map((r) => r.message)).toEqual(Array.from({ length: 100 }, (_, i) => `q${i}`));
    } finally {
      await nc.close();
    }
    expect(ca.calls + cb.calls).toBe(100);
    expect(ca.calls).toBeGreaterThanOrEqual(10);
    expect(cb.calls).toBeGreaterThanOrEqual(10);
  });
});

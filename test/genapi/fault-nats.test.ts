/**
 * The NATS server dies and comes back under load (protocol/gen_api.md §2 Errors: "NATS down →
 * Service temporarily unavailable, can_retry"; §5 breakers; §7.12; src/bus/nats/link.ts: requests
 * fail fast while disconnected, reconnect for ever): several clients send requests continuously
 * while the nats-server is SIGKILLed and restarted on the same port. The gateway must not crash,
 * every request must end in exactly one reply and one push, requests must fail fast while NATS is
 * down, and succeed again as soon as the gateway and the worker are back — with the default
 * breaker settings: the worker reconnects later than the gateway, so for a while its subject has
 * no responders, and those fast failures must not open the service breaker (gen_api.md §5), which
 * would keep the service unavailable for halfOpenAfterMs (10 s) after recovery. Health reports it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, startWorker, type GenApiApp, type Worker } from '../support/genapi-app.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { ApiClient, type ApiResponse } from '../support/genapi-client.js';
import { realTime, until } from '../support/wait.js';
import { slowService } from '../support/genapi-services.js';
import type { NatsStatus } from '../../src/bus/nats/link.js';
import { RESILIENCE_DEFAULTS } from '../../src/genapi/resilience.js';

interface Outcome {
  id: string;
  client: number;
  sentAt: number;
  /** NATS status the gateway reported when the request was sent. */
  statusAtSend: NatsStatus;
  doneAt: number | null;
  push: ApiResponse | null;
}

/** Resolves once the worker's NATS connection is back (a flush round-trips). */
async function reconnected(worker: Worker, timeoutMs = 10_000): Promise<void> {
  await until(
    async () => {
      try {
        await worker.nc.flush();
        return true;
      } catch {
        return false;
      }
    },
    "the worker's NATS connection to be back",
    { timeoutMs, intervalMs: 50 },
  );
}

/** echo's timeout (the SDK default): failing fast means ending well below it. */
const ECHO_TIMEOUT_MS = 5_000;
/** Requests each phase of the load test must have seen end (the assertions need > 20). */
const PER_PHASE = 24;

describe('NATS restarted mid-load', () => {
  let nats: NatsServer | null = null;
  let worker: Worker | null = null;
  let app: GenApiApp | null = null;
  let proxy: TcpProxy | null = null;
  const clients: ApiClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await app?.close();
    await worker?.stop();
    await proxy?.close();
    await nats?.dispose();
    app = null;
    worker = null;
    proxy = null;
    nats = null;
  });

  it('no crash; one reply and one push per request; fast `Service temporarily unavailable` while down; success as soon as the worker is back (default breakers); health follows', async () => {
    nats = await NatsServer.start();
    // The worker reaches NATS through a proxy the test keeps shut after the restart, so the
    // gateway is back and the worker is not for as long as the test needs, under any load.
    proxy = await TcpProxy.start(nats.port);
    worker = await startWorker(slowService('W', { calls: 0, inflight: 0 }), proxy.url);
    // Default resilience settings: serviceFailures 10, halfOpenAfterMs 10 s.
    app = await startGenApiApp({ nats: nats.url, natsOptions: { reconnectTimeWaitMs: 100 } });
    expect(app.genApi.resilience.options).toEqual(RESILIENCE_DEFAULTS);
    const genApi = app.genApi;
    const status = () => genApi.health().nats!.status;
    const instances = () => genApi.nats!.discovery.instances('slowsvc').length;
    await until(() => instances() === 1, 'the worker discovered');
    for (let i = 0; i < 4; i++) clients.push(await ApiClient.connect(app.wsUrl(`user_id=u${i}`)));

    // Health transitions and the service breaker, sampled every 10 ms.
    const statuses: NatsStatus[] = [status()];
    const breakerStates = new Set<string>();
    const sampler = setInterval(() => {
      const s = status();
      if (statuses.at(-1) !== s) statuses.push(s);
      breakerStates.add(genApi.health().breakers.services.slowsvc ?? 'closed');
    }, 10);

    const outcomes: Outcome[] = [];
    const refs = new Map<string, { client: ApiClient; ref: string }>();
    let running = true;
    const loops = clients.map(async (c, k) => {
      for (let n = 0; running; n++) {
        const id = `c${k}-${n}`;
        const outcome: Outcome = {
          id,
          client: k,
          sentAt: performance.now(),
          statusAtSend: status(),
          doneAt: null,
          push: null,
        };
        outcomes.push(outcome);
        refs.set(id, {
          client: c,
          ref: c.call({
            request_id: id,
            service: 'slowsvc',
            request_type: 'echo',
            args: { message: id },
          }),
        });
        try {
          await c.until(
            () => c.pushes(id).length > 0 && c.replies(refs.get(id)!.ref).length > 0,
            `the answer to ${id}`,
            ECHO_TIMEOUT_MS + 5_000,
          );
          outcome.doneAt = c.pushTimes(id)[0]!;
          outcome.push = c.pushes(id)[0]!;
        } catch {
          // silence: recorded as doneAt null and reported below
        }
        await realTime(15, 'pacing: each client sends a steady stream of requests, not a flood');
      }
    });
    const ended = (where: (o: Outcome) => boolean) =>
      outcomes.filter((o) => o.doneAt !== null && where(o)).length;

    let killedAt = 0;
    let restartedAt = 0;
    let gatewayBackAt = 0;
    let restoredAt = 0;
    let recoveredAt = 0;
    let breakersAtEnd: unknown;
    try {
      await until(() => ended(() => true) >= PER_PHASE, 'requests served before the kill');
      killedAt = performance.now();
      proxy.cut();
      await nats.kill();
      await until(() => status() !== 'connected', 'the gateway to notice');
      await until(
        () => ended((o) => o.statusAtSend !== 'connected' && o.sentAt > killedAt) >= PER_PHASE,
        'requests answered while NATS is down',
      );
      await nats.restart();
      restartedAt = performance.now();
      await until(() => status() === 'connected', 'the gateway to reconnect');
      gatewayBackAt = performance.now();
      // More requests end while the worker is away than the service breaker's threshold.
      const settled = (o: Outcome) => o.sentAt > gatewayBackAt + 50;
      await until(
        () => ended(settled) > RESILIENCE_DEFAULTS.serviceFailures + 2,
        'requests answered while the gateway is back and the worker is not',
      );
      restoredAt = performance.now();
      proxy.restore();
      await reconnected(worker);
      await until(() => instances() === 1, 'the worker to be rediscovered');
      recoveredAt = performance.now();
      await until(
        () => ended((o) => o.sentAt > recoveredAt) >= PER_PHASE,
        'requests answered after the recovery',
      );
      breakersAtEnd = genApi.health().breakers;
    } finally {
      running = false;
      await Promise.all(loops);
      clearInterval(sampler);
    }
    // A marker per client: a late duplicate push would have arrived before its answer.
    await Promise.all(
      clients.map((c, k) =>
        c.sync({
          request_id: `marker-${k}`,
          service: 'slowsvc',
          request_type: 'echo',
          args: { message: 'marker' },
        }),
      ),
    );

    // 1. Nothing was silent; exactly one reply and one push per request.
    const silent = outcomes.filter((o) => o.doneAt === null).map((o) => o.id);
    expect(silent, 'requests without an answer').toEqual([]);
    for (const o of outcomes) {
      const { client, ref } = refs.get(o.id)!;
      expect(client.replies(ref), o.id).toEqual([{ status: 'ok', response: 'echo' }]);
      expect(client.pushes(o.id), o.id).toHaveLength(1);
    }
    const ok = (o: Outcome) =>
      o.push!.success && (o.push!.result as { message: string }).message === o.id;
    const unavailable = (o: Outcome) =>
      !o.push!.success && o.push!.error === 'Service temporarily unavailable' && o.push!.can_retry;

    // 2. Before the kill everything succeeded.
    const before = outcomes.filter((o) => o.doneAt! < killedAt);
    expect(before.length).toBeGreaterThan(20);
    expect(before.filter((o) => !ok(o)).map((o) => o.push)).toEqual([]);

    // 3. While down: each request failed fast with Service temporarily unavailable, can_retry.
    const down = outcomes.filter(
      (o) => o.statusAtSend !== 'connected' && o.sentAt > killedAt && o.sentAt < restartedAt,
    );
    expect(down.length).toBeGreaterThan(20);
    for (const o of down) {
      expect(unavailable(o), `${o.id}: ${JSON.stringify(o.push)}`).toBe(true);
      // Fast: the link fails it while disconnected instead of waiting for echo's timeout.
      expect(o.doneAt! - o.sentAt, `${o.id} latency`).toBeLessThan(ECHO_TIMEOUT_MS / 2);
    }
    // Requests that were in flight at the kill ended as unavailable (or succeeded just before).
    for (const o of outcomes.filter((o) => o.sentAt < killedAt && o.doneAt! >= killedAt)) {
      expect(ok(o) || unavailable(o), `${o.id}: ${JSON.stringify(o.push)}`).toBe(true);
    }
    // Every failure in the whole run is the retryable one.
    for (const o of outcomes)
      expect(ok(o) || unavailable(o), `${o.id}: ${JSON.stringify(o.push)}`).toBe(true);

    // 4. While the gateway was back but the worker not yet, its subject had no responders: each
    //    such request failed fast as Service temporarily unavailable — more of them than the
    //    service breaker's threshold, so counting them would have opened it.
    //    (The worker could not reach NATS before the proxy let it: restoredAt ends the window.)
    const noWorker = outcomes.filter(
      (o) => o.sentAt > gatewayBackAt + 50 && o.doneAt! < restoredAt,
    );
    expect(
      noWorker.length,
      `requests between the gateway's and the worker's reconnect`,
    ).toBeGreaterThan(RESILIENCE_DEFAULTS.serviceFailures);
    for (const o of noWorker)
      expect(unavailable(o), `${o.id}: ${JSON.stringify(o.push)}`).toBe(true);
    expect([...breakerStates]).toEqual(['closed']);

    //    Once the worker is back (reconnected and rediscovered), every request succeeds at once:
    //    no breaker keeps the service unavailable for halfOpenAfterMs.
    const after = outcomes.filter((o) => o.sentAt > recoveredAt);
    expect(after.length).toBeGreaterThan(20);
    const failedAfter = after.filter((o) => !ok(o));
    const summary = failedAfter
      .slice(0, 3)
      .map((o) => `${o.id} +${Math.round(o.sentAt - recoveredAt)}ms ${String(o.push!.error)}`);
    expect(
      failedAfter.length,
      `${failedAfter.length}/${after.length} requests failed after recovery (${summary.join('; ')}); breakers: ${JSON.stringify(breakersAtEnd)}`,
    ).toBe(0);
    expect(breakersAtEnd).toEqual({
      services: { slowsvc: 'closed' },
      instances: expect.anything() as unknown,
    });

    // 5. Health went disconnected/reconnecting, then connected again.
    expect(statuses[0]).toBe('connected');
    expect(
      statuses.some((s) => s === 'disconnected' || s === 'reconnecting'),
      statuses.join(' → '),
    ).toBe(true);
    expect(statuses.at(-1)).toBe('connected');
    const health = genApi.health().nats!;
    expect(health.reconnects).toBeGreaterThanOrEqual(1);
    expect(health.pendingRequests).toBe(0);

    // 6. The gateway (this process) still answers.
    const final = await clients[0]!.sync({
      request_id: 'final',
      service: 'slowsvc',
      request_type: 'echo',
      args: { message: 'final' },
    });
    expect(final.reply).toEqual({ status: 'ok', response: 'echo' });
    expect(final.push.request_id).toBe('final');
  }, 40_000);

  it('health: status disconnected/reconnecting while the server is stopped, connected after; requests fail fast meanwhile', async () => {
    nats = await NatsServer.start();
    worker = await startWorker(slowService('W', { calls: 0, inflight: 0 }), nats.url);
    app = await startGenApiApp({ nats: nats.url, natsOptions: { reconnectTimeWaitMs: 100 } });
    const genApi = app.genApi;
    await until(
      () => genApi.nats!.discovery.instances('slowsvc').length === 1,
      'the worker discovered',
    );
    const c = await ApiClient.connect(app.wsUrl('user_id=u1'));
    clients.push(c);
    expect(genApi.health().nats).toMatchObject({
      status: 'connected',
      reconnects: 0,
      lastError: null,
    });

    await nats.stop();
    const seen = await until(() => {
      const s = genApi.health().nats!.status;
      return s === 'disconnected' || s === 'reconnecting' ? s : null;
    }, 'a disconnected status');
    expect(['disconnected', 'reconnecting']).toContain(seen);
    const t = performance.now();
    const { push, reply } = await c.sync({
      request_id: 'down',
      service: 'slowsvc',
      request_type: 'echo',
      args: { message: 'x' },
    });
    // Fast: well below echo's timeout.
    expect(performance.now() - t).toBeLessThan(ECHO_TIMEOUT_MS / 2);
    expect(push).toEqual({
      request_id: 'down',
      result: null,
      success: false,
      error: 'Service temporarily unavailable',
      async: false,
      has_more: false,
      can_retry: true,
    });
    expect(reply).toEqual({ status: 'ok', response: 'echo' });

    await nats.restart();
    await until(() => genApi.health().nats!.status === 'connected', 'connected again');
    expect(genApi.health().nats!.reconnects).toBe(1);
    // The worker reconnects on its own schedule (a flush completes once it is back).
    await reconnected(worker);
    await until(
      () => genApi.nats!.discovery.instances('slowsvc').length === 1,
      'the worker rediscovered',
    );
    const back = await c.sync({
      request_id: 'back',
      service: 'slowsvc',
      request_type: 'echo',
      args: { message: 'back' },
    });
    expect(back.push.success).toBe(true);
  });
});

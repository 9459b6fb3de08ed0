/**
 * Fault isolation with real processes (issue 12, "Breakers that isolate"): two SDK worker processes
 * serve `slowsvc`, a gateway with the shipped defaults (discovery, resilience) on a real
 * nats-server, and 200 clients each calling `slow` (150 ms of work) in a loop. One worker is frozen (SIGSTOP) or
 * killed (SIGKILL) under that load. The errors must be at most the calls in flight on that worker
 * (each fails once, as an error push, never as a refusal of the whole service), the other worker
 * keeps answering throughout, and a worker that comes back serves again within 3 s. Likewise when
 * the NATS server a worker is connected to dies in a 3-server cluster, and when the only worker
 * freezes (the service's breaker must not outlast its return). protocol/gen_api.md §5.
 * Each test records its figures (errors, calls in flight on the sick worker, recovery, round
 * trips) for RELIABILITY.md (`npm run reliability`) before asserting on them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsCluster, NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import type { ApiClient } from '../support/genapi-client.js';
import { startWorkerProcess, type WorkerProcess } from '../support/genapi-worker-process.js';
import { subscriptionsGone } from '../support/genapi-exec.js';
import { realTime, until } from '../support/wait.js';
import { recordFigure } from '../support/figures.js';
import {
  type BusCall,
  BusCalls,
  CLIENTS,
  connectClients,
  errorsGoal,
  Load,
  RECOVERY_MS,
  recoveryGoal,
  roundTripFigures,
  type Sent,
} from '../support/fault-load.js';
import { RESILIENCE_DEFAULTS } from '../../src/genapi/resilience.js';

/** The gateway stops sending calls to a frozen worker this soon (its `stallAfterMs`). */
const STALL_MS = RESILIENCE_DEFAULTS.stallAfterMs;
/** Slack for event-loop lag under load (the gateway and 200 clients share this process). */
const SLACK_MS = 1_000;
/** How long a worker stays frozen. */
const FREEZE_MS = 6_000;

/**
 * The bound on errors: exactly the calls the sick worker took and never answered fail,
 * each once, and none of them was tried on another instance (it may have run); they are among
 * the calls it held during the fault, so the errors are at most those.
 */
function onlyInFlightFailed(
  failed: Sent[],
  lost: BusCall[],
  held: BusCall[],
  calls: BusCalls,
): void {
  expect(failed.map((f) => f.id).sort()).toEqual(lost.map((l) => l.requestId).sort());
  for (const l of lost) expect(calls.attempts(l.requestId), l.requestId).toHaveLength(1);
  for (const l of lost) expect(held, l.requestId).toContain(l);
  expect(failed.length).toBeLessThanOrEqual(held.length);
}

describe('fault isolation: one sick worker does not stop its service', () => {
  let nats: NatsServer;
  let app: GenApiApp | null = null;
  const workers: WorkerProcess[] = [];
  const clients: ApiClient[] = [];

  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await app?.close();
    app = null;
    await Promise.all(workers.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    await nats?.dispose();
  });

  /** Workers A and B, a gateway with the shipped defaults that knows both, and 200 clients. */
  async function setup(): Promise<{
    a: WorkerProcess;
    b: WorkerProcess;
    gateway: GenApiApp;
    calls: BusCalls;
  }> {
    const { started, gateway, calls } = await setupWith(['A', 'B'], CLIENTS);
    return { a: started[0]!, b: started[1]!, gateway, calls };
  }

  async function setupWith(
    labels: string[],
    clientCount: number,
  ): Promise<{ started: WorkerProcess[]; gateway: GenApiApp; calls: BusCalls }> {
    const [gateway, ...started] = await Promise.all([
      startGenApiApp({ nats: nats.url, discovery: 'defaults' }),
      ...labels.map((label) => startWorkerProcess(nats.url, 'slowsvc', label)),
    ]);
    workers.push(...started);
    app = gateway;
    await until(
      () => gateway.genApi.nats!.discovery.instances('slowsvc').length === labels.length,
      'the instances discovered',
    );
    clients.push(...(await connectClients(gateway, clientCount)));
    return { started, gateway, calls: new BusCalls(gateway) };
  }

  /** Resolves with the time discovery reports `id` removed (or added). */
  function discoveryEvent(gateway: GenApiApp, kind: 'removed' | 'added', id: string) {
    const times: number[] = [];
    gateway.genApi.nats!.discovery.on({
      [kind]: (instance: { id: string }) => {
        if (instance.id === id) times.push(performance.now());
      },
    });
    return () => times[0];
  }

  /** Every failure is one error push, "Internal Server Error", not a refusal of the service. */
  function failedOnce(failed: Sent[]): void {
    for (const f of failed)
      expect(f.push, f.id).toMatchObject({
        success: false,
        error: 'Internal Server Error',
        can_retry: false,
      });
  }

  it(`SIGSTOP of one worker for ${FREEZE_MS / 1000} s under 200 clients: errors only for the calls in flight on it, the other keeps answering, back within 3 s of SIGCONT`, async () => {
    const { a, gateway, calls } = await setup();
    const removedAt = discoveryEvent(gateway, 'removed', a.id);
    const load = new Load(clients);
    await until(() => load.answeredBy('A', 0).length >= 50, 'A to answer under the load');
    await until(() => load.answeredBy('B', 0).length >= 50, 'B to answer under the load');

    const frozenAt = performance.now();
    a.proc.kill('SIGSTOP');
    const removed = await until(removedAt, 'discovery to drop the frozen worker');
    await realTime(frozenAt + FREEZE_MS - performance.now(), 'the worker stays frozen');
    const continuedAt = performance.now();
    a.proc.kill('SIGCONT');
    const back = await until(
      () => load.answeredBy('A', continuedAt)[0],
      'A to answer again after SIGCONT',
    );
    await until(() => load.answeredBy('A', back.doneAt).length >= 20, 'A serving again');
    await load.stop();

    const failed = load.failed();
    const lost = calls.lostOn(a.id);
    const held = calls.heldDuring([a.id], frozenAt, continuedAt);
    const lastFailedSent = Math.max(frozenAt, ...failed.map((f) => f.sentAt));
    recordFigure(
      'worker-sigstop',
      `SIGSTOP of one of 2 workers for ${FREEZE_MS / 1000} s under ${CLIENTS} clients`,
      {
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        inflightOnSick: held.length,
        lostOnSick: lost.length,
        lastErrorSentAfterFreezeMs: Math.round(lastFailedSent - frozenAt),
        droppedByDiscoveryMs: Math.round(removed - frozenAt),
        recoveryMs: Math.round(back.doneAt - continuedAt),
        ...roundTripFigures(load, frozenAt, continuedAt, 'during the freeze'),
      },
      [
        errorsGoal(failed.length, held.length),
        recoveryGoal(back.doneAt - continuedAt, 'A answers again after SIGCONT'),
      ],
    );

    load.exactlyOnce();
    // The errors are the calls in flight on A: sent before discovery took it out of rotation...
    onlyInFlightFailed(failed, lost, held, calls);
    for (const f of failed) expect(f.sentAt, f.id).toBeLessThan(removed);
    // ...and in fact only before the gateway saw A stall (stallAfterMs): from then on the calls
    // go to B first, long before discovery drops A.
    expect(lastFailedSent - frozenAt).toBeLessThan(STALL_MS + SLACK_MS);
    failedOnce(failed);
    // B answered all along: every second of the freeze, once A was seen stalled, has answers by B.
    for (let t = frozenAt + STALL_MS + SLACK_MS; t + 1_000 < continuedAt; t += 1_000) {
      const inWindow = load
        .answeredBy('B', t)
        .filter((s) => s.sentAt < t + 1_000 && s.doneAt < t + 1_000 + 500);
      expect(inWindow.length, `answers by B sent in [${t - frozenAt}, +1 s) ms`).toBeGreaterThan(0);
    }
    // Recovery: A answers again within 3 s of SIGCONT; nothing sent after SIGCONT failed.
    expect(back.doneAt - continuedAt).toBeLessThan(RECOVERY_MS);
    expect(failed.filter((f) => f.sentAt >= continuedAt)).toEqual([]);
    expect(gateway.genApi.health().breakers.services.slowsvc ?? 'closed').toBe('closed');
  }, 90_000);

  it('SIGKILL of one worker under 200 clients: errors only for the calls in flight on it, the other keeps answering, a new worker serves within 3 s', async () => {
    const { a, gateway, calls } = await setup();
    const load = new Load(clients);
    await until(() => load.answeredBy('A', 0).length >= 50, 'A to answer under the load');
    await until(() => load.answeredBy('B', 0).length >= 50, 'B to answer under the load');

    const killedAt = performance.now();
    await a.kill();
    await subscriptionsGone(nats.url, a.id);
    const goneAt = performance.now();
    await realTime(3_000, 'the service runs on B alone for a while');
    const c = await startWorkerProcess(nats.url, 'slowsvc', 'C');
    workers.push(c);
    const readyAt = performance.now();
    const first = await until(() => load.answeredBy('C', readyAt)[0], 'C to answer');
    await until(() => load.answeredBy('C', first.doneAt).length >= 20, 'C serving');
    await load.stop();

    const failed = load.failed();
    const lost = calls.lostOn(a.id);
    const held = calls.heldDuring([a.id], killedAt, Number.POSITIVE_INFINITY);
    recordFigure(
      'worker-sigkill',
      `SIGKILL of one of 2 workers under ${CLIENTS} clients, a new worker started 3 s later`,
      {
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        inflightOnSick: held.length,
        lostOnSick: lost.length,
        subscriptionsGoneMs: Math.round(goneAt - killedAt),
        newWorkerMs: Math.round(first.doneAt - readyAt),
        ...roundTripFigures(load, killedAt, readyAt, 'on B alone'),
      },
      [
        errorsGoal(failed.length, held.length),
        recoveryGoal(first.doneAt - readyAt, 'a new worker answers after it is ready'),
      ],
    );

    load.exactlyOnce();
    // Only calls the dead worker had taken failed: sent before nats-server dropped its
    // subscriptions. Later calls to its subject got "no responders" and went to B at once.
    onlyInFlightFailed(failed, lost, held, calls);
    for (const f of failed) expect(f.sentAt, f.id).toBeLessThan(goneAt);
    failedOnce(failed);
    expect(load.answeredBy('B', goneAt).length).toBeGreaterThan(0);
    expect(first.doneAt - readyAt).toBeLessThan(RECOVERY_MS);
    expect(gateway.genApi.health().breakers.services.slowsvc ?? 'closed').toBe('closed');
  }, 90_000);

  it('SIGSTOP of the only worker: its calls fail, and within 3 s of SIGCONT the service answers again (the service breaker does not wait halfOpenAfterMs)', async () => {
    const onlyClients = 50;
    const { started, gateway, calls } = await setupWith(['A'], onlyClients);
    const a = started[0]!;
    const load = new Load(clients);
    await until(() => load.answeredBy('A', 0).length >= 50, 'A to answer under the load');
    const frozenAt = performance.now();
    a.proc.kill('SIGSTOP');
    // Long enough for discovery to drop A and for its lost calls to open the service breaker.
    await realTime(FREEZE_MS, 'the worker stays frozen');
    const breakerWhileFrozen = gateway.genApi.health().breakers.services.slowsvc;
    const continuedAt = performance.now();
    a.proc.kill('SIGCONT');
    const back = await until(
      () => load.answeredBy('A', continuedAt)[0],
      'A to answer a call sent after SIGCONT',
    );
    await until(() => load.answeredBy('A', back.doneAt).length >= 50, 'A serving again');
    await load.stop();

    const failed = load.failed();
    // Calls A held: sent to it, or to the queue group once discovery had dropped it.
    const lost = calls.lostOn(a.id, null);
    const held = calls.heldDuring([a.id, null], frozenAt, continuedAt);
    const lostIds = new Set(lost.map((l) => l.requestId));
    const refused = failed.filter((f) => !lostIds.has(f.id));
    const failedInFlight = failed.filter((f) => lostIds.has(f.id));
    recordFigure(
      'only-worker-sigstop',
      `SIGSTOP of the only worker for ${FREEZE_MS / 1000} s under ${onlyClients} clients`,
      {
        clients: onlyClients,
        requests: load.sent.length,
        errors: failed.length,
        errorsInFlight: failedInFlight.length,
        refusedRetryable: refused.length,
        inflightOnSick: held.length,
        lostOnSick: lost.length,
        frozenMs: Math.round(continuedAt - frozenAt),
        breakerWhileFrozen: breakerWhileFrozen ?? 'closed',
        recoveryMs: Math.round(back.doneAt - continuedAt),
      },
      [
        errorsGoal(failedInFlight.length, held.length, 'errors other than a can_retry refusal'),
        recoveryGoal(back.doneAt - continuedAt, 'the service answers again after SIGCONT'),
      ],
    );

    load.exactlyOnce();
    expect(breakerWhileFrozen).toBe('open');
    // The calls A held failed once, not retried; every other failure is a refusal that says
    // nothing ran (an open breaker), so the client may send it again.
    for (const l of lost) expect(calls.attempts(l.requestId), l.requestId).toHaveLength(1);
    expect(failedInFlight).toHaveLength(lost.length);
    for (const l of lost) expect(held, l.requestId).toContain(l);
    for (const f of refused)
      expect(f.push, f.id).toMatchObject({
        error: 'Service temporarily unavailable',
        can_retry: true,
      });
    expect(back.doneAt - continuedAt).toBeLessThan(RECOVERY_MS);
    const failedLate = failed.filter((f) => f.sentAt > continuedAt + RECOVERY_MS);
    expect(failedLate).toEqual([]);
  }, 90_000);
});

describe('fault isolation: a NATS server of a cluster dies under a worker', () => {
  let cluster: NatsCluster;
  let app: GenApiApp | null = null;
  const workers: WorkerProcess[] = [];
  const clients: ApiClient[] = [];

  beforeAll(async () => {
    cluster = await NatsCluster.start({ size: 3 });
    await cluster.waitForRoutes();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await app?.close();
    app = null;
    await Promise.all(workers.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    await cluster?.dispose();
  });

  it('SIGKILL of the server worker A is connected to, under 200 clients: errors only for calls in flight on A, B answers throughout, A serves again within 3 s', async () => {
    const [gateway, a, b] = await Promise.all([
      startGenApiApp({ nats: cluster.urls[0]!, discovery: 'defaults' }),
      startWorkerProcess(cluster.urls[1]!, 'slowsvc', 'A'),
      startWorkerProcess(cluster.urls[2]!, 'slowsvc', 'B'),
    ]);
    app = gateway;
    workers.push(a, b);
    await until(
      () => gateway.genApi.nats!.discovery.instances('slowsvc').length === 2,
      'both instances discovered',
    );
    clients.push(...(await connectClients(gateway, CLIENTS)));
    const calls = new BusCalls(gateway);
    const load = new Load(clients);
    await until(() => load.answeredBy('A', 0).length >= 50, 'A to answer under the load');
    await until(() => load.answeredBy('B', 0).length >= 50, 'B to answer under the load');

    const killedAt = performance.now();
    await cluster.servers[1]!.kill();
    const deadAt = performance.now();
    // A's client reconnects to another server of the cluster and serves again.
    const back = await until(() => load.answeredBy('A', deadAt)[0], 'A to answer again');
    await until(() => load.answeredBy('A', back.doneAt).length >= 20, 'A serving again');
    await load.stop();

    const failed = load.failed();
    const lost = calls.lostOn(a.id);
    const held = calls.heldDuring([a.id], killedAt, back.sentAt);
    recordFigure(
      'worker-nats-server-sigkill',
      `SIGKILL of the NATS server one of 2 workers is connected to (3-server cluster), ${CLIENTS} clients`,
      {
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        errorKinds: [...new Set(failed.map((f) => String(f.push!.error)))],
        inflightOnSick: held.length,
        lostOnSick: lost.length,
        killMs: Math.round(deadAt - killedAt),
        recoveryMs: Math.round(back.doneAt - deadAt),
        ...roundTripFigures(load, deadAt, back.doneAt, 'until A is back'),
      },
      [
        errorsGoal(failed.length, held.length),
        recoveryGoal(back.doneAt - deadAt, 'A answers again after its server died'),
      ],
    );

    load.exactlyOnce();
    // A's replies to calls it had taken are buffered by its client and sent once it reconnects,
    // so few or none are lost; those lost fail once. Calls sent meanwhile went to B.
    onlyInFlightFailed(failed, lost, held, calls);
    for (const f of failed) expect(f.sentAt, f.id).toBeLessThan(deadAt + SLACK_MS);
    expect(load.answeredBy('B', deadAt).length).toBeGreaterThan(0);
    expect(back.doneAt - deadAt).toBeLessThan(RECOVERY_MS);
    expect(gateway.genApi.health().breakers.services.slowsvc ?? 'closed').toBe('closed');
  }, 90_000);
});

/**
 * The gateway's own NATS server goes away under load (issue 12, "Tests and figures"; protocol/
 * gen_api.md §2 Errors: "NATS down → Service temporarily unavailable, can_retry"): two SDK worker
 * processes serve `slowsvc`, a gateway with the shipped defaults, 200 clients calling `slow` in a
 * loop (test/support/fault-load.ts). Two faults:
 *
 * - the single nats-server everyone uses stops and starts again on the same port;
 * - in a 3-server cluster, the server the gateway is connected to is killed (SIGKILL), the workers
 *   being on the other two.
 *
 * Either way the calls in flight at the gateway end once, as `Service temporarily unavailable`
 * with can_retry (the gateway cannot know whether they ran; it does not retry them itself), the
 * calls sent while it has no NATS fail fast the same way, nothing is lost silently, and the
 * service answers again within 3 s of NATS being back (or of the server's death, in a cluster).
 * test/genapi/fault-nats.test.ts covers the breakers and health across a restart with a worker
 * kept away; test/genapi/fault-isolation.test.ts a worker's server dying in a cluster.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NatsCluster, NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import type { ApiClient } from '../support/genapi-client.js';
import { startWorkerProcess, type WorkerProcess } from '../support/genapi-worker-process.js';
import { realTime, until } from '../support/wait.js';
import { recordFigure } from '../support/figures.js';
import {
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

/** How long the restarted nats-server stays down: long enough for many calls to fail fast. */
const DOWN_MS = 1_000;

const apps: GenApiApp[] = [];
const workers: WorkerProcess[] = [];
const clients: ApiClient[] = [];
const servers: { dispose(): Promise<void> }[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(apps.splice(0).map((app) => app.close()));
  await Promise.all(workers.splice(0).map((w) => w.kill()));
  await Promise.all(servers.splice(0).map((s) => s.dispose()));
});

/** A gateway on `gatewayUrl`, workers A and B on theirs, 200 clients, their load running. */
async function setup(
  gatewayUrl: string,
  urlA: string,
  urlB: string,
): Promise<{ gateway: GenApiApp; calls: BusCalls; load: Load }> {
  const [gateway, a, b] = await Promise.all([
    startGenApiApp({ nats: gatewayUrl, discovery: 'defaults' }),
    startWorkerProcess(urlA, 'slowsvc', 'A'),
    startWorkerProcess(urlB, 'slowsvc', 'B'),
  ]);
  apps.push(gateway);
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
  return { gateway, calls, load };
}

/** The error a call gets when the gateway has no NATS: nothing known to have run, retry later. */
function retryable(s: Sent): boolean {
  return (
    s.push !== null &&
    !s.push.success &&
    s.push.error === 'Service temporarily unavailable' &&
    s.push.can_retry
  );
}

/** Calls the clients had sent and not yet seen answered at `t`. */
function inFlightAt(load: Load, t: number): Sent[] {
  return load.sent.filter((s) => s.sentAt <= t && s.doneAt > t);
}

/**
 * From `since` (NATS back) until the service is whole again: its first answer to a call sent
 * after `since`, or the end of the last call that failed after `since`, whichever is later.
 */
function recovery(load: Load, since: number): { firstAnswerMs: number; wholeMs: number } {
  const first = load.sent.find((s) => s.sentAt > since && s.push?.success === true);
  const lastFailure = Math.max(
    since,
    ...load
      .failed()
      .filter((s) => s.doneAt > since)
      .map((s) => s.doneAt),
  );
  const firstAnswerMs = first ? first.doneAt - since : Number.POSITIVE_INFINITY;
  return {
    firstAnswerMs: Math.round(firstAnswerMs),
    wholeMs: Math.round(Math.max(firstAnswerMs, lastFailure - since)),
  };
}

describe("the gateway's NATS server goes away under 200 clients", () => {
  it(`the single nats-server stops and starts again on the same port (${DOWN_MS / 1000} s down): in-flight calls fail once with can_retry, nothing is lost, the service answers within 3 s of NATS being back`, async () => {
    const nats = await NatsServer.start();
    servers.push(nats);
    const { gateway, calls, load } = await setup(nats.url, nats.url, nats.url);
    const status = () => gateway.genApi.health().nats!.status;

    const stoppedAt = performance.now();
    await nats.stop();
    const downAt = performance.now();
    await until(() => status() !== 'connected', 'the gateway to notice');
    await realTime(DOWN_MS - (performance.now() - stoppedAt), 'NATS stays down');
    await nats.restart();
    const backAt = performance.now();
    await until(() => status() === 'connected', 'the gateway to reconnect', RECOVERY_MS * 3);
    const reconnectedAt = performance.now();
    const firstA = await until(() => load.answeredBy('A', backAt)[0], 'A to answer again');
    const firstB = await until(() => load.answeredBy('B', backAt)[0], 'B to answer again');
    await until(
      () => load.answeredBy('A', firstA.doneAt).length >= 20,
      'A serving again',
      RECOVERY_MS * 3,
    );
    await until(
      () => load.answeredBy('B', firstB.doneAt).length >= 20,
      'B serving again',
      RECOVERY_MS * 3,
    );
    await load.stop();

    const failed = load.failed();
    const inFlight = inFlightAt(load, stoppedAt);
    const failedInFlight = failed.filter((s) => s.sentAt <= stoppedAt);
    const notRetryable = failed.filter((s) => !retryable(s));
    const { firstAnswerMs, wholeMs } = recovery(load, backAt);
    recordFigure(
      'nats-restart',
      `The nats-server of the gateway and both workers stopped and started again (${DOWN_MS / 1000} s down), ${CLIENTS} clients`,
      {
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        errorsInFlight: failedInFlight.length,
        inflightAtStop: inFlight.length,
        errorsWhileDown: failed.filter((s) => s.sentAt > stoppedAt && s.sentAt <= backAt).length,
        errorsAfterBack: failed.filter((s) => s.sentAt > backAt).length,
        errorKinds: [
          ...new Set(
            failed.map((s) => `${String(s.push!.error)}, can_retry ${String(s.push!.can_retry)}`),
          ),
        ],
        stopMs: Math.round(downAt - stoppedAt),
        gatewayReconnectMs: Math.round(reconnectedAt - backAt),
        firstAnswerMs,
        wholeMs,
        bothWorkersMs: Math.round(Math.max(firstA.doneAt, firstB.doneAt) - backAt),
        ...roundTripFigures(load, backAt + wholeMs, Number.POSITIVE_INFINITY, 'after recovery'),
      },
      [
        errorsGoal(
          failedInFlight.length,
          inFlight.length,
          'errors of calls sent before the stop',
          'the gateway',
        ),
        { goal: 'errors without can_retry', value: notRetryable.length, limit: 0 },
        recoveryGoal(wholeMs, 'the service answers (and fails no more) after NATS is back'),
      ],
    );

    // Nothing lost silently: one push and one reply per call.
    load.exactlyOnce();
    // The calls in flight at the stop ended once each, either answered before the connection
    // went or failed as retryable; the gateway retried none of them on another instance.
    expect(failedInFlight.length).toBeLessThanOrEqual(inFlight.length);
    for (const s of failedInFlight) expect(calls.attempts(s.id), s.id).toHaveLength(1);
    // Every failure of the whole run says: nothing known to have run, retry later.
    expect(notRetryable.map((s) => [s.id, s.push])).toEqual([]);
    // The service is whole again within 3 s of NATS being back, both workers serving.
    expect(wholeMs).toBeLessThan(RECOVERY_MS);
    expect(failed.filter((s) => s.sentAt > backAt + RECOVERY_MS)).toEqual([]);
    expect(gateway.genApi.health().breakers.services.slowsvc ?? 'closed').toBe('closed');
  }, 90_000);

  it("SIGKILL of the gateway's server in a 3-server cluster (workers on the others): in-flight calls fail once with can_retry, the gateway moves to another server and serves within 3 s", async () => {
    const cluster = await NatsCluster.start({ size: 3 });
    servers.push(cluster);
    await cluster.waitForRoutes();
    const [url0, url1, url2] = cluster.urls as [string, string, string];
    const { gateway, calls, load } = await setup(url0, url1, url2);
    const health = () => gateway.genApi.health().nats!;

    const killedAt = performance.now();
    await cluster.servers[0]!.kill();
    const deadAt = performance.now();
    await until(
      () => health().status === 'connected' && health().reconnects > 0,
      'the gateway to reconnect to another server',
      RECOVERY_MS * 3,
    );
    const reconnectedAt = performance.now();
    const server = health().server;
    const first = await until(
      () => load.sent.find((s) => s.sentAt > deadAt && s.push?.success === true),
      'the service to answer again',
      RECOVERY_MS * 3,
    );
    await until(
      () =>
        load.answeredBy('A', first.doneAt).length >= 20 &&
        load.answeredBy('B', first.doneAt).length >= 20,
      'A and B serving again',
      RECOVERY_MS * 3,
    );
    await load.stop();

    const failed = load.failed();
    const inFlight = inFlightAt(load, killedAt);
    const failedInFlight = failed.filter((s) => s.sentAt <= killedAt);
    const notRetryable = failed.filter((s) => !retryable(s));
    const { firstAnswerMs, wholeMs } = recovery(load, deadAt);
    recordFigure(
      'gateway-nats-server-sigkill',
      `SIGKILL of the gateway's NATS server in a 3-server cluster (workers on the other two), ${CLIENTS} clients`,
      {
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        errorsInFlight: failedInFlight.length,
        inflightAtKill: inFlight.length,
        errorsAfterKill: failed.length - failedInFlight.length,
        errorKinds: [
          ...new Set(
            failed.map((s) => `${String(s.push!.error)}, can_retry ${String(s.push!.can_retry)}`),
          ),
        ],
        killMs: Math.round(deadAt - killedAt),
        gatewayReconnectMs: Math.round(reconnectedAt - deadAt),
        firstAnswerMs,
        wholeMs,
        ...roundTripFigures(load, reconnectedAt, Number.POSITIVE_INFINITY, 'after the reconnect'),
      },
      [
        errorsGoal(
          failedInFlight.length,
          inFlight.length,
          'errors of calls sent before the kill',
          'the gateway',
        ),
        { goal: 'errors without can_retry', value: notRetryable.length, limit: 0 },
        recoveryGoal(wholeMs, 'the service answers (and fails no more) after the kill'),
      ],
    );

    load.exactlyOnce();
    expect(server).not.toContain(`:${cluster.servers[0]!.port}`);
    expect(failedInFlight.length).toBeLessThanOrEqual(inFlight.length);
    for (const s of failedInFlight) expect(calls.attempts(s.id), s.id).toHaveLength(1);
    expect(notRetryable.map((s) => [s.id, s.push])).toEqual([]);
    expect(wholeMs).toBeLessThan(RECOVERY_MS);
    expect(gateway.genApi.health().breakers.services.slowsvc ?? 'closed').toBe('closed');
  }, 90_000);
});

/**
 * Fault isolation with real processes (issue 12, "Breakers that isolate"): two SDK worker processes
 * serve `slowsvc`, a gateway with the shipped defaults (discovery, resilience) on a real
 * nats-server, and 200 clients each calling `slow` (150 ms of work) in a loop. One worker is frozen (SIGSTOP) or
 * killed (SIGKILL) under that load. The errors must be at most the calls in flight on that worker
 * (each fails once, as an error push, never as a refusal of the whole service), the other worker
 * keeps answering throughout, and a worker that comes back serves again within 3 s. Likewise when
 * the NATS server a worker is connected to dies in a 3-server cluster, and when the only worker
 * freezes (the service's breaker must not outlast its return). protocol/gen_api.md §5.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsCluster, NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { ApiClient, type ApiResponse, type ReplyPayload } from '../support/genapi-client.js';
import { startWorkerProcess, type WorkerProcess } from '../support/genapi-worker-process.js';
import { subscriptionsGone } from '../support/genapi-exec.js';
import { realTime, until } from '../support/wait.js';
import { RESILIENCE_DEFAULTS } from '../../src/genapi/resilience.js';

/** The gateway stops sending calls to a frozen worker this soon (its `stallAfterMs`). */
const STALL_MS = RESILIENCE_DEFAULTS.stallAfterMs;
/** Slack for event-loop lag under load (the gateway and 200 clients share this process). */
const SLACK_MS = 1_000;

const CLIENTS = 200;
/** Each client waits about this long (±50 %) between its calls: a steady load, not a flood. */
const PACE_MS = 400;
/** A call's bound in the test: the function's timeout (4 s in the worker processes) and then some. */
const CALL_BOUND_MS = 15_000;
/** How long a worker stays frozen. */
const FREEZE_MS = 6_000;
/** The bound: the service is whole again this soon after the worker is back. */
const RECOVERY_MS = 3_000;

interface Sent {
  readonly client: number;
  readonly id: string;
  readonly ref: string;
  readonly sentAt: number;
  doneAt: number;
  push: ApiResponse | null;
  reply: ReplyPayload | null;
}

/** How long each call works in the worker: enough that a worker always holds some calls. */
const WORK_MS = 150;

const call = (id: string) => ({
  request_id: id,
  service: 'slowsvc',
  request_type: 'slow',
  args: { ms: WORK_MS },
});

/** 200 clients, each sending one call, waiting for its push and reply, pausing, and again. */
class Load {
  readonly sent: Sent[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(private readonly clients: ApiClient[]) {
    this.loops = clients.map((client, i) => this.loop(client, i));
  }

  private async loop(client: ApiClient, index: number): Promise<void> {
    // Spread the clients' first calls over one pace.
    await realTime(Math.random() * PACE_MS, 'a steady load: the clients start apart');
    for (let n = 0; this.running; n++) {
      const id = `c${index}-${n}`;
      const ref = client.call(call(id));
      const entry: Sent = {
        client: index,
        id,
        ref,
        sentAt: performance.now(),
        doneAt: 0,
        push: null,
        reply: null,
      };
      this.sent.push(entry);
      await client.until(
        () => client.pushes(id).length > 0 && client.replies(ref).length > 0,
        `the push and reply of ${id}`,
        CALL_BOUND_MS,
      );
      entry.doneAt = performance.now();
      entry.push = client.pushes(id)[0]!;
      entry.reply = client.replies(ref)[0]!;
      await realTime(PACE_MS * (0.5 + Math.random()), 'a steady load: the pause between calls');
    }
  }

  /** Stops sending and waits for every call in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Every call got exactly one push and one reply (checked after `stop`). */
  exactlyOnce(): void {
    for (const s of this.sent) {
      const client = this.clients[s.client]!;
      expect(client.pushes(s.id), s.id).toHaveLength(1);
      expect(client.replies(s.ref), s.id).toHaveLength(1);
      expect(s.reply).toEqual({ status: 'ok', response: 'slow' });
    }
  }

  failed(): Sent[] {
    return this.sent.filter((s) => s.push !== null && !s.push.success);
  }

  answeredBy(label: string, sentAfter: number): Sent[] {
    return this.sent.filter(
      (s) =>
        s.sentAt > sentAfter &&
        s.push?.success === true &&
        (s.push.result as { by?: unknown }).by === label,
    );
  }
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
  async function setup(): Promise<{ a: WorkerProcess; b: WorkerProcess; gateway: GenApiApp }> {
    const { started, gateway } = await setupWith(['A', 'B'], CLIENTS);
    return { a: started[0]!, b: started[1]!, gateway };
  }

  async function setupWith(
    labels: string[],
    clientCount: number,
  ): Promise<{ started: WorkerProcess[]; gateway: GenApiApp }> {
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
    for (let i = 0; i < clientCount; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(20, clientCount - i) }, (_, k) =>
          ApiClient.connect(gateway.wsUrl(`user_id=u${i + k}&device_id=d${i + k}`)),
        ),
      );
      clients.push(...batch);
    }
    return { started, gateway };
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
    const { a, gateway } = await setup();
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

    load.exactlyOnce();
    const failed = load.failed();
    // Only calls sent before discovery took A out of rotation failed: those in flight on A.
    for (const f of failed) expect(f.sentAt, f.id).toBeLessThan(removed);
    const lastFailedSent = Math.max(frozenAt, ...failed.map((f) => f.sentAt));
    // And in fact only those sent before the gateway saw A stall (stallAfterMs): from then on the
    // calls go to B first, long before discovery drops A.
    expect(lastFailedSent - frozenAt).toBeLessThan(STALL_MS + SLACK_MS);
    expect(failed.length).toBeLessThanOrEqual(CLIENTS);
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
    console.log(
      JSON.stringify({
        figure: 'sigstop',
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        detectMs: Math.round(removed - frozenAt),
        lastFailedSentMs: Math.round(lastFailedSent - frozenAt),
        recoveryMs: Math.round(back.doneAt - continuedAt),
      }),
    );
  }, 90_000);

  it('SIGKILL of one worker under 200 clients: errors only for the calls in flight on it, the other keeps answering, a new worker serves within 3 s', async () => {
    const { a, gateway } = await setup();
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

    load.exactlyOnce();
    const failed = load.failed();
    // Only calls the dead worker had taken failed: sent before nats-server dropped its
    // subscriptions. Later calls to its subject got "no responders" and went to B at once.
    for (const f of failed) expect(f.sentAt, f.id).toBeLessThan(goneAt);
    expect(failed.length).toBeLessThanOrEqual(CLIENTS);
    failedOnce(failed);
    expect(load.answeredBy('B', goneAt).length).toBeGreaterThan(0);
    expect(first.doneAt - readyAt).toBeLessThan(RECOVERY_MS);
    expect(gateway.genApi.health().breakers.services.slowsvc ?? 'closed').toBe('closed');
    console.log(
      JSON.stringify({
        figure: 'sigkill',
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        goneMs: Math.round(goneAt - killedAt),
        newWorkerMs: Math.round(first.doneAt - readyAt),
      }),
    );
  }, 90_000);

  it('SIGSTOP of the only worker: its calls fail, and within 3 s of SIGCONT the service answers again (the service breaker does not wait halfOpenAfterMs)', async () => {
    const { started, gateway } = await setupWith(['A'], 50);
    const a = started[0]!;
    const load = new Load(clients);
    await until(() => load.answeredBy('A', 0).length >= 50, 'A to answer under the load');
    const frozenAt = performance.now();
    a.proc.kill('SIGSTOP');
    // Long enough for discovery to drop A and for its lost calls to open the service breaker.
    await realTime(FREEZE_MS, 'the worker stays frozen');
    expect(gateway.genApi.health().breakers.services.slowsvc).toBe('open');
    const continuedAt = performance.now();
    a.proc.kill('SIGCONT');
    const back = await until(
      () => load.answeredBy('A', continuedAt)[0],
      'A to answer a call sent after SIGCONT',
    );
    await until(() => load.answeredBy('A', back.doneAt).length >= 50, 'A serving again');
    await load.stop();

    load.exactlyOnce();
    expect(back.doneAt - continuedAt).toBeLessThan(RECOVERY_MS);
    const failedLate = load.failed().filter((f) => f.sentAt > continuedAt + RECOVERY_MS);
    expect(failedLate).toEqual([]);
    console.log(
      JSON.stringify({
        figure: 'sigstop-only-worker',
        clients: 50,
        requests: load.sent.length,
        errors: load.failed().length,
        frozenMs: Math.round(continuedAt - frozenAt),
        recoveryMs: Math.round(back.doneAt - continuedAt),
      }),
    );
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

  it('SIGKILL of the server worker A is connected to, under 200 clients: errors only for calls sent before (in flight), B answers throughout, A serves again within 3 s', async () => {
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
    for (let i = 0; i < CLIENTS; i += 20)
      clients.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(20, CLIENTS - i) }, (_, k) =>
            ApiClient.connect(gateway.wsUrl(`user_id=u${i + k}&device_id=d${i + k}`)),
          ),
        )),
      );
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

    load.exactlyOnce();
    const failed = load.failed();
    // The calls lost with the server were sent before it died (slack: the route's close
    // reaches the gateway's server a moment later).
    for (const f of failed) expect(f.sentAt, f.id).toBeLessThan(deadAt + SLACK_MS);
    expect(failed.length).toBeLessThanOrEqual(CLIENTS);
    expect(load.answeredBy('B', deadAt).length).toBeGreaterThan(0);
    expect(back.doneAt - deadAt).toBeLessThan(RECOVERY_MS);
    expect(gateway.genApi.health().breakers.services.slowsvc ?? 'closed').toBe('closed');
    console.log(
      JSON.stringify({
        figure: 'nats-server-killed',
        clients: CLIENTS,
        requests: load.sent.length,
        errors: failed.length,
        errorKinds: [...new Set(failed.map((f) => String(f.push!.error)))],
        killMs: Math.round(deadAt - killedAt),
        recoveryMs: Math.round(back.doneAt - deadAt),
      }),
    );
  }, 90_000);
});

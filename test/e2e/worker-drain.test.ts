/**
 * Issue 14, worker side, with real processes: workers run by `runWorker` (as the README's worker
 * is) on a real nats-server behind a real gateway, driven by the real `phoenix` client.
 * - SIGTERM drains: the call in flight gets its result, new calls go to the other instance (or,
 *   with none left, get `Service temporarily unavailable` with can_retry), the process exits 0;
 * - a second signal exits at once (1);
 * - a worker started before NATS waits for it and serves once it is up;
 * - a worker on the connection runWorker makes itself outlasts an outage longer than nats.js's
 *   default reconnect budget (10 attempts), serves again and never exits;
 * - a worker whose NATS connection closes for good (here: nats.js's limited reconnects, what the
 *   README worker of the issue had) exits 1 and says why, never 0 in silence.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_MAX_RECONNECT_ATTEMPTS } from '@nats-io/nats-core/internal';
import { NatsServer } from '../support/nats.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { replyOf, waitFor, type PushReply } from '../support/phoenix-client.js';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { until } from '../support/wait.js';

const TOPIC = 'gen_api:lobby';
const EVENT = 'phoenix_gen_api';

let nats: NatsServer;
let app: GenApiApp;
let client: NatsConnection;
let socket: Socket;
let channel: Channel;
const results = new Map<string, Record<string, unknown>>();
const procs: Spawned[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  app = await startGenApiApp({ nats: nats.url });
  client = await connect({ servers: nats.url });
  socket = new Socket(`ws://127.0.0.1:${app.port}/socket`, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: 'u1' },
  });
  socket.connect();
  await waitFor(() => socket.isConnected(), 'socket open');
  channel = socket.channel(TOPIC, {});
  channel.on(EVENT, (payload: unknown) => {
    const response = payload as Record<string, unknown>;
    results.set(String(response.request_id), response);
  });
  expect((await replyOf(channel.join())).status).toBe('ok');
}, 30_000);

afterEach(async () => {
  for (const proc of procs.splice(0)) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
});

afterAll(async () => {
  socket?.disconnect();
  await client?.close();
  await app?.close();
  await nats?.dispose();
});

function worker(label: string, env: NodeJS.ProcessEnv = {}): Spawned {
  const proc = spawnTs('test/support/run-worker-main.ts', [], {
    NATS_URL: nats.url,
    WORKER_LABEL: label,
    ...env,
  });
  procs.push(proc);
  return proc;
}

/** Request ids whose `hold` started in `proc`. */
function held(proc: Spawned): string[] {
  return proc
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{"msg":"held"'))
    .map((line) => (JSON.parse(line) as { id: string }).id);
}

let seq = 0;
/** Pushes a holder request; resolves with the push reply; the result lands in `results`. */
function call(requestType: string, args: object = {}): { id: string; reply: Promise<PushReply> } {
  const id = `r${++seq}`;
  const push = channel.push(EVENT, {
    request_id: id,
    service: 'holder',
    request_type: requestType,
    args,
  });
  return { id, reply: replyOf(push, 20_000) };
}

async function instances(n: number): Promise<void> {
  await until(
    () =>
      app.genApi.registry.resolve('holder', 'hold', null).ok &&
      app.genApi.nats!.discovery.instances('holder').length === n,
    `${n} holder instance(s) at the gateway`,
    30_000,
  );
}

const result = (id: string) => until(() => results.get(id), `the result of ${id}`, 20_000);

describe('runWorker drain on SIGTERM (real gateway, real phoenix client)', () => {
  it('the call in flight gets its result, new calls go to the other instance, then to none (can_retry); each process exits 0', async () => {
    const a = worker('a');
    const b = worker('b');
    await Promise.all([a.logLine('worker serving'), b.logLine('worker serving')]);
    await instances(2);

    // A call in flight on one of them: that one gets SIGTERM.
    const first = call('hold');
    const holderOf = await until(
      () => (held(a).includes(first.id) ? a : held(b).includes(first.id) ? b : undefined),
      'the hold call running in a worker',
    );
    const other = holderOf === a ? b : a;
    const otherLabel = holderOf === a ? 'b' : 'a';
    holderOf.kill('SIGTERM');
    await holderOf.logLine('draining: refusing new calls, finishing in-flight ones');

    // While it drains, calls go to the other instance.
    for (let i = 0; i < 5; i++) {
      const next = call('echo', { n: i });
      expect((await next.reply).status).toBe('ok');
      expect((await result(next.id)).result).toMatchObject({ n: i, from: otherLabel });
    }
    // The draining process is still there, holding the call.
    expect(holderOf.child.exitCode).toBeNull();

    client.publish(`release.${first.id}`);
    expect((await result(first.id)).result).toEqual({
      released: holderOf === a ? 'a' : 'b',
    });
    expect((await first.reply).status).toBe('ok');
    expect(await holderOf.exited).toBe(0);
    expect(holderOf.stdout()).toContain('worker drained: exiting 0');

    // The last instance drains: new calls meanwhile get can_retry, the held one its result.
    await instances(1);
    const last = call('hold');
    await until(() => held(other).includes(last.id), 'the hold call on the last instance');
    other.kill('SIGTERM');
    await other.logLine('draining: refusing new calls, finishing in-flight ones');
    const refused = call('echo');
    await refused.reply;
    expect(await result(refused.id)).toMatchObject({
      success: false,
      can_retry: true,
      error: 'Service temporarily unavailable',
    });
    client.publish(`release.${last.id}`);
    expect((await result(last.id)).result).toEqual({ released: otherLabel });
    expect(await other.exited).toBe(0);
  }, 90_000);

  it('a second signal exits at once, with 1', async () => {
    const w = worker('c');
    await w.logLine('worker serving');
    await instances(1);
    const pending = call('hold');
    await until(() => held(w).includes(pending.id), 'the hold call running');
    w.kill('SIGTERM');
    await w.logLine('draining: refusing new calls, finishing in-flight ones');
    w.kill('SIGINT');
    expect(await w.exited).toBe(1);
    expect(w.stdout()).toContain('second signal: exiting at once');
    await pending.reply;
  }, 60_000);
});

describe('runWorker and a NATS that is not there yet', () => {
  it('waits for it, serves once it is up, and still drains to exit 0', async () => {
    const own = await NatsServer.start();
    try {
      await own.stop();
      const w = worker('e', { NATS_URL: own.url, RUNWORKER_CONNECTS: '1' });
      await w.logLine('connecting to NATS');
      expect(w.child.exitCode).toBeNull();
      await own.restart();
      await w.logLine('worker serving');
      w.kill('SIGTERM');
      expect(await w.exited).toBe(0);
    } finally {
      await own.dispose();
    }
  }, 60_000);
});

describe('runWorker on the connection it makes itself (no reconnect options) and a long NATS outage', () => {
  it("reconnects past nats.js's default attempt budget, serves again, and never exits", async () => {
    const own = await NatsServer.start();
    const gateway = await startGenApiApp({
      nats: own.url,
      natsOptions: { reconnectTimeWaitMs: 100 },
    });
    const ownSocket = new Socket(`ws://127.0.0.1:${gateway.port}/socket`, {
      transport: WebSocket as unknown as TransportConstructor,
      params: { user_id: 'u1' },
    });
    try {
      ownSocket.connect();
      await waitFor(() => ownSocket.isConnected(), 'socket open');
      const ownChannel = ownSocket.channel(TOPIC, {});
      const answers = new Map<string, Record<string, unknown>>();
      ownChannel.on(EVENT, (payload: unknown) => {
        const response = payload as Record<string, unknown>;
        answers.set(String(response.request_id), response);
      });
      expect((await replyOf(ownChannel.join())).status).toBe('ok');
      let n = 0;
      /** An echo through the gateway: the worker's answer, or the gateway's refusal. */
      const echo = async (): Promise<Record<string, unknown>> => {
        const id = `f${++n}`;
        await replyOf(
          ownChannel.push(EVENT, {
            request_id: id,
            service: 'holder',
            request_type: 'echo',
            args: { n },
          }),
          20_000,
        );
        return until(() => answers.get(id), `the answer to ${id}`, 20_000);
      };
      const servedBy = async (label: string) =>
        until(
          async () => {
            const answer = await echo();
            return answer.success === true ? answer : undefined;
          },
          `an echo served by worker ${label}`,
          30_000,
        );

      // runWorker connects by itself (connectWorker): no connection and no reconnect options given.
      const w = worker('f', { NATS_URL: own.url, RUNWORKER_CONNECTS: '1' });
      await w.logLine('worker serving');
      expect((await servedBy('f')).result).toMatchObject({ from: 'f' });

      await own.stop();
      await w.logLine('NATS connection lost; reconnecting');
      // nats.js on its own gives up after DEFAULT_MAX_RECONNECT_ATTEMPTS (10) and closes; this
      // worker goes on past that (its "still reconnecting" lines say how many attempts so far).
      const attemptsSoFar = () =>
        Math.max(
          0,
          ...w
            .stdout()
            .split('\n')
            .filter((line) => line.includes('"still reconnecting to NATS"'))
            .map((line) => (JSON.parse(line) as { attempts: number }).attempts),
        );
      await until(
        () => {
          if (w.child.exitCode !== null)
            throw new Error(`the worker exited (${w.child.exitCode}) while NATS was away`);
          return attemptsSoFar() > 2 * DEFAULT_MAX_RECONNECT_ATTEMPTS;
        },
        `more than ${2 * DEFAULT_MAX_RECONNECT_ATTEMPTS} reconnect attempts`,
        60_000,
      );
      expect(w.child.exitCode).toBeNull();
      expect(w.stdout()).not.toContain('worker stopped unexpectedly');

      await own.restart();
      const back = await w.logLine('NATS connection back');
      expect(back.attempts).toBeGreaterThan(2 * DEFAULT_MAX_RECONNECT_ATTEMPTS);
      expect((await servedBy('f')).result).toMatchObject({ from: 'f' });
      expect(w.child.exitCode).toBeNull();

      // Still the worker it was: a drain ends it with 0.
      w.kill('SIGTERM');
      expect(await w.exited).toBe(0);
    } finally {
      ownSocket.disconnect();
      await gateway.close();
      await own.dispose();
    }
  }, 120_000);
});

describe('runWorker when the connection closes for good', () => {
  it('exits 1 and logs why (nats.js gave up reconnecting), instead of exiting 0 in silence', async () => {
    const own = await NatsServer.start();
    try {
      const w = worker('d', { NATS_URL: own.url, MAX_RECONNECTS: '2' });
      await w.logLine('worker serving');
      await own.stop();
      expect(await w.exited).toBe(1);
      const line = await w.logLine('worker stopped unexpectedly: exiting 1');
      expect(JSON.stringify(line.err)).toContain('the NATS connection closed');
      expect(w.stdout()).toContain('NATS connection lost; reconnecting');
    } finally {
      await own.dispose();
    }
  }, 60_000);
});

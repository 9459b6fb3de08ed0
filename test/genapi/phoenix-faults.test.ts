/**
 * What a client sees, through the real `phoenix` 1.8 JS client, against a NATS gateway with SDK
 * workers on a real nats-server: stream cancellation by the cancel event, by leaving the channel
 * and by disconnecting the socket (the worker's handler learns within 100 ms, measured in the
 * handler), a worker process killed mid-request (an error push, never silence), and the error
 * strings of protocol/gen_api.md §2 (unsupported function, invalid arguments, permission denied
 * by role and by the worker's own check, disabled function, decode errors).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Channel, Socket } from 'phoenix';
import { defineService, fn } from '../../src/worker/define.js';
import { startGenApiApp, startWorker, type GenApiApp, type Worker } from '../support/genapi-app.js';
import { until } from '../support/wait.js';
import {
  exchange,
  heartbeatRoundTrip,
  joinedChannel,
  phoenixSocket,
  resp,
  type Entry,
} from '../support/genapi-phoenix.js';
import { streamProbe, streamService, type StreamProbe } from '../support/genapi-services.js';
import { startWorkerProcess, type WorkerProcess } from '../support/genapi-worker-process.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { NatsServer } from '../support/nats.js';

const EVENT = 'phoenix_gen_api';
const CANCEL = 'phoenix_gen_api_cancel';
/** Half the `endless` function's 10 s timeout: a stop before it was caused by the client. */
const CANCEL_WITHIN_MS = 5_000;

const guard = defineService({
  name: 'guard',
  functions: {
    echo: fn({
      args: { message: 'string', count: { type: 'num', allow_nil: true } },
      handler: (args) => args,
    }),
    admin_only: fn({ permission: { role: ['admin'] }, handler: () => 'secret' }),
    own_only: fn({
      args: { owner: 'string' },
      authorize: ({ owner }, ctx) => owner === ctx.userId,
      handler: ({ owner }) => ({ owner }),
    }),
    'old@1.0.0': fn({ disabled: true, handler: () => 'never' }),
    'old@2.0.0': fn({ handler: () => 'v2' }),
  },
});

let nats: NatsServer;
let app: GenApiApp;
let probe: StreamProbe;
const workers: Worker[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  probe = streamProbe();
  workers.push(await startWorker(streamService(probe), nats.url, { drainTimeoutMs: 500 }));
  workers.push(await startWorker(guard, nats.url));
  app = await startGenApiApp({ nats: nats.url });
  await until(
    () =>
      app.genApi.registry.resolve('streams', 'endless', null).ok &&
      app.genApi.registry.resolve('guard', 'own_only', null).ok,
    'the configs',
  );
  await until(
    () =>
      app.genApi.nats!.discovery.instances('guard').length === 1 &&
      app.genApi.nats!.discovery.instances('streams').length === 1,
    'the instances',
  );
}, 20_000);
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});
afterAll(async () => {
  await app?.close();
  for (const worker of workers) await worker.stop();
  await nats?.dispose();
});

async function socket(
  params: Record<string, unknown> = { user_id: 'u1', device_id: 'd1' },
): Promise<Socket> {
  const s = await phoenixSocket(app.port, params);
  sockets.push(s);
  return s;
}

describe('stream cancellation through the phoenix client', () => {
  let seq = 0;
  /** Starts `count` endless streams on the channel and waits until each delivered 3 chunks. */
  async function streams(channel: Channel, log: Entry[], count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, () => `px-${++seq}`);
    for (const id of ids)
      channel.push(EVENT, {
        request_id: id,
        service: 'streams',
        request_type: 'endless',
        args: { interval_ms: 20 },
      });
    await waitFor(
      () =>
        ids.every(
          (id) =>
            log.filter(([, p]) => (p as { request_id?: unknown }).request_id === id).length >= 5,
        ),
      'three chunks of every stream',
    );
    return ids;
  }
  const stoppedAfter = async (id: string, t0: number) =>
    (
      await waitFor(
        () => probe.stopped.get(id),
        `the handler of ${id} to stop`,
        2 * CANCEL_WITHIN_MS,
      )
    ).at - t0;

  it('the cancel event: the handler stops at once; push ok {cancelled: true}; the stream ends with the end push; the other stream goes on', async () => {
    const s = await socket();
    const { channel, log } = await joinedChannel(s, 'gen_api:cancel');
    const [victim, other] = await streams(channel, log, 2);
    const t0 = performance.now();
    const reply = replyOf(channel.push(CANCEL, { request_id: victim }));
    expect(await stoppedAfter(victim!, t0)).toBeLessThan(CANCEL_WITHIN_MS);
    expect(await reply).toEqual({ status: 'ok', response: { cancelled: true } });
    const mine = () =>
      log
        .filter(([, p]) => (p as { request_id?: unknown }).request_id === victim)
        .map(([, p]) => p as Record<string, unknown>);
    await waitFor(() => mine().some((p) => p.has_more === false), 'the end push');
    expect(mine().at(-1)).toEqual(resp(victim, { async: true }));
    const count = mine().length;
    // Anything more sent for it would arrive before the reply to a later heartbeat.
    await heartbeatRoundTrip(s);
    expect(mine()).toHaveLength(count);
    expect(probe.stopped.has(other!)).toBe(false);
    // Cancelling it again: no longer running.
    expect(await replyOf(channel.push(CANCEL, { request_id: victim }))).toEqual({
      status: 'error',
      response: 'Unknown request',
    });
    expect(await replyOf(channel.push(CANCEL, {}))).toEqual({
      status: 'error',
      response: 'Invalid request: Missing required fields: request_id',
    });
  });

  it('leaving the channel: every stream of it stops at once; the leave is acknowledged', async () => {
    const s = await socket();
    const { channel, log } = await joinedChannel(s, 'gen_api:leave');
    const { channel: keep, log: keepLog } = await joinedChannel(s, 'gen_api:stays');
    const ids = await streams(channel, log, 3);
    const [kept] = await streams(keep, keepLog, 1);
    const t0 = performance.now();
    const left = replyOf(channel.leave());
    for (const id of ids) expect(await stoppedAfter(id, t0), id).toBeLessThan(CANCEL_WITHIN_MS);
    expect((await left).status).toBe('ok');
    // The same socket's other channel keeps its stream: three more chunks after the leave.
    const keptSoFar = keepLog.length;
    await waitFor(() => keepLog.length >= keptSoFar + 3, 'three more chunks on the other channel');
    expect(probe.stopped.has(kept!)).toBe(false);
    expect(await replyOf(keep.push(CANCEL, { request_id: kept }))).toEqual({
      status: 'ok',
      response: { cancelled: true },
    });
  });

  it('disconnecting the socket: every stream of it stops at once', async () => {
    const s = await socket();
    const { channel, log } = await joinedChannel(s, 'gen_api:bye');
    const ids = await streams(channel, log, 3);
    const t0 = performance.now();
    s.disconnect();
    for (const id of ids) expect(await stoppedAfter(id, t0), id).toBeLessThan(CANCEL_WITHIN_MS);
    await until(
      () => app.genApi.health().executor.streams === 0,
      'the gateway to drop the streams',
    );
  });
});

describe('a worker process killed mid-request (phoenix client)', () => {
  let proc: WorkerProcess | null = null;
  afterEach(async () => {
    await proc?.kill();
    proc = null;
  });

  it('the client gets an error push and the ok reply, never silence', async () => {
    // slow's timeout 10 s: "never silence" must not come from the timeout.
    const timeoutMs = 10_000;
    proc = await startWorkerProcess(nats.url, 'slowsvc', 'K', {
      WORKER_TIMEOUT: String(timeoutMs),
    });
    await until(
      () =>
        app.genApi.registry.resolve('slowsvc', 'slow', null).ok &&
        app.genApi.nats!.discovery.instances('slowsvc').length === 1,
      'the worker process',
    );
    const { channel, log } = await joinedChannel(await socket(), 'gen_api:kill');
    const push = channel.push(EVENT, {
      request_id: 'k1',
      service: 'slowsvc',
      request_type: 'slow',
      args: { ms: 3_000 },
    });
    for (const status of ['ok', 'error', 'timeout'])
      push.receive(status, (response) => log.push([`push ${status}`, response]));
    await until(() => proc!.calls('slow').includes('k1'), 'the handler to start');
    const t0 = performance.now();
    await proc.kill();
    await waitFor(() => log.length >= 2, 'the error push and the reply', timeoutMs + 5_000);
    const waited = performance.now() - t0;
    expect(log).toHaveLength(2);
    const [[kind, pushed], reply] = log as [Entry, Entry];
    expect(kind).toBe('on');
    expect(pushed).toMatchObject({ request_id: 'k1', success: false, result: null });
    expect(['Internal Server Error', 'Service temporarily unavailable']).toContain(
      (pushed as { error: string }).error,
    );
    expect(reply).toEqual(['push ok', 'slow']);
    // Discovery loses the instance (harness TTL 1 s) well before the 10 s timeout.
    expect(waited).toBeLessThan(timeoutMs / 2);
  }, 30_000);
});

describe('error strings through the phoenix client', () => {
  let channel: Channel;
  let log: Entry[];
  let shared: Socket;
  beforeAll(async () => {
    shared = await phoenixSocket(app.port, { user_id: 'u1', device_id: 'd1', roles: ['member'] });
    ({ channel, log } = await joinedChannel(shared, 'gen_api:errors'));
  });
  afterAll(() => shared?.disconnect());
  const call = (payload: object, count = 2) => exchange(channel, log, EVENT, payload, count);
  const err = (id: string, error: string, canRetry = false) => [
    'on',
    resp(id, { success: false, error, can_retry: canRetry }),
  ];

  it('unsupported function (no such request type, no such version): error push, push ok', async () => {
    expect(
      await call({ request_id: 'e1', service: 'guard', request_type: 'nope', args: {} }),
    ).toEqual([err('e1', 'unsupported function: nope version latest'), ['push ok', 'nope']]);
    expect(
      await call({
        request_id: 'e2',
        service: 'guard',
        request_type: 'echo',
        args: { message: 'x' },
        version: '9.0.0',
      }),
    ).toEqual([err('e2', 'unsupported function: echo version 9.0.0'), ['push ok', 'echo']]);
    expect(
      await call({ request_id: 'e3', service: 'nosvc', request_type: 'echo', args: {} }),
    ).toEqual([err('e3', 'unsupported function: echo version latest'), ['push ok', 'echo']]);
  });

  it('a disabled version asked for explicitly: disabled function; the latest enabled one otherwise', async () => {
    expect(
      await call({
        request_id: 'e4',
        service: 'guard',
        request_type: 'old',
        args: {},
        version: '1.0.0',
      }),
    ).toEqual([err('e4', 'disabled function: old version 1.0.0'), ['push ok', 'old']]);
    expect(
      await call({ request_id: 'e5', service: 'guard', request_type: 'old', args: {} }),
    ).toEqual([
      ['on', resp('e5', { result: 'v2' })],
      ['push ok', 'old'],
    ]);
  });

  it('invalid arguments: Request processing failed, and the argument message as the error reply', async () => {
    const cases: [object, string][] = [
      [{ message: 'hi', extra: 1 }, 'extra arguments for "echo", extra: ["extra"]'],
      [{}, 'missing or nil argument "message" in "echo"'],
      [{ message: 5 }, 'invalid argument type for "message", expected :string, got 5'],
      [
        { message: 'hi', count: 'three' },
        'invalid argument type for "count", expected :num, got "three"',
      ],
      [{ message: 'x'.repeat(3_001) }, 'invalid argument size for "message", max 3000 bytes'],
    ];
    for (const [i, [args, message]] of cases.entries()) {
      const id = `a${i}`;
      expect(
        await call({ request_id: id, service: 'guard', request_type: 'echo', args }),
        message,
      ).toEqual([err(id, 'Request processing failed'), ['push error', message]]);
    }
    expect(
      await call({
        request_id: 'a-ok',
        service: 'guard',
        request_type: 'echo',
        args: { message: 'hi', count: null },
      }),
    ).toEqual([
      ['on', resp('a-ok', { result: { message: 'hi', count: null } })],
      ['push ok', 'echo'],
    ]);
  });

  it("permission denied by role and by the worker's own check: Permission denied, push ok", async () => {
    expect(
      await call({
        request_id: 'p1',
        service: 'guard',
        request_type: 'admin_only',
        args: {},
        user_roles: ['admin'],
      }),
    ).toEqual([err('p1', 'Permission denied'), ['push ok', 'admin_only']]);
    expect(
      await call({
        request_id: 'p2',
        service: 'guard',
        request_type: 'own_only',
        args: { owner: 'someone-else' },
      }),
    ).toEqual([err('p2', 'Permission denied'), ['push ok', 'own_only']]);
    expect(
      await call({
        request_id: 'p3',
        service: 'guard',
        request_type: 'own_only',
        args: { owner: 'u1' },
      }),
    ).toEqual([
      ['on', resp('p3', { result: { owner: 'u1' } })],
      ['push ok', 'own_only'],
    ]);
  });

  it('an admin socket passes the role check', async () => {
    const s = await socket({ user_id: 'root', roles: ['admin'] });
    const admin = await joinedChannel(s, 'gen_api:admin');
    expect(
      await exchange(
        admin.channel,
        admin.log,
        EVENT,
        { request_id: 'p4', service: 'guard', request_type: 'admin_only', args: {} },
        2,
      ),
    ).toEqual([
      ['on', resp('p4', { result: 'secret' })],
      ['push ok', 'admin_only'],
    ]);
  });

  it('requests that do not decode: Invalid request: <message>, push error <message>', async () => {
    expect(await call({ request_id: 'd1', args: {} })).toEqual([
      err('d1', 'Invalid request: Missing required fields: request_type, service'),
      ['push error', 'Missing required fields: request_type, service'],
    ]);
    expect(
      await call({ request_id: 'd2', service: 'guard', request_type: 'echo', args: [1] }),
    ).toEqual([
      err('d2', 'Invalid request: Malformed request payload: args must be an object'),
      ['push error', 'Malformed request payload: args must be an object'],
    ]);
    expect(await call({ service: 'guard', request_type: 'echo', args: {} })).toEqual([
      err('unknown', 'Invalid request: Missing required fields: request_id'),
      ['push error', 'Missing required fields: request_id'],
    ]);
  });
});

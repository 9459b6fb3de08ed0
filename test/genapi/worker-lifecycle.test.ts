/**
 * The worker SDK's lifecycle on a real nats-server (issue 14): `serve()`'s handle tells its state
 * (starting → serving → reconnecting → serving → draining → stopped) and `closed` settles — it
 * resolves after a drain that was asked for and rejects with WorkerClosedError on any other end,
 * so a worker never ends quietly. While NATS is away the loss is logged once and the retries at a
 * bounded rate; when it is back the config is pushed to the gateways again. `drain()` refuses new
 * calls with 503 while the running one finishes. And the Prometheus metrics
 * (`gen_gateway_worker_*`), scraped over their HTTP listener, move with the calls.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { defineService, fn, ServiceError } from '../../src/worker/define.js';
import { serve, SERVE_DEFAULTS } from '../../src/worker/nats.js';
import { WorkerClosedError, type WorkerStateChange } from '../../src/worker/lifecycle.js';
import { Subjects } from '../../src/nats/subjects.js';
import { H } from '../../src/nats/headers.js';
import { NatsServer } from '../support/nats.js';
import { deferred, until } from '../support/wait.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function server(): Promise<NatsServer> {
  const s = await NatsServer.start();
  cleanups.push(() => s.dispose());
  return s;
}

async function client(url: string, reconnect = true): Promise<NatsConnection> {
  const nc = await connect({
    servers: url,
    maxReconnectAttempts: reconnect ? -1 : 0,
    reconnectTimeWait: 50,
  });
  cleanups.push(() => nc.close());
  return nc;
}

/** A pino logger whose lines land in `lines`. */
function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

let release = deferred();
const svc = defineService({
  name: 'life',
  version: '1.0.0',
  functions: {
    echo: fn({ handler: (args) => args }),
    guarded: fn({ authorize: (args) => args.ok === true, handler: () => 'in' }),
    hold: fn({ timeout: 20_000, handler: async () => (await release.promise, 'released') }),
    bad: fn({
      handler: () => {
        throw new ServiceError('nope', 422);
      },
    }),
    // Writes until the stream closes: with credit 1 it waits after its first chunk.
    endless: fn({
      response: 'stream',
      async handler(_args, ctx) {
        for (let i = 1; ; i++) await ctx.stream.write(i);
      },
    }),
  },
});
const subjects = new Subjects('genapi');

/** A raw call as a gateway makes it: the reply, or the service error code. */
async function callRaw(nc: NatsConnection, requestType: string, args: object = {}) {
  const msg = await nc.request(subjects.fn('life', requestType, null), JSON.stringify(args), {
    timeout: 10_000,
  });
  const code = msg.headers?.get('Nats-Service-Error-Code');
  return code ? { code: Number(code) } : { result: msg.json<unknown>() };
}

/** A gateway's answer to config pushes of `life`: each push is kept and acknowledged. */
function acknowledgePushes(gateway: NatsConnection): unknown[] {
  const pushes: unknown[] = [];
  gateway.subscribe(subjects.configPush('life'), {
    callback: (_err, msg) => {
      pushes.push(msg.json());
      msg.respond(
        JSON.stringify({ gateway: 'g1', status: 'unchanged', accepted: [], rejected: [] }),
      );
    },
  });
  return pushes;
}

async function served(nc: NatsConnection, options: Partial<Parameters<typeof serve>[1]> = {}) {
  const changes: WorkerStateChange[] = [];
  const running = await serve(svc, {
    nats: nc,
    pushTimeoutMs: 200,
    onStateChange: (change) => changes.push(change),
    ...options,
  });
  cleanups.push(() => running.stop());
  return { running, changes };
}

describe('serve(): state and closed', () => {
  it('starts, serves, and drains on request: closed resolves, state stopped', async () => {
    const s = await server();
    const nc = await client(s.url);
    const { running, changes } = await served(nc);
    expect(running.state).toBe('serving');
    expect(changes.map((c) => c.state)).toEqual(['serving']);
    expect(changes[0]!.previous).toBe('starting');
    await running.drain();
    expect(running.state).toBe('stopped');
    await expect(running.closed).resolves.toBeUndefined();
    expect(changes.map((c) => c.state)).toEqual(['serving', 'draining', 'stopped']);
  });

  it('a connection closed without a drain: closed rejects with WorkerClosedError, state stopped, nothing unhandled', async () => {
    const s = await server();
    const nc = await client(s.url);
    const { running, changes } = await served(nc);
    await nc.close();
    const err = await running.closed.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkerClosedError);
    expect((err as WorkerClosedError).code).toBe('ERR_WORKER_CLOSED');
    expect((err as Error).message).toContain('the NATS connection closed');
    expect(running.state).toBe('stopped');
    const last = changes.at(-1)!;
    expect(last.state).toBe('stopped');
    expect(last.error).toBe(err);
    // drain() after such an end resolves (nothing left to drain).
    await running.drain();
  });

  it('reconnecting while NATS is away (retries logged at a bounded rate), serving again when it is back, with the config pushed again', async () => {
    const s = await server();
    const nc = await client(s.url);
    const gateway = await client(s.url);
    const { logger, lines } = capture();
    const { running, changes } = await served(nc, { logger, reconnectLogIntervalMs: 400 });
    const pushes = acknowledgePushes(gateway);

    await s.stop();
    await until(() => running.state === 'reconnecting', 'state reconnecting');
    const lostAt = Date.now();
    // Wait for many attempts (50 ms apart): the log must not follow them one by one.
    await until(
      () => lines.filter((l) => l.msg === 'still reconnecting to NATS').length >= 2,
      'two "still reconnecting" lines',
    );
    const downFor = Date.now() - lostAt;
    const still = lines.filter((l) => l.msg === 'still reconnecting to NATS');
    expect(still.length).toBeLessThanOrEqual(Math.ceil(downFor / 400) + 1);
    expect(Number(still.at(-1)!.attempts)).toBeGreaterThan(still.length);
    expect(lines.filter((l) => l.msg === 'NATS connection lost; reconnecting')).toHaveLength(1);

    await s.restart();
    await until(() => running.state === 'serving', 'state serving again');
    await until(() => pushes.length >= 1, 'the config pushed again after the reconnect');
    expect(pushes[0]).toMatchObject({ service: 'life', instance_id: running.id });
    expect(lines.some((l) => l.msg === 'NATS connection back')).toBe(true);
    expect(changes.map((c) => c.state)).toEqual(['serving', 'reconnecting', 'serving']);
    expect(await callRaw(gateway, 'echo', { a: 1 })).toEqual({ result: { a: 1 } });
  });

  it('after a reconnect, a push no gateway acknowledged is tried again until one listens', async () => {
    const s = await server();
    const nc = await client(s.url);
    const { logger, lines } = capture();
    const { running } = await served(nc, { logger });
    await s.stop();
    await until(() => running.state === 'reconnecting', 'state reconnecting');
    await s.restart();
    await until(() => running.state === 'serving', 'state serving again');
    // No gateway is listening yet: the first pushes go unanswered. One comes later.
    await until(
      () => lines.filter((l) => l.msg === 'config push not acknowledged').length >= 2,
      'two unanswered pushes',
    );
    const gateway = await client(s.url);
    const pushes = acknowledgePushes(gateway);
    await gateway.flush();
    await until(() => pushes.length >= 1, 'the push tried again');
    expect(pushes[0]).toMatchObject({ service: 'life', instance_id: running.id });
    await until(
      () => lines.some((l) => l.msg === 'config pushed again after reconnect'),
      'the push logged once acknowledged',
    );
    expect(lines.find((l) => l.msg === 'config pushed again after reconnect')).toMatchObject({
      gateways: 1,
    });
  });
});

describe('serve(): drain', () => {
  it('refuses new calls with 503 while the running one finishes; then leaves NATS', async () => {
    release = deferred();
    const s = await server();
    const nc = await client(s.url);
    const caller = await client(s.url);
    const { running } = await served(nc);
    const inFlight = callRaw(caller, 'hold');
    await until(() => running.inflight === 1, 'the hold call running');
    const drained = running.drain();
    expect(running.state).toBe('draining');
    expect(await callRaw(caller, 'echo', { b: 2 })).toEqual({ code: 503 });
    release.resolve();
    expect(await inFlight).toEqual({ result: 'released' });
    await drained;
    expect(running.state).toBe('stopped');
    // Gone from NATS: no responders on its subjects.
    await expect(callRaw(caller, 'echo')).rejects.toThrow(/no responders/i);
  });

  it('a stream still running at drainTimeoutMs ends with an error event the gateway sees', async () => {
    const s = await server();
    const nc = await client(s.url);
    const gateway = await client(s.url);
    const { running } = await served(nc, { drainTimeoutMs: 100 });
    const events: string[] = [];
    const data = 'genapi.gw.test.s.st1';
    const done = deferred();
    gateway.subscribe(data, {
      callback: (_err, msg) => {
        events.push(msg.headers?.get(H.streamEvent) ?? '?');
        if (msg.headers?.get(H.streamEvent) === 'error') done.resolve();
      },
    });
    await gateway.flush();
    const h = (await import('@nats-io/transport-node')).headers();
    h.set(H.streamSubject, data);
    h.set(H.streamId, 'st1');
    // Credit 1: the handler writes its first chunk, then waits for credit that never comes.
    h.set(H.streamCredit, '1');
    await gateway.request(subjects.fn('life', 'endless', null), '{}', {
      headers: h,
      timeout: 5_000,
    });
    await until(() => events.length >= 1, 'the first chunk');
    await running.drain();
    await done.promise;
    expect(events).toEqual(['chunk', 'error']);
  });
});

describe('serve(): metrics', () => {
  it('serves gen_gateway_worker_* over HTTP; values move with calls, refusals, streams and the connection', async () => {
    const s = await server();
    const nc = await client(s.url);
    const caller = await client(s.url);
    const { running } = await served(nc, { metrics: { port: 0 } });
    expect(running.metrics?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scrape = async (): Promise<Map<string, number>> => {
      const res = await fetch(running.metrics!.url!);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const values = new Map<string, number>();
      for (const line of (await res.text()).split('\n')) {
        if (line.startsWith('#') || line.trim() === '') continue;
        const at = line.lastIndexOf(' ');
        values.set(line.slice(0, at), Number(line.slice(at + 1)));
      }
      return values;
    };
    const before = await scrape();
    expect(before.get('gen_gateway_worker_nats_connected{service="life"}')).toBe(1);
    expect(before.get('gen_gateway_worker_state{service="life",state="serving"}')).toBe(1);
    expect(before.get('gen_gateway_worker_inflight{service="life"}')).toBe(0);
    expect(
      before.get(
        `gen_gateway_worker_info{service="life",version="1.0.0",instance="${running.id}"}`,
      ),
    ).toBe(1);
    expect([...before.keys()].some((k) => k.startsWith('process_cpu_seconds_total'))).toBe(true);

    for (let i = 0; i < 3; i++) await callRaw(caller, 'echo', { i });
    for (const ok of [true, false, false]) {
      const answer = await caller.request(
        subjects.perm('life', 'guarded', null),
        JSON.stringify({ ok }),
      );
      expect(answer.json()).toBe(ok);
    }
    expect(await callRaw(caller, 'bad')).toEqual({ code: 422 });
    release = deferred();
    const held = callRaw(caller, 'hold');
    await until(() => running.inflight === 1, 'the hold call running');
    const during = await scrape();
    expect(during.get('gen_gateway_worker_inflight{service="life"}')).toBe(1);
    expect(
      during.get(
        'gen_gateway_worker_calls_total{service="life",function="echo",kind="call",outcome="ok"}',
      ),
    ).toBe(3);
    expect(
      during.get(
        'gen_gateway_worker_calls_total{service="life",function="bad",kind="call",outcome="client_error"}',
      ),
    ).toBe(1);
    expect(
      during.get(
        'gen_gateway_worker_call_duration_seconds_count{service="life",function="echo",kind="call"}',
      ),
    ).toBe(3);
    expect(
      during.get(
        'gen_gateway_worker_permission_checks_total{service="life",function="guarded",result="denied"}',
      ),
    ).toBe(2);

    // Over the limit: refused, counted as such.
    const drained = running.drain();
    expect(await callRaw(caller, 'echo')).toEqual({ code: 503 });
    const draining = await scrape();
    expect(draining.get('gen_gateway_worker_state{service="life",state="draining"}')).toBe(1);
    expect(
      draining.get(
        'gen_gateway_worker_calls_total{service="life",function="echo",kind="call",outcome="refused"}',
      ),
    ).toBe(1);
    release.resolve();
    await held;
    await drained;
    // The listener closes with the service.
    await expect(fetch(running.metrics!.url!)).rejects.toThrow();
    expect(SERVE_DEFAULTS.reconnectLogIntervalMs).toBe(5_000);
  });

  it('with a registry of yours and no port: metrics registered there, no listener, no process metrics', async () => {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const s = await server();
    const nc = await client(s.url);
    const caller = await client(s.url);
    const { running } = await served(nc, { metrics: { registry } });
    expect(running.metrics).toEqual({ registry, url: null });
    await callRaw(caller, 'echo');
    const text = await registry.metrics();
    expect(text).toContain(
      'gen_gateway_worker_calls_total{service="life",function="echo",kind="call",outcome="ok"} 1',
    );
    expect(text).not.toContain('process_cpu_seconds_total');
  });

  it('a port in use: serve rejects with a clear error and leaves nothing behind', async () => {
    const s = await server();
    const nc = await client(s.url);
    const first = await served(nc, { metrics: { port: 0 } });
    const port = Number(new URL(first.running.metrics!.url!).port);
    await expect(serve(svc, { nats: nc, metrics: { port } })).rejects.toThrow(
      new RegExp(`cannot serve worker metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
    );
  });
});

/**
 * Authentication by a worker (protocol/nats.md §11) on a real nats-server: the gateway's `worker`
 * strategy and join check against an auth worker served by the SDK (`serveAuth`), and against
 * raw NATS responders that break the contract. Fail closed, and never a hang: no responders is
 * `unavailable` at once, a silent worker is `unavailable` after `timeoutMs`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  createWorkerAuthStrategy,
  createWorkerJoinCheck,
  WORKER_AUTH_DEFAULTS,
  type AuthNatsLink,
  type WorkerJoinRequest,
} from '../../src/auth/worker.js';
import {
  isAuthFailure,
  type AuthFailure,
  type AuthRequest,
  type Identity,
} from '../../src/auth/types.js';
import { ConfigError } from '../../src/config/errors.js';
import { Subjects } from '../../src/nats/subjects.js';
import {
  defineAuthService,
  serveAuth,
  SERVE_AUTH_DEFAULTS,
  type AuthConnectContext,
  type AuthJoinContext,
  type RunningAuthService,
} from '../../src/worker/auth.js';
import { NatsServer } from '../support/nats.js';
import { deferred, within } from '../support/wait.js';

let nats: NatsServer;
let gatewayNc: NatsConnection;
let workerNc: NatsConnection;
let link: AuthNatsLink;
const started: RunningAuthService[] = [];
const raw: Subscription[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  gatewayNc = await connect({ servers: nats.url });
  workerNc = await connect({ servers: nats.url });
  link = { nc: gatewayNc, subjects: new Subjects() };
});

afterEach(async () => {
  for (const service of started.splice(0)) await service.stop();
  for (const sub of raw.splice(0)) sub.unsubscribe();
});

afterAll(async () => {
  await gatewayNc?.close();
  await workerNc?.close();
  await nats?.dispose();
});

const request = (over: Partial<AuthRequest> = {}): AuthRequest => ({
  token: 'good-token',
  params: { vsn: '2.0.0', room: 'lobby' },
  headers: {
    'user-agent': 'test',
    'x-tenant': 'acme',
    cookie: 'session=secret',
    authorization: 'Bearer other',
    'x-forwarded-for': ['10.0.0.1', '10.0.0.2'],
  },
  peer: { address: '127.0.0.1', port: 51000 },
  transport: 'websocket',
  ...over,
});

async function serveWorker(
  name: string,
  handlers: {
    authenticate?: Parameters<typeof defineAuthService>[0]['authenticate'];
    authorizeJoin?: Parameters<typeof defineAuthService>[0]['authorizeJoin'];
  },
  options: { timeoutMs?: number; maxConcurrent?: number } = {},
): Promise<RunningAuthService> {
  const service = await serveAuth(
    defineAuthService({
      name,
      version: '1.0.0',
      authenticate: handlers.authenticate ?? (() => null),
      ...(handlers.authorizeJoin ? { authorizeJoin: handlers.authorizeJoin } : {}),
    }),
    { nats: workerNc, ...options },
  );
  started.push(service);
  await workerNc.flush();
  return service;
}

/** A raw responder on `subject` (queue group genapi) answering `body` bytes as given. */
async function rawResponder(
  subject: string,
  answer: (data: Uint8Array) => { body: string; headers?: Record<string, string> },
): Promise<void> {
  const { headers } = await import('@nats-io/transport-node');
  raw.push(
    workerNc.subscribe(subject, {
      queue: 'genapi',
      callback: (_err, msg) => {
        const { body, headers: extra } = answer(msg.data);
        const h = headers();
        for (const [k, v] of Object.entries(extra ?? {})) h.set(k, v);
        msg.respond(new TextEncoder().encode(body), { headers: h });
      },
    }),
  );
  await workerNc.flush();
}

function failure(result: Identity | AuthFailure): AuthFailure {
  if (!isAuthFailure(result)) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

describe('worker strategy: the SDK worker decides', () => {
  it('accepts with identity, roles, assigns and expiry; sees token, params, headers, peer, transport', async () => {
    const seen = deferred<AuthConnectContext>();
    const expiresAt = Date.now() + 60_000;
    await serveWorker('auth-accept', {
      authenticate: (ctx) => {
        seen.resolve(ctx);
        return ctx.token === 'good-token'
          ? {
              userId: 42,
              deviceId: 'phone',
              roles: ['member', 'admin'],
              assigns: { tenant: ctx.headers['x-tenant'], plan: 'pro' },
              expiresAt: new Date(expiresAt),
            }
          : null;
      },
    });
    const strategy = createWorkerAuthStrategy({ service: 'auth-accept' }, () => link);
    expect(strategy.name).toBe('worker');
    const identity = await strategy.authenticate(request());
    expect(identity).toEqual({
      userId: '42',
      deviceId: 'phone',
      roles: ['member', 'admin'],
      assigns: { tenant: 'acme', plan: 'pro' },
      expiresAt,
    });
    const ctx = await within(seen.promise, 'the worker to be asked');
    expect(ctx.token).toBe('good-token');
    expect(ctx.params).toEqual({ vsn: '2.0.0', room: 'lobby' });
    // cookie and authorization are withheld by default; repeated headers are joined.
    expect(ctx.headers).toEqual({
      'user-agent': 'test',
      'x-tenant': 'acme',
      'x-forwarded-for': '10.0.0.1, 10.0.0.2',
    });
    expect(ctx.peer).toEqual({ address: '127.0.0.1', port: 51000 });
    expect(ctx.transport).toBe('websocket');
    // The gateway's wait travels with the question: the worker's deadline is within it.
    expect(ctx.deadline).toBeGreaterThan(Date.now() - 1);
    expect(ctx.deadline).toBeLessThanOrEqual(Date.now() + WORKER_AUTH_DEFAULTS.timeoutMs);
    expect(ctx.signal.aborted).toBe(false);
  });

  it('a minimal identity takes the defaults; forwardHeaders picks exactly the headers named', async () => {
    const seen = deferred<AuthConnectContext>();
    await serveWorker('auth-minimal', {
      authenticate: (ctx) => {
        seen.resolve(ctx);
        return { userId: 'alice' };
      },
    });
    const strategy = createWorkerAuthStrategy(
      { service: 'auth-minimal', forwardHeaders: ['Cookie', 'X-Tenant'] },
      () => link,
    );
    expect(await strategy.authenticate(request({ token: null, transport: 'longpoll' }))).toEqual({
      userId: 'alice',
      deviceId: null,
      roles: [],
      assigns: {},
      expiresAt: null,
    });
    const ctx = await seen.promise;
    expect(ctx.headers).toEqual({ cookie: 'session=secret', 'x-tenant': 'acme' });
    expect(ctx.token).toBeNull();
    expect(ctx.transport).toBe('longpoll');
  });

  it('refusals: null, a throw and an invalid identity are `invalid`, with the reason for the log', async () => {
    await serveWorker('auth-refuse', {
      authenticate: (ctx) => {
        if (ctx.token === 'throw') throw new Error('token revoked');
        if (ctx.token === 'empty') return { userId: '' };
        return null;
      },
    });
    const strategy = createWorkerAuthStrategy({ service: 'auth-refuse' }, () => link);
    const refused = failure(await strategy.authenticate(request({ token: 'nope' })));
    expect(refused.reason).toBe('invalid');
    expect(refused.message).toBe('auth worker "auth-refuse" refused: refused');
    const thrown = failure(await strategy.authenticate(request({ token: 'throw' })));
    expect(thrown.reason).toBe('invalid');
    expect(thrown.message).toContain('token revoked');
    const empty = failure(await strategy.authenticate(request({ token: 'empty' })));
    expect(empty.reason).toBe('invalid');
    expect(empty.message).toContain('authenticate returned an invalid identity');
  });

  it('an expiry already past is `expired`', async () => {
    await serveWorker('auth-past', {
      authenticate: () => ({ userId: 'u', expiresAt: Date.now() - 1000 }),
    });
    const strategy = createWorkerAuthStrategy({ service: 'auth-past' }, () => link);
    expect(failure(await strategy.authenticate(request())).reason).toBe('expired');
  });
});

describe('worker strategy: fail closed, never hang', () => {
  it('no worker: `unavailable` at once (no responders), well before timeoutMs', async () => {
    const strategy = createWorkerAuthStrategy(
      { service: 'auth-nobody', timeoutMs: 10_000 },
      () => link,
    );
    const t0 = performance.now();
    const result = failure(await within(strategy.authenticate(request()), 'a refusal', 10_000));
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(result.reason).toBe('unavailable');
    expect(result.message).toBe(
      'auth worker "auth-nobody" is not running (no responders on genapi.auth.auth-nobody.connect)',
    );
  });

  it('a worker that stopped: `unavailable` (no responders)', async () => {
    const worker = await serveWorker('auth-stops', { authenticate: () => ({ userId: 'u' }) });
    const strategy = createWorkerAuthStrategy({ service: 'auth-stops' }, () => link);
    expect(isAuthFailure(await strategy.authenticate(request()))).toBe(false);
    await worker.stop();
    await workerNc.flush();
    const result = failure(await strategy.authenticate(request()));
    expect(result.reason).toBe('unavailable');
    expect(result.message).toContain('no responders');
  });

  it('no NATS link, a link down, a closed connection: `unavailable` without asking', async () => {
    const none = createWorkerAuthStrategy({ service: 'auth-x' }, () => null);
    const down = createWorkerAuthStrategy({ service: 'auth-x' }, () => ({
      ...link,
      connected: () => false,
    }));
    const closedNc = await connect({ servers: nats.url });
    await closedNc.close();
    const closed = createWorkerAuthStrategy({ service: 'auth-x' }, () => ({
      nc: closedNc,
      subjects: new Subjects(),
    }));
    for (const strategy of [none, down, closed]) {
      const result = failure(await strategy.authenticate(request()));
      expect(result.reason).toBe('unavailable');
      expect(result.message).toContain('not connected to NATS');
    }
  });

  it('a worker slower than timeoutMs: `unavailable` after timeoutMs, and its signal aborts', async () => {
    const timeoutMs = 300;
    const aborted = deferred<number>();
    await serveWorker('auth-slow', {
      authenticate: (ctx) =>
        new Promise<null>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.resolve(ctx.deadline);
            resolve(null);
          });
        }),
    });
    const strategy = createWorkerAuthStrategy({ service: 'auth-slow', timeoutMs }, () => link);
    const t0 = performance.now();
    const result = failure(await within(strategy.authenticate(request()), 'a refusal', 5_000));
    const elapsed = performance.now() - t0;
    expect(result.reason).toBe('unavailable');
    expect(result.message).toBe(
      'auth worker "auth-slow" did not answer on genapi.auth.auth-slow.connect within 300 ms',
    );
    // Bounded: the request timer, plus scheduling slack on a loaded machine.
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 5);
    expect(elapsed).toBeLessThan(timeoutMs + 1_500);
    // The worker took the gateway's wait (Genapi-Timeout) as its deadline and stopped.
    await within(aborted.promise, "the worker's signal to abort", 5_000);
  });

  it('answers out of contract are `unavailable`', async () => {
    const answers: Record<string, { body: string; headers?: Record<string, string> }> = {
      'not-json': { body: 'hello' },
      array: { body: '[]' },
      'ok-not-boolean': { body: '{"ok":"yes","user_id":"u"}' },
      'no-user': { body: '{"ok":true}' },
      'empty-user': { body: '{"ok":true,"user_id":""}' },
      'float-user': { body: '{"ok":true,"user_id":1.5}' },
      'bad-device': { body: '{"ok":true,"user_id":"u","device_id":{}}' },
      'bad-roles': { body: '{"ok":true,"user_id":"u","roles":[1]}' },
      'bad-assigns': { body: '{"ok":true,"user_id":"u","assigns":[]}' },
      'bad-expiry': { body: '{"ok":true,"user_id":"u","expires_at":"soon"}' },
      oversized: {
        body: JSON.stringify({ ok: true, user_id: 'u', assigns: { pad: 'x'.repeat(2_000) } }),
      },
      'service-error': {
        body: '',
        headers: { 'Nats-Service-Error': 'overloaded', 'Nats-Service-Error-Code': '503' },
      },
    };
    await rawResponder('genapi.auth.auth-raw.connect', (data) => {
      const token = (JSON.parse(new TextDecoder().decode(data)) as { token: string }).token;
      return answers[token]!;
    });
    const strategy = createWorkerAuthStrategy(
      { service: 'auth-raw', maxReplyBytes: 1_024 },
      () => link,
    );
    for (const [token, answer] of Object.entries(answers)) {
      const result = failure(await strategy.authenticate(request({ token })));
      expect(result.reason, token).toBe('unavailable');
      expect(result.message, token).toMatch(/^auth worker "auth-raw" /);
      if (token === 'oversized') expect(result.message).toContain('over maxReplyBytes (1024)');
      if (token === 'service-error') expect(result.message).toContain('(503): overloaded');
      void answer;
    }
  });

  it('a raw worker following the contract is accepted (protocol/nats.md §11 without the SDK)', async () => {
    await rawResponder('genapi.auth.auth-raw-ok.connect', () => ({
      body: '{"ok":true,"user_id":7,"device_id":null,"roles":["r"],"assigns":{"a":1},"expires_at":null}',
    }));
    const strategy = createWorkerAuthStrategy({ service: 'auth-raw-ok' }, () => link);
    expect(await strategy.authenticate(request())).toEqual({
      userId: '7',
      deviceId: null,
      roles: ['r'],
      assigns: { a: 1 },
      expiresAt: null,
    });
  });
});

describe('worker SDK bounds', () => {
  it('a decision beyond the SDK timeoutMs is answered as a refusal (`invalid`)', async () => {
    await serveWorker(
      'auth-sdk-deadline',
      { authenticate: () => new Promise<null>(() => {}) },
      { timeoutMs: 100 },
    );
    const strategy = createWorkerAuthStrategy(
      { service: 'auth-sdk-deadline', timeoutMs: 5_000 },
      () => link,
    );
    const result = failure(await within(strategy.authenticate(request()), 'a refusal', 5_000));
    expect(result.reason).toBe('invalid');
    expect(result.message).toContain('connect decision exceeded its deadline (100 ms)');
  });

  it('over maxConcurrent: a 503 error reply, which the gateway counts as `unavailable`', async () => {
    const release = deferred();
    const first = deferred();
    const worker = await serveWorker(
      'auth-busy',
      {
        authenticate: async () => {
          first.resolve();
          await release.promise;
          return { userId: 'u' };
        },
      },
      { maxConcurrent: 1 },
    );
    const strategy = createWorkerAuthStrategy({ service: 'auth-busy' }, () => link);
    const pending = strategy.authenticate(request());
    await within(first.promise, 'the first question to arrive');
    expect(worker.inflight).toBe(1);
    const busy = failure(await strategy.authenticate(request()));
    expect(busy.reason).toBe('unavailable');
    expect(busy.message).toContain('overloaded: 1 questions in flight (maxConcurrent 1)');
    release.resolve();
    expect(isAuthFailure(await pending)).toBe(false);
    expect(worker.inflight).toBe(0);
  });

  it('is a NATS micro service that gateways never take for a gen_api service', async () => {
    const worker = await serveWorker('auth-micro', { authenticate: () => null });
    const info = JSON.parse(
      (await gatewayNc.request(`$SRV.INFO.auth-micro.${worker.id}`)).string(),
    ) as {
      name: string;
      metadata: Record<string, string>;
      endpoints: { name: string; subject: string; queue_group: string }[];
    };
    expect(info.name).toBe('auth-micro');
    expect(info.metadata).toMatchObject({ genapi_auth_protocol: '1', genapi_prefix: 'genapi' });
    expect(info.metadata.genapi_protocol).toBeUndefined();
    expect(info.endpoints.map((e) => [e.name, e.subject, e.queue_group])).toEqual([
      ['connect', 'genapi.auth.auth-micro.connect', 'genapi'],
    ]);
  });

  it('defaults and option checks', () => {
    expect(SERVE_AUTH_DEFAULTS).toEqual({ timeoutMs: 5_000, maxConcurrent: 1_000 });
    expect(() => defineAuthService({ name: 'a.b', authenticate: () => null })).toThrow(
      /must be a NATS subject token/,
    );
    expect(() =>
      defineAuthService({ name: 'ok', authenticate: 'no' as unknown as () => null }),
    ).toThrow(/needs an authenticate function/);
  });
});

describe('worker join check', () => {
  const join = (over: Partial<WorkerJoinRequest> = {}): WorkerJoinRequest => ({
    topic: 'room:42',
    payload: { hello: 1 },
    userId: '42',
    deviceId: 'phone',
    roles: ['member'],
    assigns: { plan: 'pro' },
    ...over,
  });

  it('allows and refuses as the worker decides; the worker sees the topic, payload and identity', async () => {
    const seen: AuthJoinContext[] = [];
    await serveWorker('auth-join', {
      authorizeJoin: (ctx) => {
        seen.push(ctx);
        if (ctx.topic === 'room:boom') throw new Error('join rules unavailable');
        return ctx.topic === `room:${ctx.userId}`;
      },
    });
    const check = createWorkerJoinCheck({ service: 'auth-join' }, () => link);
    expect(await check(join())).toEqual({ ok: true });
    expect(seen[0]).toMatchObject({
      topic: 'room:42',
      payload: { hello: 1 },
      userId: '42',
      deviceId: 'phone',
      roles: ['member'],
      assigns: { plan: 'pro' },
    });
    expect(await check(join({ topic: 'room:7' }))).toEqual({
      ok: false,
      reason: 'auth worker "auth-join" refused the join: denied',
      unavailable: false,
    });
    const thrown = await check(join({ topic: 'room:boom' }));
    expect(thrown).toMatchObject({ ok: false, unavailable: false });
    expect(thrown.ok === false && thrown.reason).toContain('join rules unavailable');
    // A socket without identity is asked about too (null ids).
    expect(await check(join({ userId: null, deviceId: null, roles: [], assigns: {} }))).toEqual(
      expect.objectContaining({ ok: false, unavailable: false }),
    );
  });

  it('down, no join check served, or out of contract: refused as unavailable', async () => {
    const down = createWorkerJoinCheck({ service: 'auth-join-nobody' }, () => link);
    const t0 = performance.now();
    const result = await down(join());
    expect(performance.now() - t0).toBeLessThan(WORKER_AUTH_DEFAULTS.timeoutMs);
    expect(result).toEqual({
      ok: false,
      reason:
        'auth worker "auth-join-nobody" is not running (no responders on genapi.auth.auth-join-nobody.join)',
      unavailable: true,
    });

    await serveWorker('auth-no-join', { authenticate: () => ({ userId: 'u' }) });
    const noJoin = createWorkerJoinCheck({ service: 'auth-no-join' }, () => link);
    expect(await noJoin(join())).toMatchObject({ ok: false, unavailable: true });

    await rawResponder('genapi.auth.auth-join-raw.join', () => ({ body: '{"ok":1}' }));
    const bad = createWorkerJoinCheck({ service: 'auth-join-raw' }, () => link);
    expect(await bad(join())).toEqual({
      ok: false,
      reason: 'auth worker "auth-join-raw" answered out of contract: "ok" must be true or false',
      unavailable: true,
    });

    const offline = createWorkerJoinCheck({ service: 'auth-join' }, () => null);
    expect(await offline(join())).toMatchObject({ ok: false, unavailable: true });
  });

  it('a slow join check: unavailable after timeoutMs', async () => {
    await serveWorker('auth-join-slow', {
      authorizeJoin: (ctx) =>
        new Promise<boolean>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(true)),
        ),
    });
    const check = createWorkerJoinCheck({ service: 'auth-join-slow', timeoutMs: 200 }, () => link);
    const t0 = performance.now();
    const result = await within(check(join()), 'a refusal', 5_000);
    expect(performance.now() - t0).toBeLessThan(200 + 1_500);
    expect(result).toMatchObject({ ok: false, unavailable: true });
    expect(result.ok === false && result.reason).toContain('within 200 ms');
  });
});

describe('options', () => {
  it('refuses bad settings with a ConfigError naming the setting', () => {
    const cases: [unknown, string][] = [
      [null, 'auth.worker must be an object'],
      [{}, 'auth.worker.service must be a non-empty string'],
      [{ service: 'a.b' }, 'auth.worker.service must be a non-empty string'],
      [
        { service: 'auth', timeoutMs: 0 },
        'auth.worker.timeoutMs must be an integer between 1 and 60000',
      ],
      [{ service: 'auth', timeoutMs: '2000' }, 'auth.worker.timeoutMs must be an integer'],
      [
        { service: 'auth', maxReplyBytes: 10 },
        'auth.worker.maxReplyBytes must be an integer between 64 and 1048576',
      ],
      [
        { service: 'auth', forwardHeaders: 'cookie' },
        'auth.worker.forwardHeaders must be null or an array',
      ],
      [
        { service: 'auth', forwardHeaders: [''] },
        'auth.worker.forwardHeaders must be null or an array',
      ],
    ];
    for (const [options, message] of cases) {
      for (const make of [createWorkerAuthStrategy, createWorkerJoinCheck]) {
        let error: unknown;
        try {
          make(options as never, () => link);
        } catch (err) {
          error = err;
        }
        expect(error, JSON.stringify(options)).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toContain(message);
      }
    }
    expect(WORKER_AUTH_DEFAULTS).toMatchObject({
      timeoutMs: 2_000,
      maxReplyBytes: 65_536,
      forwardHeaders: null,
    });
  });
});

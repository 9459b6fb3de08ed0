/**
 * The worker SDK without NATS: definitions compile to the documented FunConfigs, names are
 * checked early, and the stream writer never runs ahead of its credit.
 */
import { describe, expect, it } from 'vitest';
import { defineService, fn, ServiceError, toFunConfig } from '../../src/worker/define.js';
import {
  CreditStream,
  StreamClosedError,
  type StreamEvent,
  type StreamIO,
} from '../../src/worker/stream.js';
import { runCall, runStream } from '../../src/worker/runtime.js';

describe('defineService', () => {
  it('maps SDK options to FunConfig fields', () => {
    const config = toFunConfig('svc', 'op', {
      args: { id: 'uuid', tags: ['list_string', 5] },
      response: 'async',
      timeout: 2500,
      version: '2.1.0',
      permission: { role: ['admin'] },
      authorize: () => true,
      chooseNode: { sticky: 'user_id', ttl_ms: 1000 },
      retry: { sameNode: 2 },
      retryOn: 'any',
      beforeExecute: 'audit',
      afterExecute: 'redact',
      hookTimeout: 300,
      argOrders: 'map',
      disabled: true,
      handler: () => null,
    });
    expect(config).toEqual({
      service: 'svc',
      request_type: 'op',
      version: '2.1.0',
      nodes: 'nats',
      response_type: 'async',
      timeout: 2500,
      arg_types: { id: 'uuid', tags: ['list_string', 5] },
      check_permission: { role: ['admin'] },
      permission_callback: true,
      retry: { same_node: 2 },
      retry_on: 'any',
      choose_node_mode: { sticky: 'user_id', ttl_ms: 1000 },
      arg_orders: 'map',
      before_execute: 'audit',
      after_execute: 'redact',
      hook_timeout: 300,
      disabled: true,
    });
    expect(toFunConfig('svc', 'plain', { handler: () => null })).toMatchObject({
      response_type: 'sync',
      timeout: 5000,
      arg_types: null,
      check_permission: false,
      permission_callback: false,
      retry: null,
      retry_on: 'transport',
    });
    expect(toFunConfig('svc', 'n', { retry: 3, handler: () => null }).retry).toBe(3);
    expect(toFunConfig('svc', 'n', { retry: { allNodes: 1 }, handler: () => null }).retry).toEqual({
      all_nodes: 1,
    });
  });

  it('reads versions from "name@version" keys and hashes the config version', () => {
    const service = defineService({
      name: 'calc',
      version: '3.0.0',
      functions: { add: fn({ handler: () => 1 }), 'add@2.0.0': fn({ handler: () => 2 }) },
    });
    expect([...service.functions.keys()]).toEqual(['add', 'add@2.0.0']);
    expect(service.functions.get('add@2.0.0')?.config.version).toBe('2.0.0');
    expect(service.configVersion).toMatch(/^[0-9a-f]{16}$/);
    const changed = defineService({
      name: 'calc',
      functions: { add: fn({ timeout: 900, handler: () => 1 }) },
    });
    expect(changed.configVersion).not.toBe(service.configVersion);
    expect(defineService({ name: 'calc', configVersion: 'v7', functions: {} }).configVersion).toBe(
      'v7',
    );
  });

  it('refuses names that cannot be subject tokens, bad versions and missing handlers', () => {
    expect(() => defineService({ name: 'my service', functions: {} })).toThrow(/subject token/);
    expect(() => defineService({ name: 'a.b', functions: {} })).toThrow(/subject token/);
    expect(() =>
      defineService({ name: 's', functions: { 'get.user': fn({ handler: () => 1 }) } }),
    ).toThrow(/request type/);
    expect(() =>
      defineService({ name: 's', functions: { 'op@1 0': fn({ handler: () => 1 }) } }),
    ).toThrow(/semver-like/);
    expect(() => defineService({ name: 's', functions: { op: {} as never } })).toThrow(
      /needs a handler/,
    );
  });
});

describe('runCall', () => {
  const meta = {
    requestId: 'r',
    service: 's',
    requestType: 'op',
    version: null,
    userId: 'u',
    deviceId: null,
    roles: ['a'],
    responseType: 'sync' as const,
    deadline: Date.now() + 1000,
    gateway: null,
  };

  it('returns results, maps undefined to null and errors to codes', async () => {
    const service = defineService({
      name: 's',
      functions: {
        ok: fn({ handler: (_a, ctx) => ({ user: ctx.userId, roles: ctx.roles }) }),
        nothing: fn({ handler: () => undefined }),
        fails: fn({ handler: () => Promise.reject(new ServiceError('nope', 422)) }),
        throws: fn({
          handler: () => {
            throw new Error('kaput');
          },
        }),
      },
    });
    const run = (name: string) => runCall(service.functions.get(name)!, {}, meta);
    expect(await run('ok')).toEqual({ ok: true, result: { user: 'u', roles: ['a'] } });
    expect(await run('nothing')).toEqual({ ok: true, result: null });
    expect(await run('fails')).toEqual({ ok: false, error: 'nope', code: 422 });
    expect(await run('throws')).toEqual({ ok: false, error: 'kaput', code: 500 });
  });

  it('aborts the handler signal at the deadline and reports 504, even if the handler then returns', async () => {
    let aborted = false;
    const service = defineService({
      name: 's',
      functions: {
        wait: fn({
          handler: (_a, ctx) =>
            new Promise((resolve) => {
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                resolve('stopped');
              });
            }),
        }),
      },
    });
    const result = await runCall(
      service.functions.get('wait')!,
      {},
      { ...meta, deadline: Date.now() + 50 },
    );
    expect(aborted).toBe(true);
    expect(result).toEqual({ ok: false, error: 'deadline exceeded', code: 504 });
  });
});

function recorder(): { io: StreamIO; events: [string, unknown][] } {
  const events: [string, unknown][] = [];
  return {
    events,
    io: {
      start: (result) => events.push(['start', result]),
      startError: (message, code) => events.push(['startError', `${code} ${message}`]),
      emit: (event: StreamEvent, data) => events.push([event, data]),
    },
  };
}

describe('CreditStream', () => {
  it('sends the start lazily, then at most `credit` chunks until more is granted', async () => {
    const { io, events } = recorder();
    const stream = new CreditStream(io, 2, 'started');
    await stream.write(1);
    await stream.write(2);
    let third = false;
    const pending = stream.write(3).then(() => (third = true));
    // A write with credit settles within microtasks: after a macrotask turn the third still waits.
    await new Promise((resolve) => setImmediate(resolve));
    expect(third).toBe(false);
    expect(events).toEqual([
      ['start', 'started'],
      ['chunk', 1],
      ['chunk', 2],
    ]);
    stream.grant(1);
    await pending;
    expect(events.at(-1)).toEqual(['chunk', 3]);
    await stream.end();
    expect(events.at(-1)).toEqual(['end', null]);
    await expect(stream.write(4)).rejects.toBeInstanceOf(StreamClosedError);
  });

  it('a failure before the start fails the request; after it, the stream', async () => {
    const before = recorder();
    new CreditStream(before.io, 1, 'started').fail('no such dataset', 404);
    expect(before.events).toEqual([['startError', '404 no such dataset']]);
    const after = recorder();
    const stream = new CreditStream(after.io, 1, 'go');
    await stream.write('a');
    stream.fail('disk full');
    expect(after.events).toEqual([
      ['start', 'go'],
      ['chunk', 'a'],
      ['error', 'disk full'],
    ]);
  });

  it('cancel wakes a writer waiting for credit; waiting too long for credit gives up', async () => {
    const { io } = recorder();
    const stream = new CreditStream(io, 0, 'started');
    const waiting = stream.write('x');
    stream.cancel();
    await expect(waiting).rejects.toBeInstanceOf(StreamClosedError);

    const timed = recorder();
    const abandoned = new CreditStream(timed.io, 0, 'started', 50);
    await expect(abandoned.write('y')).rejects.toBeInstanceOf(StreamClosedError);
    expect(timed.events.at(-1)).toEqual(['error', 'no credit from the gateway: stream abandoned']);
  });

  it('runStream: an async iterable is streamed; a plain return value becomes the last chunk', async () => {
    const service = defineService({
      name: 's',
      functions: {
        gen: fn({
          response: 'stream',
          // eslint-disable-next-line @typescript-eslint/require-await -- the point is an async generator; it has nothing to await
          async *handler() {
            yield 'a';
            yield 'b';
          },
        }),
        last: fn({ response: 'stream', startResult: 'go', handler: () => 'final' }),
      },
    });
    const meta = {
      requestId: 'r',
      service: 's',
      requestType: 'gen',
      version: null,
      userId: null,
      deviceId: null,
      roles: [],
      responseType: 'stream' as const,
      deadline: Date.now() + 1000,
      gateway: null,
    };
    const a = recorder();
    await runStream(service.functions.get('gen')!, {}, meta, a.io, 8).done;
    expect(a.events).toEqual([
      ['start', 'started'],
      ['chunk', 'a'],
      ['chunk', 'b'],
      ['end', null],
    ]);
    const b = recorder();
    await runStream(service.functions.get('last')!, {}, meta, b.io, 8).done;
    expect(b.events).toEqual([
      ['start', 'go'],
      ['last', 'final'],
    ]);
  });
});

/**
 * Executor acceptance: before/after hooks (protocol/gen_api.md §4 steps 2 and 7, §7 item 10; spec
 * §8.1 / hooks_test) through a real gateway, the gen_api channel and SDK workers on a real
 * nats-server. Hooks are registered on the gateway before the workers push configs naming them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenApiRequest, GenApiResponse } from '../../src/genapi/types.js';
import { defineService, fn } from '../../src/worker/define.js';
import type { GenApiApp } from '../support/genapi-app.js';
import { errorResp, ExecEnv, ready, resp, type GenApiClient } from '../support/genapi-exec.js';
import { deferred, until, type Deferred } from '../support/wait.js';

const SERVICE = 'hooked';

function hookedService(calls: Map<string, unknown[]>) {
  const seen = (rt: string, args: unknown) => calls.set(rt, [...(calls.get(rt) ?? []), args]);
  const echo = (rt: string) => (args: Record<string, unknown>) => {
    seen(rt, args);
    return { echoed: args };
  };
  return defineService({
    name: SERVICE,
    functions: {
      rewrite: fn({
        args: { message: 'string' },
        beforeExecute: 'rewrite',
        handler: echo('rewrite'),
      }),
      noop_before: fn({
        args: { message: 'string' },
        beforeExecute: 'noop',
        handler: echo('noop_before'),
      }),
      rejected: fn({
        beforeExecute: 'reject_quota',
        afterExecute: 'spy',
        handler: echo('rejected'),
      }),
      rejected_map: fn({ beforeExecute: 'reject_map', handler: echo('rejected_map') }),
      throwing: fn({ beforeExecute: 'throw_before', handler: echo('throwing') }),
      slow_before: fn({
        beforeExecute: 'slow_before',
        hookTimeout: 200,
        handler: echo('slow_before'),
      }),
      replaced: fn({ afterExecute: 'replace', handler: echo('replaced') }),
      non_response: fn({ afterExecute: 'non_response', handler: echo('non_response') }),
      throw_after: fn({ afterExecute: 'throw_after', handler: echo('throw_after') }),
      slow_after: fn({ afterExecute: 'slow_after', hookTimeout: 200, handler: echo('slow_after') }),
      async_fn: fn({ response: 'async', afterExecute: 'spy', handler: echo('async_fn') }),
      none_fn: fn({ response: 'none', afterExecute: 'spy', handler: echo('none_fn') }),
      stream_fn: fn({
        response: 'stream',
        afterExecute: 'spy',
        handler: async (args, ctx) => {
          seen('stream_fn', args);
          await ctx.stream.write('a');
          await ctx.stream.write('b');
        },
      }),
      denied: fn({ permission: { role: ['admin'] }, afterExecute: 'spy', handler: echo('denied') }),
      marker: fn({ handler: echo('marker') }),
    },
  });
}

const req = (id: string, rt: string, args: Record<string, unknown> = {}) => ({
  request_id: id,
  service: SERVICE,
  request_type: rt,
  args,
});

/**
 * A slow hook's lifecycle: it waits for `release` (long past its 200 ms hook_timeout), then
 * resolves `finished`.
 */
interface SlowHook {
  release: Deferred<void>;
  finished: Deferred<void>;
}
const slowHook = (): SlowHook => ({ release: deferred(), finished: deferred() });

describe('exec: hooks over NATS', () => {
  let env: ExecEnv;
  let slowBefore: SlowHook;
  let slowAfter: SlowHook;
  let markers = 0;
  let app: GenApiApp;
  let client: GenApiClient;
  let calls: Map<string, unknown[]>;
  /** What the spy after hook saw, keyed by request_id. */
  let spied: Map<unknown, (GenApiResponse | null)[]>;
  let beforeSaw: GenApiRequest[];
  const callsOf = (rt: string) => calls.get(rt)?.length ?? 0;

  // One gateway, worker and client for the file: every test uses its own functions and ids.
  beforeAll(async () => {
    env = await ExecEnv.start();
    await setup();
  });
  afterAll(async () => {
    slowBefore?.release.resolve();
    slowAfter?.release.resolve();
    await env?.dispose();
  });

  /**
   * A call to the same worker, after the request under test ended: once it is answered, the
   * worker has seen whatever the gateway sent it before, and the client every push before it.
   */
  async function marker(): Promise<void> {
    const id = `marker-${++markers}`;
    const result = await client.call(req(id, 'marker'));
    expect(result.pushes[0]!.success).toBe(true);
  }

  async function setup() {
    slowBefore = slowHook();
    slowAfter = slowHook();
    calls = new Map();
    spied = new Map();
    beforeSaw = [];
    app = await env.gateway();
    const genApi = app.genApi;
    genApi.hook('rewrite', {
      before: (request) => {
        beforeSaw.push(request);
        return {
          request: {
            ...request,
            args: { ...request.args, message: `rewritten: ${String(request.args.message)}` },
          },
        };
      },
    });
    genApi.hook('noop', { before: () => 42 as never });
    genApi.hook('reject_quota', { before: () => ({ reject: 'quota_exceeded' }) });
    genApi.hook('reject_map', { before: () => ({ reject: { code: 42 } }) });
    genApi.hook('throw_before', {
      before: () => {
        throw new Error('boom');
      },
    });
    genApi.hook('slow_before', {
      before: async () => {
        await slowBefore.release.promise;
        slowBefore.finished.resolve();
      },
    });
    genApi.hook('replace', {
      after: (request) => resp(request.request_id, { result: 'replaced by hook' }),
    });
    genApi.hook('non_response', { after: () => 42 as never });
    genApi.hook('throw_after', {
      after: () => {
        throw new Error('after boom');
      },
    });
    genApi.hook('slow_after', {
      after: async (request) => {
        await slowAfter.release.promise;
        slowAfter.finished.resolve();
        return resp(request.request_id, { result: 'too late' });
      },
    });
    genApi.hook('spy', {
      after: (request, _config, response) => {
        spied.set(request.request_id, [...(spied.get(request.request_id) ?? []), response]);
      },
    });
    await env.worker(hookedService(calls));
    await ready(app, SERVICE, 'rewrite', 1);
    client = await env.client(app);
  }

  it('before: a rewritten request is what the worker receives', async () => {
    const result = await client.call(req('h-rw', 'rewrite', { message: 'hi' }));
    expect(result.pushes).toEqual([
      resp('h-rw', { result: { echoed: { message: 'rewritten: hi' } } }),
    ]);
    expect(result.reply).toEqual({ status: 'ok', response: 'rewrite' });
    expect(calls.get('rewrite')).toEqual([{ message: 'rewritten: hi' }]);
    // The hook sees the decoded request with the socket's identity.
    expect(beforeSaw).toHaveLength(1);
    expect(beforeSaw[0]).toMatchObject({
      request_id: 'h-rw',
      service: SERVICE,
      request_type: 'rewrite',
      user_id: 'u1',
      device_id: 'd1',
    });
  });

  it('before: a hook returning something else proceeds with the original request', async () => {
    const result = await client.call(req('h-noop', 'noop_before', { message: 'hi' }));
    expect(result.pushes).toEqual([resp('h-noop', { result: { echoed: { message: 'hi' } } })]);
  });

  it('before: {reject: "quota_exceeded"} pushes hook rejected: "quota_exceeded"; the handler never runs; after hook sees it', async () => {
    const result = await client.call(req('h-rej', 'rejected'));
    expect(result.pushes).toEqual([errorResp('h-rej', 'hook rejected: "quota_exceeded"')]);
    expect(result.reply).toEqual({ status: 'ok', response: 'rejected' });
    expect(result.order).toEqual(['push', 'reply']);
    expect(spied.get('h-rej')).toEqual([errorResp('h-rej', 'hook rejected: "quota_exceeded"')]);
    await marker();
    expect(callsOf('rejected')).toBe(0);
  });

  it('before: a map reason is inspected the Elixir way', async () => {
    const result = await client.call(req('h-rej-map', 'rejected_map'));
    expect(result.pushes).toEqual([errorResp('h-rej-map', 'hook rejected: %{"code" => 42}')]);
    expect(callsOf('rejected_map')).toBe(0);
  });

  it('before: a throwing hook rejects with its message', async () => {
    const result = await client.call(req('h-throw', 'throwing'));
    expect(result.pushes).toEqual([errorResp('h-throw', 'hook rejected: "boom"')]);
    expect(result.reply).toEqual({ status: 'ok', response: 'throwing' });
    await marker();
    expect(callsOf('throwing')).toBe(0);
  });

  it('before: a hook slower than hook_timeout (200 ms) rejects with "hook timed out after 200ms"', async () => {
    const result = await client.call(req('h-slow', 'slow_before'));
    expect(result.pushes).toEqual([
      errorResp('h-slow', 'hook rejected: "hook timed out after 200ms"'),
    ]);
    expect(result.reply).toEqual({ status: 'ok', response: 'slow_before' });
    expect(result.ms).toBeGreaterThanOrEqual(190);
    // The hook was still running when it timed out; when it finally returns, nothing runs.
    slowBefore.release.resolve();
    await slowBefore.finished.promise;
    await marker();
    expect(callsOf('slow_before')).toBe(0);
  });

  it('after: a returned Response replaces the one pushed', async () => {
    const result = await client.call(req('h-repl', 'replaced'));
    expect(result.pushes).toEqual([resp('h-repl', { result: 'replaced by hook' })]);
    expect(result.reply).toEqual({ status: 'ok', response: 'replaced' });
    expect(callsOf('replaced')).toBe(1);
  });

  it('after: a non-Response return value keeps the original', async () => {
    const result = await client.call(req('h-nonresp', 'non_response', { x: 1 }));
    expect(result.pushes).toEqual([resp('h-nonresp', { result: { echoed: { x: 1 } } })]);
    expect(result.reply).toEqual({ status: 'ok', response: 'non_response' });
  });

  it('after: a throwing hook keeps the original', async () => {
    const result = await client.call(req('h-athrow', 'throw_after', { x: 2 }));
    expect(result.pushes).toEqual([resp('h-athrow', { result: { echoed: { x: 2 } } })]);
  });

  it('after: a hook slower than hook_timeout keeps the original (pushed after ~200 ms)', async () => {
    const result = await client.call(req('h-aslow', 'slow_after', { x: 3 }));
    expect(result.pushes).toEqual([resp('h-aslow', { result: { echoed: { x: 3 } } })]);
    expect(result.ms).toBeGreaterThanOrEqual(190);
    // The hook was still running when it timed out; its late Response is not pushed.
    slowAfter.release.resolve();
    await slowAfter.finished.promise;
    await marker();
    expect(client.pushesFor('h-aslow')).toHaveLength(1);
  });

  it('after: for async it sees the ack; the later result push is not passed through it', async () => {
    const result = await client.call(req('h-async', 'async_fn', { x: 4 }), { pushes: 2 });
    expect(result.pushes).toEqual([
      resp('h-async', { async: true }),
      resp('h-async', { result: { echoed: { x: 4 } } }),
    ]);
    expect(result.order).toEqual(['push', 'reply', 'push']);
    expect(spied.get('h-async')).toEqual([resp('h-async', { async: true })]);
  });

  it('after: for a stream it sees "init" only', async () => {
    const result = await client.call(req('h-stream', 'stream_fn'), { pushes: 5 });
    expect(result.pushes).toEqual([
      resp('h-stream', { result: 'init', async: true, has_more: true }),
      resp('h-stream', {
        result: resp('h-stream', { result: 'started' }),
        async: true,
        has_more: true,
      }),
      resp('h-stream', { result: 'a', async: true, has_more: true }),
      resp('h-stream', { result: 'b', async: true, has_more: true }),
      resp('h-stream', { async: true }),
    ]);
    expect(result.order[0]).toBe('push');
    expect(result.order[1]).toBe('reply');
    expect(spied.get('h-stream')).toEqual([
      resp('h-stream', { result: 'init', async: true, has_more: true }),
    ]);
  });

  it('after: for none it sees null, and the client gets the reply only', async () => {
    const result = await client.call(req('h-none', 'none_fn', { x: 5 }), { pushes: 0 });
    expect(result.reply).toEqual({ status: 'ok', response: 'none_fn' });
    // The function ran and the after hook saw its end; then a marker.
    await until(() => spied.has('h-none'), 'the after hook of h-none');
    await marker();
    expect(client.pushesFor('h-none')).toEqual([]);
    expect(spied.get('h-none')).toEqual([null]);
    expect(callsOf('none_fn')).toBe(1);
  });

  it('after: a permission denial goes through the after hook', async () => {
    const result = await client.call(req('h-denied', 'denied'));
    expect(result.pushes).toEqual([errorResp('h-denied', 'Permission denied')]);
    expect(spied.get('h-denied')).toEqual([errorResp('h-denied', 'Permission denied')]);
    expect(callsOf('denied')).toBe(0);
  });

  it('a config naming an unregistered hook is rejected (register hooks first)', async () => {
    const late = defineService({
      name: 'late_hooks',
      functions: {
        f: fn({ beforeExecute: 'not_registered', handler: () => 1 }),
        g: fn({ handler: () => 2 }),
      },
    });
    await env.worker(late);
    await ready(app, 'late_hooks', 'g', 1);
    expect(app.genApi.failed.list({ service: 'late_hooks' }).map((f) => f.request_type)).toEqual([
      'f',
    ]);
    const result = await client.call({
      request_id: 'h-late',
      service: 'late_hooks',
      request_type: 'f',
      args: {},
    });
    expect(result.pushes).toEqual([errorResp('h-late', 'unsupported function: f version latest')]);
  });
});

/**
 * Executor acceptance: circuit breakers, bulkheads and the per-channel in-flight limit
 * (protocol/gen_api.md §5 and §2 errors; §7 items 12 and 13) through a real gateway, the gen_api
 * channel over raw frames and SDK workers on a real nats-server, with small `resilience` numbers.
 */
import { describe, expect, it } from 'vitest';
import { defineService, fn } from '../../src/worker/define.js';
import {
  errorResp,
  useExecEnv,
  hang,
  ready,
  resp,
  sleep,
  sleepOrAbort,
} from '../support/genapi-exec.js';
import { RESILIENCE_DEFAULTS } from '../../src/genapi/resilience.js';

interface State {
  /** Labels of instances that hang (time out) right now, by request type ('*' = all). */
  hanging: Set<string>;
  calls: { rt: string; label: string }[];
}

function resService(label: string, state: State, name = 'res') {
  const handler =
    (rt: string) => async (_args: Record<string, unknown>, ctx: { signal: AbortSignal }) => {
      state.calls.push({ rt, label });
      if (state.hanging.has(`${label}:${rt}`) || state.hanging.has(`*:${rt}`))
        await hang(ctx.signal);
      if (rt === 'slow') await sleepOrAbort(500, ctx.signal);
      return { label, rt };
    };
  return defineService({
    name,
    functions: {
      rr: fn({ chooseNode: 'round_robin', timeout: 200, handler: handler('rr') }),
      flaky: fn({ timeout: 200, handler: handler('flaky') }),
      other: fn({ timeout: 1_000, handler: handler('other') }),
      slow: fn({ timeout: 2_000, handler: handler('slow') }),
      slow_async: fn({ response: 'async', timeout: 2_000, handler: handler('slow') }),
      slow_none: fn({ response: 'none', timeout: 2_000, handler: handler('slow') }),
      flaky_async: fn({ response: 'async', timeout: 200, handler: handler('flaky') }),
      flaky_none: fn({ response: 'none', timeout: 200, handler: handler('flaky') }),
      fail_none: fn({
        response: 'none',
        handler: () => {
          state.calls.push({ rt: 'fail_none', label });
          throw new Error('the function failed');
        },
      }),
      ticks: fn({
        response: 'stream',
        timeout: 2_000,
        handler: async (_args, ctx) => {
          state.calls.push({ rt: 'ticks', label });
          for (let i = 1; i <= 3; i++) await ctx.stream.write(i);
        },
      }),
    },
  });
}

const req = (id: string, rt: string, service = 'res') => ({
  request_id: id,
  service,
  request_type: rt,
  args: {},
});
const UNAVAILABLE = 'Service temporarily unavailable';

describe('exec: breakers and bulkheads over NATS', () => {
  const env = useExecEnv();

  it('instance breaker: after instanceFailures timeouts the instance is skipped until halfOpenAfterMs, then used again', async () => {
    const state: State = { hanging: new Set(['A:rr']), calls: [] };
    const app = await env.gateway({
      genApi: { resilience: { instanceFailures: 2, serviceFailures: 100, halfOpenAfterMs: 1_500 } },
    });
    const a = await env.worker(resService('A', state));
    await env.worker(resService('B', state));
    await ready(app, 'res', 'rr', 2);
    const client = await env.client(app);
    const callsOn = (label: string) =>
      state.calls.filter((c) => c.rt === 'rr' && c.label === label).length;

    // round_robin alternates: two requests time out on A, two succeed on B.
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await client.call(req(`ib-${i}`, 'rr')));
    expect(first.filter((r) => r.pushes[0]!.success)).toHaveLength(2);
    for (const failed of first.filter((r) => !r.pushes[0]!.success)) {
      expect(failed.pushes[0]).toEqual(
        errorResp(failed.pushes[0]!.request_id, 'Internal Server Error'),
      );
      expect(failed.ms).toBeGreaterThanOrEqual(190);
    }
    expect(callsOn('A')).toBe(2);
    const openedAt = Date.now();
    expect(app.genApi.health().breakers.instances[a.running.id]).toBe('open');

    // A is skipped: every request is served by B at once.
    for (let i = 0; i < 4; i++) {
      const result = await client.call(req(`ib-open-${i}`, 'rr'));
      expect(result.pushes).toEqual([resp(`ib-open-${i}`, { result: { label: 'B', rt: 'rr' } })]);
      expect(result.ms).toBeLessThan(150);
    }
    expect(callsOn('A')).toBe(2);

    // A recovers; after halfOpenAfterMs a trial call reaches it and closes the breaker.
    state.hanging.clear();
    await sleep(Math.max(0, 1_500 - (Date.now() - openedAt)) + 100);
    const after = [];
    for (let i = 0; i < 4; i++) after.push(await client.call(req(`ib-half-${i}`, 'rr')));
    for (const result of after) expect(result.pushes[0]!.success).toBe(true);
    expect(callsOn('A')).toBeGreaterThanOrEqual(3);
    expect(app.genApi.health().breakers.instances[a.running.id]).toBe('closed');
  });

  it('service breaker: serviceFailures failed requests → Service temporarily unavailable (can_retry) for the whole service, then recovery', async () => {
    const state: State = { hanging: new Set(['*:flaky']), calls: [] };
    const app = await env.gateway({
      genApi: { resilience: { serviceFailures: 3, instanceFailures: 100, halfOpenAfterMs: 1_000 } },
    });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'flaky', 1);
    const client = await env.client(app);
    const calls = (rt: string) => state.calls.filter((c) => c.rt === rt).length;

    for (let i = 0; i < 3; i++) {
      const result = await client.call(req(`sb-${i}`, 'flaky'));
      expect(result.pushes).toEqual([errorResp(`sb-${i}`, 'Internal Server Error')]);
    }
    const openedAt = Date.now();
    expect(calls('flaky')).toBe(3);

    const fast = await client.call(req('sb-open', 'flaky'));
    expect(fast.pushes).toEqual([errorResp('sb-open', UNAVAILABLE, true)]);
    expect(fast.reply).toEqual({ status: 'ok', response: 'flaky' });
    expect(fast.ms).toBeLessThan(100);
    // The breaker is the service's: its other functions fail fast too.
    const sibling = await client.call(req('sb-other', 'other'));
    expect(sibling.pushes).toEqual([errorResp('sb-other', UNAVAILABLE, true)]);
    expect(calls('flaky')).toBe(3);
    expect(calls('other')).toBe(0);
    expect(app.genApi.health().breakers.services.res).toBe('open');

    state.hanging.clear();
    await sleep(Math.max(0, 1_000 - (Date.now() - openedAt)) + 100);
    const trial = await client.call(req('sb-trial', 'flaky'));
    expect(trial.pushes).toEqual([resp('sb-trial', { result: { label: 'A', rt: 'flaky' } })]);
    const next = await client.call(req('sb-next', 'other'));
    expect(next.pushes).toEqual([resp('sb-next', { result: { label: 'A', rt: 'other' } })]);
    expect(app.genApi.health().breakers.services.res).toBe('closed');
  });

  it('fast failures where nothing ran (no responders) open no breaker: a worker that comes back is used at once (default settings)', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const app = await env.gateway();
    const first = await env.worker(resService('A', state));
    await ready(app, 'res', 'other', 1);
    const client = await env.client(app);
    await first.stop();
    for (let i = 0; i < RESILIENCE_DEFAULTS.serviceFailures * 2; i++) {
      const result = await client.call(req(`nr-${i}`, 'other'));
      expect(result.pushes).toEqual([errorResp(`nr-${i}`, UNAVAILABLE, true)]);
      expect(result.ms).toBeLessThan(100);
    }
    expect(app.genApi.health().breakers.services.res ?? 'closed').toBe('closed');
    await env.worker(resService('B', state));
    const back = await client.call(req('nr-back', 'other'));
    expect(back.pushes).toEqual([resp('nr-back', { result: { label: 'B', rt: 'other' } })]);
  });

  it('instance breakers open on every instance → Service temporarily unavailable (can_retry) at once', async () => {
    const state: State = { hanging: new Set(['*:flaky']), calls: [] };
    const app = await env.gateway({
      genApi: { resilience: { instanceFailures: 2, serviceFailures: 100, halfOpenAfterMs: 5_000 } },
    });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'flaky', 1);
    const client = await env.client(app);
    for (let i = 0; i < 2; i++)
      expect((await client.call(req(`ia-${i}`, 'flaky'))).pushes).toEqual([
        errorResp(`ia-${i}`, 'Internal Server Error'),
      ]);
    const result = await client.call(req('ia-open', 'flaky'));
    expect(result.pushes).toEqual([errorResp('ia-open', UNAVAILABLE, true)]);
    expect(result.ms).toBeLessThan(100);
    expect(state.calls.filter((c) => c.rt === 'flaky')).toHaveLength(2);
  });

  it('streams are dispatched through the service breaker too: open breaker → Service temporarily unavailable as the first and only push', async () => {
    const state: State = { hanging: new Set(['*:flaky']), calls: [] };
    const app = await env.gateway({
      genApi: { resilience: { serviceFailures: 2, instanceFailures: 100, halfOpenAfterMs: 5_000 } },
    });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'ticks', 1);
    const client = await env.client(app);
    for (let i = 0; i < 2; i++) await client.call(req(`sbs-${i}`, 'flaky'));
    expect(app.genApi.health().breakers.services.res).toBe('open');
    const result = await client.call(req('sbs-stream', 'ticks'));
    await sleep(200);
    expect(client.pushesFor('sbs-stream')).toEqual([errorResp('sbs-stream', UNAVAILABLE, true)]);
    expect(result.order).toEqual(['push', 'reply']);
    expect(result.reply).toEqual({ status: 'ok', response: 'ticks' });
    expect(state.calls.filter((c) => c.rt === 'ticks')).toHaveLength(0);
    expect(app.genApi.health().executor.streams).toBe(0);
  });

  it('streams are dispatched through the bulkhead too: a full bulkhead refuses a stream start (the error is the only push)', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const app = await env.gateway({ genApi: { resilience: { maxConcurrent: 1, maxQueued: 0 } } });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'ticks', 1);
    const client = await env.client(app);
    const busy = client.start(req('bhs-slow', 'slow'));
    await sleep(50);
    const result = await client.call(req('bhs-stream', 'ticks'));
    expect(result.order).toEqual(['push', 'reply']);
    await busy.done();
    expect(client.pushesFor('bhs-stream')).toEqual([errorResp('bhs-stream', UNAVAILABLE, true)]);
    expect(state.calls.filter((c) => c.rt === 'ticks')).toHaveLength(0);
  });

  it('bulkhead: maxConcurrent 1 + maxQueued 0 → a second concurrent call gets Service temporarily unavailable (can_retry); other services unaffected', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const app = await env.gateway({ genApi: { resilience: { maxConcurrent: 1, maxQueued: 0 } } });
    await env.worker(resService('A', state));
    await env.worker(resService('X', state, 'res_other'));
    await ready(app, 'res', 'slow', 1);
    await ready(app, 'res_other', 'slow', 1);
    const client = await env.client(app);

    const first = client.start(req('bh-1', 'slow'));
    await sleep(50);
    const second = await client.call(req('bh-2', 'slow'));
    expect(second.pushes).toEqual([errorResp('bh-2', UNAVAILABLE, true)]);
    expect(second.reply).toEqual({ status: 'ok', response: 'slow' });
    expect(second.ms).toBeLessThan(200);
    // Another service has its own bulkhead.
    const elsewhere = await client.call(req('bh-x', 'other', 'res_other'));
    expect(elsewhere.pushes).toEqual([resp('bh-x', { result: { label: 'X', rt: 'other' } })]);

    const done = await first.done();
    expect(done.pushes).toEqual([resp('bh-1', { result: { label: 'A', rt: 'slow' } })]);
    expect(state.calls.filter((c) => c.rt === 'slow')).toHaveLength(1);
    // The slot is free again.
    const third = await client.call(req('bh-3', 'other'));
    expect(third.pushes[0]!.success).toBe(true);
  });

  it('bulkhead: maxQueued 1 queues one call (served after the first) and refuses the next', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const app = await env.gateway({ genApi: { resilience: { maxConcurrent: 1, maxQueued: 1 } } });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'slow', 1);
    const client = await env.client(app);
    const first = client.start(req('bq-1', 'slow'));
    await sleep(50);
    const queued = client.start(req('bq-2', 'slow'));
    await sleep(50);
    const refused = await client.call(req('bq-3', 'slow'));
    expect(refused.pushes).toEqual([errorResp('bq-3', UNAVAILABLE, true)]);
    const [r1, r2] = await Promise.all([first.done(), queued.done()]);
    expect(r1.pushes[0]!.success).toBe(true);
    expect(r2.pushes[0]!.success).toBe(true);
    // The queued call started only after the first ended (~500 ms each).
    expect(r2.ms).toBeGreaterThanOrEqual(850);
  });

  it('channel maxInflight 2: the third concurrent request gets Service temporarily unavailable (can_retry), other channels are unaffected', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const app = await env.gateway({ genApi: { maxInflight: 2 } });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'slow', 1);
    const client = await env.client(app);
    const other = await env.client(app, 'user_id=u2');

    const one = client.start(req('mi-1', 'slow'));
    const two = client.start(req('mi-2', 'slow'));
    await sleep(50);
    const three = await client.call(req('mi-3', 'slow'));
    expect(three.pushes).toEqual([errorResp('mi-3', UNAVAILABLE, true)]);
    expect(three.reply).toEqual({ status: 'ok', response: 'slow' });
    expect(three.ms).toBeLessThan(200);
    const elsewhere = await other.call(req('mi-other', 'other'));
    expect(elsewhere.pushes[0]!.success).toBe(true);

    const [r1, r2] = await Promise.all([one.done(), two.done()]);
    expect(r1.pushes).toEqual([resp('mi-1', { result: { label: 'A', rt: 'slow' } })]);
    expect(r2.pushes).toEqual([resp('mi-2', { result: { label: 'A', rt: 'slow' } })]);
    expect(state.calls.filter((c) => c.rt === 'slow')).toHaveLength(2);
    // Once they are done the channel takes requests again.
    const four = await client.call(req('mi-4', 'other'));
    expect(four.pushes[0]!.success).toBe(true);
  });
});

/**
 * async and none when the call is refused before it runs or fails after the reply
 * (protocol/gen_api.md §2 Sequences, §7 decision 22; PhoenixGenApi §1.6: a full queue makes the
 * error "the first and only push", and for none "still pushes").
 */
describe('exec: async and none refused or failing', () => {
  const env = useExecEnv();

  async function setup(resilience: Record<string, number>, state: State) {
    const app = await env.gateway({ genApi: { resilience } });
    const worker = await env.worker(resService('A', state));
    await ready(app, 'res', 'slow_none', 1);
    return { app, worker, client: await env.client(app) };
  }
  const calls = (state: State, rt: string) => state.calls.filter((c) => c.rt === rt).length;

  it('async, bulkhead full: the error is the first and only push (no ack), then the reply', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const { client } = await setup({ maxConcurrent: 1, maxQueued: 0 }, state);
    const busy = client.start(req('aq-busy', 'slow'));
    await sleep(50);
    const refused = await client.call(req('aq-1', 'slow_async'));
    expect(refused.order).toEqual(['push', 'reply']);
    expect(refused.reply).toEqual({ status: 'ok', response: 'slow_async' });
    expect(refused.ms).toBeLessThan(200);
    await busy.done();
    await sleep(300);
    expect(client.pushesFor('aq-1')).toEqual([errorResp('aq-1', UNAVAILABLE, true)]);
    expect(calls(state, 'slow')).toBe(1);
  });

  it('async, service breaker open: the error is the first and only push', async () => {
    const state: State = { hanging: new Set(['*:flaky']), calls: [] };
    const { app, client } = await setup(
      { serviceFailures: 2, instanceFailures: 100, halfOpenAfterMs: 5_000 },
      state,
    );
    for (let i = 0; i < 2; i++) await client.call(req(`ab-${i}`, 'flaky'));
    expect(app.genApi.health().breakers.services.res).toBe('open');
    const refused = await client.call(req('ab-async', 'flaky_async'));
    await sleep(300);
    expect(client.pushesFor('ab-async')).toEqual([errorResp('ab-async', UNAVAILABLE, true)]);
    expect(refused.order).toEqual(['push', 'reply']);
    expect(calls(state, 'flaky')).toBe(2);
  });

  it('async waiting in the bulkhead queue is accepted: ack and reply at once, the result when it ran', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const { client } = await setup({ maxConcurrent: 1, maxQueued: 1 }, state);
    const busy = client.start(req('aw-busy', 'slow'));
    await sleep(50);
    const queued = client.start(req('aw-1', 'slow_async'), { pushes: 2, timeoutMs: 3_000 });
    const done = await queued.done();
    expect(done.pushes).toEqual([
      resp('aw-1', { async: true }),
      resp('aw-1', { result: { label: 'A', rt: 'slow' } }),
    ]);
    expect(done.order).toEqual(['push', 'reply', 'push']);
    const ackAt = client.log.find((e) => e.kind === 'push' && e.key === 'aw-1')!.at;
    expect(ackAt - queued.sentAt).toBeLessThan(200);
    expect(done.ms).toBeGreaterThanOrEqual(850); // it ran only after the busy call (~500 ms each)
    expect((await busy.done()).pushes[0]!.success).toBe(true);
  });

  it('none, bulkhead full: Service temporarily unavailable (can_retry) is pushed, then the reply; the function never runs', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const { client } = await setup({ maxConcurrent: 1, maxQueued: 0 }, state);
    const busy = client.start(req('nq-busy', 'slow'));
    await sleep(50);
    const refused = await client.call(req('nq-1', 'slow_none'));
    expect(refused.pushes).toEqual([errorResp('nq-1', UNAVAILABLE, true)]);
    expect(refused.order).toEqual(['push', 'reply']);
    expect(refused.reply).toEqual({ status: 'ok', response: 'slow_none' });
    await busy.done();
    await sleep(300);
    expect(client.pushesFor('nq-1')).toHaveLength(1);
    expect(calls(state, 'slow')).toBe(1);
  });

  it('none, service breaker open: Service temporarily unavailable is pushed, then the reply', async () => {
    const state: State = { hanging: new Set(['*:flaky']), calls: [] };
    const { app, client } = await setup(
      { serviceFailures: 2, instanceFailures: 100, halfOpenAfterMs: 5_000 },
      state,
    );
    for (let i = 0; i < 2; i++) await client.call(req(`nb-${i}`, 'flaky'));
    expect(app.genApi.health().breakers.services.res).toBe('open');
    const refused = await client.call(req('nb-none', 'flaky_none'));
    expect(refused.pushes).toEqual([errorResp('nb-none', UNAVAILABLE, true)]);
    expect(refused.order).toEqual(['push', 'reply']);
    expect(calls(state, 'flaky')).toBe(2);
  });

  it('none admitted: the reply only; a failure after a worker took it (function error, timeout) pushes nothing', async () => {
    const state: State = { hanging: new Set(['*:flaky']), calls: [] };
    const { client } = await setup({}, state);
    const ok = await client.call(req('na-ok', 'slow_none'), { pushes: 0 });
    expect(ok.reply).toEqual({ status: 'ok', response: 'slow_none' });
    expect(ok.ms).toBeLessThan(200); // the reply does not wait for the function
    const failed = await client.call(req('na-fail', 'fail_none'), { pushes: 0 });
    expect(failed.reply).toEqual({ status: 'ok', response: 'fail_none' });
    const timedOut = await client.call(req('na-timeout', 'flaky_none'), { pushes: 0 });
    expect(timedOut.reply).toEqual({ status: 'ok', response: 'flaky_none' });
    await sleep(800); // slow (500 ms) finished, fail_none failed, flaky_none timed out (200 ms)
    expect(calls(state, 'slow')).toBe(1);
    expect(calls(state, 'fail_none')).toBe(1);
    expect(calls(state, 'flaky')).toBe(1);
    for (const id of ['na-ok', 'na-fail', 'na-timeout'])
      expect(client.pushesFor(id), id).toEqual([]);
  });

  it('none with no worker to take it (no responders): the reply, then Service temporarily unavailable (can_retry) at once', async () => {
    const state: State = { hanging: new Set(), calls: [] };
    const { worker, client } = await setup({}, state);
    await worker.stop();
    const sentAt = Date.now();
    const ref = client.send(req('nr-1', 'slow_none'));
    const result = await client.collect('nr-1', ref, sentAt, { pushes: 1 });
    expect(result.order).toEqual(['reply', 'push']);
    expect(result.reply).toEqual({ status: 'ok', response: 'slow_none' });
    expect(result.pushes).toEqual([errorResp('nr-1', UNAVAILABLE, true)]);
    expect(result.ms).toBeLessThan(200);
  });
});

describe('exec: many requests in flight on one channel over NATS', () => {
  const env = useExecEnv();

  it('30 concurrent requests on one channel (maxInflight 100) all succeed without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const state: State = { hanging: new Set(), calls: [] };
      const app = await env.gateway();
      await env.worker(resService('A', state));
      await ready(app, 'res', 'slow', 1);
      const client = await env.client(app);
      const pending = [];
      for (let i = 0; i < 30; i++) pending.push(client.start(req(`many-${i}`, 'slow')));
      const results = await Promise.all(pending.map((p) => p.done()));
      for (const [i, result] of results.entries())
        expect(result.pushes).toEqual([resp(`many-${i}`, { result: { label: 'A', rt: 'slow' } })]);
      await sleep(50);
      // Node warns once more than 10 listeners sit on one AbortSignal ("possible memory leak"):
      // every in-flight request of a channel listens on the channel's signal.
      expect(
        warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
      ).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

/**
 * Executor acceptance: circuit breakers, bulkheads and the per-channel in-flight limit
 * (protocol/gen_api.md §5 and §2 errors; §7 items 12 and 13) through a real gateway, the gen_api
 * channel over raw frames and SDK workers on a real nats-server, with small `resilience` numbers.
 */
import { describe, expect, it } from 'vitest';
import { defineService, fn } from '../../src/worker/define.js';
import { errorResp, useExecEnv, hang, ready, resp } from '../support/genapi-exec.js';
import { RESILIENCE_DEFAULTS } from '../../src/genapi/resilience.js';
import { deferred, until, type Deferred } from '../support/wait.js';

interface State {
  /** Labels of instances that hang (time out) right now, by request type ('*' = all). */
  hanging: Set<string>;
  calls: { rt: string; label: string; id: string; at: number }[];
  /** `start <id>` and `end <id>` in the order handlers began and finished (however they ended). */
  events: string[];
  /** `slow` handlers hold their call until this resolves (or their signal aborts). */
  gate: Deferred<void>;
}

function newState(hanging: string[] = []): State {
  return { hanging: new Set(hanging), calls: [], events: [], gate: deferred() };
}

/** Resolves when `gate` does; rejects when `signal` aborts first. */
function held(gate: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    gate.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}

/** The request timeout of the functions that hang: every hanging call costs this much. */
const HANG_TIMEOUT_MS = 300;

function resService(label: string, state: State, name = 'res') {
  const handler =
    (rt: string) =>
    async (_args: Record<string, unknown>, ctx: { signal: AbortSignal; requestId: string }) => {
      state.calls.push({ rt, label, id: ctx.requestId, at: performance.now() });
      state.events.push(`start ${ctx.requestId}`);
      try {
        if (state.hanging.has(`${label}:${rt}`) || state.hanging.has(`*:${rt}`))
          await hang(ctx.signal);
        if (rt === 'slow') await held(state.gate.promise, ctx.signal);
        return { label, rt };
      } finally {
        state.events.push(`end ${ctx.requestId}`);
      }
    };
  return defineService({
    name,
    functions: {
      rr: fn({ chooseNode: 'round_robin', timeout: HANG_TIMEOUT_MS, handler: handler('rr') }),
      // Round robin; on an instance whose `<label>:rr_held` is in `hanging`, held until `gate`.
      rr_held: fn({
        chooseNode: 'round_robin',
        timeout: 10_000,
        handler: async (_args, ctx) => {
          state.calls.push({ rt: 'rr_held', label, id: ctx.requestId, at: performance.now() });
          if (state.hanging.has(`${label}:rr_held`)) await held(state.gate.promise, ctx.signal);
          return { label, rt: 'rr_held' };
        },
      }),
      flaky: fn({ timeout: HANG_TIMEOUT_MS, handler: handler('flaky') }),
      other: fn({ timeout: 5_000, handler: handler('other') }),
      slow: fn({ timeout: 10_000, handler: handler('slow') }),
      slow_async: fn({ response: 'async', timeout: 10_000, handler: handler('slow') }),
      slow_none: fn({ response: 'none', timeout: 10_000, handler: handler('slow') }),
      flaky_async: fn({ response: 'async', timeout: HANG_TIMEOUT_MS, handler: handler('flaky') }),
      flaky_none: fn({ response: 'none', timeout: HANG_TIMEOUT_MS, handler: handler('flaky') }),
      fail_none: fn({
        response: 'none',
        handler: (_args, ctx) => {
          state.calls.push({ rt: 'fail_none', label, id: ctx.requestId, at: performance.now() });
          state.events.push(`start ${ctx.requestId}`, `end ${ctx.requestId}`);
          throw new Error('the function failed');
        },
      }),
      ticks: fn({
        response: 'stream',
        timeout: 5_000,
        handler: async (_args, ctx) => {
          state.calls.push({ rt: 'ticks', label, id: ctx.requestId, at: performance.now() });
          for (let i = 1; i <= 3; i++) await ctx.stream.write(i);
        },
      }),
    },
  });
}

/** Until the handler of request `id` has started. */
const started = (state: State, id: string) =>
  until(() => state.events.includes(`start ${id}`), `the handler of ${id} to start`);
/** Until the handler of request `id` has finished (returned or thrown). */
const ended = (state: State, id: string) =>
  until(() => state.events.includes(`end ${id}`), `the handler of ${id} to end`);

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
    const state = newState(['A:rr']);
    const halfOpenAfterMs = 1_500;
    const app = await env.gateway({
      genApi: { resilience: { instanceFailures: 2, serviceFailures: 100, halfOpenAfterMs } },
    });
    const a = await env.worker(resService('A', state));
    await env.worker(resService('B', state));
    await ready(app, 'res', 'rr', 2);
    const client = await env.client(app);
    const callsOn = (label: string) =>
      state.calls.filter((c) => c.rt === 'rr' && c.label === label).length;

    // round_robin alternates: two requests time out on A, two succeed on B.
    const first = [];
    let lastFailureSentAt = 0;
    for (let i = 0; i < 4; i++) {
      const call = client.start(req(`ib-${i}`, 'rr'));
      const result = await call.done();
      if (!result.pushes[0]!.success) lastFailureSentAt = call.sentAt;
      first.push(result);
    }
    expect(first.filter((r) => r.pushes[0]!.success)).toHaveLength(2);
    for (const failed of first.filter((r) => !r.pushes[0]!.success)) {
      expect(failed.pushes[0]).toEqual(
        errorResp(failed.pushes[0]!.request_id, 'Internal Server Error'),
      );
      // A timeout, not a fast failure (a lower bound: it cannot flake under load).
      expect(failed.ms).toBeGreaterThanOrEqual(HANG_TIMEOUT_MS - 10);
    }
    expect(callsOn('A')).toBe(2);
    expect(app.genApi.health().breakers.instances[a.running.id]).toBe('open');

    // A is skipped: every request is served by B (A, still hanging, is never called).
    for (let i = 0; i < 4; i++) {
      const result = await client.call(req(`ib-open-${i}`, 'rr'));
      expect(result.pushes).toEqual([resp(`ib-open-${i}`, { result: { label: 'B', rt: 'rr' } })]);
    }
    expect(callsOn('A')).toBe(2);

    // A recovers; after halfOpenAfterMs a trial call reaches it and closes the breaker. Until
    // then every call is served by B: call until one reaches A.
    state.hanging.clear();
    let poll = 0;
    await until(async () => {
      const result = await client.call(req(`ib-poll-${poll++}`, 'rr'));
      expect(result.pushes[0]!.success).toBe(true);
      return callsOn('A') >= 3;
    }, 'a half-open trial call on A');
    const trial = state.calls.filter((c) => c.rt === 'rr' && c.label === 'A')[2]!;
    // Not before the breaker's half-open delay (the breaker opened after the last failure was sent).
    expect(trial.at - lastFailureSentAt).toBeGreaterThanOrEqual(halfOpenAfterMs - 10);
    const after = [];
    for (let i = 0; i < 4; i++) after.push(await client.call(req(`ib-half-${i}`, 'rr')));
    for (const result of after) expect(result.pushes[0]!.success).toBe(true);
    expect(callsOn('A')).toBeGreaterThanOrEqual(3);
    expect(app.genApi.health().breakers.instances[a.running.id]).toBe('closed');
  });

  it('service breaker: serviceFailures failed requests → Service temporarily unavailable (can_retry) for the whole service, then recovery', async () => {
    const state = newState(['*:flaky']);
    const halfOpenAfterMs = 1_000;
    const app = await env.gateway({
      genApi: { resilience: { serviceFailures: 3, instanceFailures: 100, halfOpenAfterMs } },
    });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'flaky', 1);
    const client = await env.client(app);
    const calls = (rt: string) => state.calls.filter((c) => c.rt === rt).length;

    let lastFailureSentAt = 0;
    for (let i = 0; i < 3; i++) {
      lastFailureSentAt = performance.now();
      const result = await client.call(req(`sb-${i}`, 'flaky'));
      expect(result.pushes).toEqual([errorResp(`sb-${i}`, 'Internal Server Error')]);
    }
    expect(calls('flaky')).toBe(3);

    // Failed fast: the function was not called (still 3 calls below).
    const fast = await client.call(req('sb-open', 'flaky'));
    expect(fast.pushes).toEqual([errorResp('sb-open', UNAVAILABLE, true)]);
    expect(fast.reply).toEqual({ status: 'ok', response: 'flaky' });
    // The breaker is the service's: its other functions fail fast too.
    const sibling = await client.call(req('sb-other', 'other'));
    expect(sibling.pushes).toEqual([errorResp('sb-other', UNAVAILABLE, true)]);
    expect(calls('flaky')).toBe(3);
    expect(calls('other')).toBe(0);
    expect(app.genApi.health().breakers.services.res).toBe('open');

    // Recovery: calls fail fast (the function is not called) until the half-open trial, which
    // reaches the worker and closes the breaker.
    state.hanging.clear();
    let poll = 0;
    const trial = await until(async () => {
      const id = `sb-poll-${poll++}`;
      const result = await client.call(req(id, 'flaky'));
      if (result.pushes[0]!.success) return result;
      expect(result.pushes).toEqual([errorResp(id, UNAVAILABLE, true)]);
      expect(calls('flaky')).toBe(3);
      return null;
    }, 'the half-open trial call');
    expect(trial.pushes[0]!.result).toEqual({ label: 'A', rt: 'flaky' });
    const trialCall = state.calls.filter((c) => c.rt === 'flaky')[3]!;
    expect(trialCall.at - lastFailureSentAt).toBeGreaterThanOrEqual(halfOpenAfterMs - 10);
    const next = await client.call(req('sb-next', 'other'));
    expect(next.pushes).toEqual([resp('sb-next', { result: { label: 'A', rt: 'other' } })]);
    expect(app.genApi.health().breakers.services.res).toBe('closed');
  });

  it('one instance timing out while another is healthy opens its own breaker only: the service breaker stays closed and the other instance serves', async () => {
    const state = newState(['A:rr']);
    const app = await env.gateway({
      genApi: { resilience: { instanceFailures: 3, serviceFailures: 2, halfOpenAfterMs: 60_000 } },
    });
    const a = await env.worker(resService('A', state));
    await env.worker(resService('B', state));
    await ready(app, 'res', 'rr', 2);
    const client = await env.client(app);
    // Concurrent, so A's timeouts come back to back (the old service breaker counted them as
    // consecutive failures of the service and refused every call, B's too).
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => client.call(req(`iso-${i}`, 'rr'))),
    );
    const failed = results.filter((r) => !r.pushes[0]!.success);
    expect(failed).toHaveLength(3);
    for (const r of failed)
      expect(r.pushes[0]).toEqual(errorResp(r.pushes[0]!.request_id, 'Internal Server Error'));
    expect(app.genApi.health().breakers.instances[a.running.id]).toBe('open');
    expect(app.genApi.health().breakers.services.res ?? 'closed').toBe('closed');
    for (let i = 0; i < 4; i++) {
      const result = await client.call(req(`iso-after-${i}`, 'rr'));
      expect(result.pushes).toEqual([resp(`iso-after-${i}`, { result: { label: 'B', rt: 'rr' } })]);
    }
    expect(state.calls.filter((c) => c.rt === 'rr' && c.label === 'A')).toHaveLength(3);
  });

  it('stallAfterMs: an instance holding a call it does not answer gets no new calls while another serves; answering ends it', async () => {
    const state = newState(['A:rr_held']);
    const app = await env.gateway({ genApi: { resilience: { stallAfterMs: 200 } } });
    const a = await env.worker(resService('A', state));
    await env.worker(resService('B', state));
    await ready(app, 'res', 'rr_held', 2);
    const client = await env.client(app);
    const onA = () => state.calls.filter((c) => c.rt === 'rr_held' && c.label === 'A');
    // Round robin: of two calls one is held on A (B answers the other at once).
    const firstTwo = [client.start(req('st-0', 'rr_held')), client.start(req('st-1', 'rr_held'))];
    await until(() => onA().length === 1, 'a call held on A');
    const stalls = app.genApi.resilience.stalls;
    await until(() => stalls.stalled(a.running.id), 'A to stall (200 ms without an answer)');
    expect(app.genApi.health().breakers.instances[a.running.id]).toBe('stalled');

    // Round robin would send every other call to A: while it stalls, B takes them all.
    for (let i = 0; i < 6; i++) {
      const result = await client.call(req(`st-b-${i}`, 'rr_held'));
      expect(result.pushes).toEqual([resp(`st-b-${i}`, { result: { label: 'B', rt: 'rr_held' } })]);
    }
    expect(onA()).toHaveLength(1);

    // A answers its held call: no longer stalled, and round robin reaches it again.
    state.hanging.clear();
    state.gate.resolve();
    for (const call of firstTwo) expect((await call.done()).pushes[0]!.success).toBe(true);
    expect(stalls.stalled(a.running.id)).toBe(false);
    expect(app.genApi.health().breakers.instances[a.running.id]).toBe('closed');
    for (let i = 0; i < 4; i++) await client.call(req(`st-again-${i}`, 'rr_held'));
    expect(onA().length).toBeGreaterThanOrEqual(2);
  });

  it('a service breaker that opened with no healthy instance closes at once when a new instance appears (no halfOpenAfterMs wait)', async () => {
    const state = newState(['A:flaky']);
    const app = await env.gateway({
      genApi: {
        resilience: { serviceFailures: 2, instanceFailures: 100, halfOpenAfterMs: 60_000 },
      },
    });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'flaky', 1);
    const client = await env.client(app);
    for (let i = 0; i < 2; i++) await client.call(req(`rv-${i}`, 'flaky'));
    expect(app.genApi.health().breakers.services.res).toBe('open');
    const refused = await client.call(req('rv-open', 'other'));
    expect(refused.pushes).toEqual([errorResp('rv-open', UNAVAILABLE, true)]);

    // B starts: a healthy instance that was not sick when the breaker opened.
    await env.worker(resService('B', state));
    await ready(app, 'res', 'flaky', 2);
    const served = await client.call(req('rv-back', 'other'));
    expect(served.pushes[0]!.success).toBe(true);
    expect(app.genApi.health().breakers.services.res ?? 'closed').toBe('closed');
  });

  it('fast failures where nothing ran (no responders) open no breaker: a worker that comes back is used at once (default settings)', async () => {
    const state = newState();
    const app = await env.gateway();
    const first = await env.worker(resService('A', state));
    await ready(app, 'res', 'other', 1);
    const client = await env.client(app);
    await first.stop();
    for (let i = 0; i < RESILIENCE_DEFAULTS.serviceFailures * 2; i++) {
      const result = await client.call(req(`nr-${i}`, 'other'));
      expect(result.pushes).toEqual([errorResp(`nr-${i}`, UNAVAILABLE, true)]);
      // No responders: it did not wait for the function's 5 s timeout.
      expect(result.ms).toBeLessThan(4_000);
    }
    expect(app.genApi.health().breakers.services.res ?? 'closed').toBe('closed');
    await env.worker(resService('B', state));
    const back = await client.call(req('nr-back', 'other'));
    expect(back.pushes).toEqual([resp('nr-back', { result: { label: 'B', rt: 'other' } })]);
  });

  it('instance breakers open on every instance → Service temporarily unavailable (can_retry) at once', async () => {
    const state = newState(['*:flaky']);
    const app = await env.gateway({
      genApi: {
        resilience: { instanceFailures: 2, serviceFailures: 100, halfOpenAfterMs: 60_000 },
      },
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
    // At once: the function was not called a third time.
    expect(state.calls.filter((c) => c.rt === 'flaky')).toHaveLength(2);
  });

  it('streams are dispatched through the service breaker too: open breaker → Service temporarily unavailable as the first and only push', async () => {
    const state = newState(['*:flaky']);
    const app = await env.gateway({
      genApi: {
        resilience: { serviceFailures: 2, instanceFailures: 100, halfOpenAfterMs: 60_000 },
      },
    });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'ticks', 1);
    const client = await env.client(app);
    for (let i = 0; i < 2; i++) await client.call(req(`sbs-${i}`, 'flaky'));
    expect(app.genApi.health().breakers.services.res).toBe('open');
    const result = await client.call(req('sbs-stream', 'ticks'));
    // A marker: the breaker fails the marker fast too; once its push is here, anything the
    // gateway sent for the stream before it is here too.
    await client.call(req('sbs-marker', 'other'));
    expect(client.pushesFor('sbs-stream')).toEqual([errorResp('sbs-stream', UNAVAILABLE, true)]);
    expect(result.order).toEqual(['push', 'reply']);
    expect(result.reply).toEqual({ status: 'ok', response: 'ticks' });
    expect(state.calls.filter((c) => c.rt === 'ticks')).toHaveLength(0);
    expect(app.genApi.health().executor.streams).toBe(0);
  });

  it('streams are dispatched through the bulkhead too: a full bulkhead refuses a stream start (the error is the only push)', async () => {
    const state = newState();
    const app = await env.gateway({ genApi: { resilience: { maxConcurrent: 1, maxQueued: 0 } } });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'ticks', 1);
    const client = await env.client(app);
    const busy = client.start(req('bhs-slow', 'slow'));
    await started(state, 'bhs-slow');
    const result = await client.call(req('bhs-stream', 'ticks'));
    expect(result.order).toEqual(['push', 'reply']);
    state.gate.resolve();
    await busy.done();
    expect(client.pushesFor('bhs-stream')).toEqual([errorResp('bhs-stream', UNAVAILABLE, true)]);
    expect(state.calls.filter((c) => c.rt === 'ticks')).toHaveLength(0);
  });

  it('bulkhead: maxConcurrent 1 + maxQueued 0 → a second concurrent call gets Service temporarily unavailable (can_retry); other services unaffected', async () => {
    const state = newState();
    const app = await env.gateway({ genApi: { resilience: { maxConcurrent: 1, maxQueued: 0 } } });
    await env.worker(resService('A', state));
    await env.worker(resService('X', state, 'res_other'));
    await ready(app, 'res', 'slow', 1);
    await ready(app, 'res_other', 'slow', 1);
    const client = await env.client(app);

    const first = client.start(req('bh-1', 'slow'));
    await started(state, 'bh-1');
    const second = await client.call(req('bh-2', 'slow'));
    expect(second.pushes).toEqual([errorResp('bh-2', UNAVAILABLE, true)]);
    expect(second.reply).toEqual({ status: 'ok', response: 'slow' });
    // Another service has its own bulkhead.
    const elsewhere = await client.call(req('bh-x', 'other', 'res_other'));
    expect(elsewhere.pushes).toEqual([resp('bh-x', { result: { label: 'X', rt: 'other' } })]);
    // Refused while the first still held the slot.
    expect(state.events).not.toContain('end bh-1');

    state.gate.resolve();
    const done = await first.done();
    expect(done.pushes).toEqual([resp('bh-1', { result: { label: 'A', rt: 'slow' } })]);
    expect(state.calls.filter((c) => c.rt === 'slow')).toHaveLength(1);
    // The slot is free again.
    const third = await client.call(req('bh-3', 'other'));
    expect(third.pushes[0]!.success).toBe(true);
  });

  it('bulkhead: maxQueued 1 queues one call (served after the first) and refuses the next', async () => {
    const state = newState();
    const app = await env.gateway({ genApi: { resilience: { maxConcurrent: 1, maxQueued: 1 } } });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'slow', 1);
    const client = await env.client(app);
    const first = client.start(req('bq-1', 'slow'));
    await started(state, 'bq-1');
    const queued = client.start(req('bq-2', 'slow'));
    // Frames on one socket are handled in order: bq-3's refusal comes after bq-2 was queued.
    const refused = await client.call(req('bq-3', 'slow'));
    expect(refused.pushes).toEqual([errorResp('bq-3', UNAVAILABLE, true)]);
    expect(state.events).toEqual(['start bq-1']);
    state.gate.resolve();
    const [r1, r2] = await Promise.all([first.done(), queued.done()]);
    expect(r1.pushes[0]!.success).toBe(true);
    expect(r2.pushes[0]!.success).toBe(true);
    // The queued call started only after the first ended.
    expect(state.events).toEqual(['start bq-1', 'end bq-1', 'start bq-2', 'end bq-2']);
  });

  it('channel maxInflight 2: the third concurrent request gets Service temporarily unavailable (can_retry), other channels are unaffected', async () => {
    const state = newState();
    const app = await env.gateway({ genApi: { maxInflight: 2 } });
    await env.worker(resService('A', state));
    await ready(app, 'res', 'slow', 1);
    const client = await env.client(app);
    const other = await env.client(app, 'user_id=u2');

    const one = client.start(req('mi-1', 'slow'));
    const two = client.start(req('mi-2', 'slow'));
    await Promise.all([started(state, 'mi-1'), started(state, 'mi-2')]);
    const three = await client.call(req('mi-3', 'slow'));
    expect(three.pushes).toEqual([errorResp('mi-3', UNAVAILABLE, true)]);
    expect(three.reply).toEqual({ status: 'ok', response: 'slow' });
    const elsewhere = await other.call(req('mi-other', 'other'));
    expect(elsewhere.pushes[0]!.success).toBe(true);

    state.gate.resolve();
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
    const state = newState();
    const { client } = await setup({ maxConcurrent: 1, maxQueued: 0 }, state);
    const busy = client.start(req('aq-busy', 'slow'));
    await started(state, 'aq-busy');
    const refused = await client.call(req('aq-1', 'slow_async'));
    expect(refused.order).toEqual(['push', 'reply']);
    expect(refused.reply).toEqual({ status: 'ok', response: 'slow_async' });
    // Refused while the busy call still held the slot.
    expect(state.events).toEqual(['start aq-busy']);
    state.gate.resolve();
    await busy.done();
    // A marker through the same bulkhead: a late push for aq-1 would have come before its reply.
    await client.call(req('aq-marker', 'other'));
    expect(client.pushesFor('aq-1')).toEqual([errorResp('aq-1', UNAVAILABLE, true)]);
    expect(calls(state, 'slow')).toBe(1);
  });

  it('async, service breaker open: the error is the first and only push', async () => {
    const state = newState(['*:flaky']);
    const { app, client } = await setup(
      { serviceFailures: 2, instanceFailures: 100, halfOpenAfterMs: 60_000 },
      state,
    );
    for (let i = 0; i < 2; i++) await client.call(req(`ab-${i}`, 'flaky'));
    expect(app.genApi.health().breakers.services.res).toBe('open');
    const refused = await client.call(req('ab-async', 'flaky_async'));
    // A marker (refused by the open breaker as well): anything sent for ab-async came before it.
    await client.call(req('ab-marker', 'other'));
    expect(client.pushesFor('ab-async')).toEqual([errorResp('ab-async', UNAVAILABLE, true)]);
    expect(refused.order).toEqual(['push', 'reply']);
    expect(calls(state, 'flaky')).toBe(2);
  });

  it('async waiting in the bulkhead queue is accepted: ack and reply at once, the result when it ran', async () => {
    const state = newState();
    const { client } = await setup({ maxConcurrent: 1, maxQueued: 1 }, state);
    const busy = client.start(req('aw-busy', 'slow'));
    await started(state, 'aw-busy');
    const queued = client.start(req('aw-1', 'slow_async'), { pushes: 2 });
    // The ack and the reply come while the busy call still holds the only slot.
    await until(
      () => client.log.some((e) => e.kind === 'reply' && e.key === queued.ref),
      'the reply to the queued async call',
    );
    expect(client.pushesFor('aw-1')).toEqual([resp('aw-1', { async: true })]);
    expect(state.events).toEqual(['start aw-busy']);
    state.gate.resolve();
    const done = await queued.done();
    expect(done.pushes).toEqual([
      resp('aw-1', { async: true }),
      resp('aw-1', { result: { label: 'A', rt: 'slow' } }),
    ]);
    expect(done.order).toEqual(['push', 'reply', 'push']);
    expect((await busy.done()).pushes[0]!.success).toBe(true);
    // It ran only after the busy call.
    expect(state.events).toEqual(['start aw-busy', 'end aw-busy', 'start aw-1', 'end aw-1']);
  });

  it('none, bulkhead full: Service temporarily unavailable (can_retry) is pushed, then the reply; the function never runs', async () => {
    const state = newState();
    const { client } = await setup({ maxConcurrent: 1, maxQueued: 0 }, state);
    const busy = client.start(req('nq-busy', 'slow'));
    await started(state, 'nq-busy');
    const refused = await client.call(req('nq-1', 'slow_none'));
    expect(refused.pushes).toEqual([errorResp('nq-1', UNAVAILABLE, true)]);
    expect(refused.order).toEqual(['push', 'reply']);
    expect(refused.reply).toEqual({ status: 'ok', response: 'slow_none' });
    state.gate.resolve();
    await busy.done();
    await client.call(req('nq-marker', 'other'));
    expect(client.pushesFor('nq-1')).toHaveLength(1);
    expect(calls(state, 'slow')).toBe(1);
  });

  it('none, service breaker open: Service temporarily unavailable is pushed, then the reply', async () => {
    const state = newState(['*:flaky']);
    const { app, client } = await setup(
      { serviceFailures: 2, instanceFailures: 100, halfOpenAfterMs: 60_000 },
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
    const state = newState(['*:flaky']);
    const { client } = await setup({}, state);
    const ok = await client.call(req('na-ok', 'slow_none'), { pushes: 0 });
    expect(ok.reply).toEqual({ status: 'ok', response: 'slow_none' });
    // The reply does not wait for the function: it is still held.
    expect(state.events).not.toContain('end na-ok');
    const failed = await client.call(req('na-fail', 'fail_none'), { pushes: 0 });
    expect(failed.reply).toEqual({ status: 'ok', response: 'fail_none' });
    const timedOut = await client.call(req('na-timeout', 'flaky_none'), { pushes: 0 });
    expect(timedOut.reply).toEqual({ status: 'ok', response: 'flaky_none' });
    state.gate.resolve();
    // slow finished, fail_none failed, flaky_none timed out (and its handler gave up).
    await Promise.all(['na-ok', 'na-fail', 'na-timeout'].map((id) => ended(state, id)));
    // A marker: a push the gateway sent for them would be here before the marker's.
    await client.call(req('na-marker', 'other'));
    expect(calls(state, 'slow')).toBe(1);
    expect(calls(state, 'fail_none')).toBe(1);
    expect(calls(state, 'flaky')).toBe(1);
    for (const id of ['na-ok', 'na-fail', 'na-timeout'])
      expect(client.pushesFor(id), id).toEqual([]);
  });

  it('none with no worker to take it (no responders): the reply, then Service temporarily unavailable (can_retry) at once', async () => {
    const state = newState();
    const { worker, client } = await setup({}, state);
    await worker.stop();
    const sentAt = performance.now();
    const ref = client.send(req('nr-1', 'slow_none'));
    const result = await client.collect('nr-1', ref, sentAt, { pushes: 1 });
    expect(result.order).toEqual(['reply', 'push']);
    expect(result.reply).toEqual({ status: 'ok', response: 'slow_none' });
    expect(result.pushes).toEqual([errorResp('nr-1', UNAVAILABLE, true)]);
    // At once: well below the function's 10 s timeout.
    expect(result.ms).toBeLessThan(5_000);
  });
});

describe('exec: many requests in flight on one channel over NATS', () => {
  const env = useExecEnv();

  it('30 concurrent requests on one channel (maxInflight 100) all succeed without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const state = newState();
      state.gate.resolve();
      const app = await env.gateway();
      await env.worker(resService('A', state));
      await ready(app, 'res', 'slow', 1);
      const client = await env.client(app);
      const pending = [];
      for (let i = 0; i < 30; i++) pending.push(client.start(req(`many-${i}`, 'slow')));
      const results = await Promise.all(pending.map((p) => p.done()));
      for (const [i, result] of results.entries())
        expect(result.pushes).toEqual([resp(`many-${i}`, { result: { label: 'A', rt: 'slow' } })]);
      // process.emitWarning emits on the next tick: let it.
      await new Promise((resolve) => setImmediate(resolve));
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

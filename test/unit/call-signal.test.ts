/** src/worker/runtime.ts: a call's signal is made only when its handler asks for it, and then behaves as if it had always existed. */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { RequestContext, RequestMeta } from '../../src/worker/context.js';
import { defineService, fn } from '../../src/worker/define.js';
import { CallSignal, DEADLINE_CODE, runCall } from '../../src/worker/runtime.js';
import { until } from '../support/wait.js';

function meta(deadlineInMs: number): RequestMeta {
  return {
    requestId: 'r1',
    service: 's',
    requestType: 'f',
    version: null,
    userId: 'u1',
    deviceId: null,
    roles: ['a'],
    responseType: 'sync',
    deadline: Date.now() + deadlineInMs,
    gateway: 'g1',
  };
}

/** A function whose handler is `handler`. */
function one(handler: (args: Record<string, unknown>, ctx: RequestContext) => unknown) {
  return defineService({
    name: 's',
    version: '1.0.0',
    functions: { f: fn({ handler: handler }) },
  }).functions.get('f')!;
}

describe('CallSignal and runCall', () => {
  it('a handler that never reads ctx.signal leaves nothing on the caller signal, and sees the whole meta', async () => {
    const parent = new AbortController();
    let seen: RequestContext | null = null;
    const result = await runCall(
      one((args, ctx) => ((seen = ctx), args)),
      { x: 1 },
      meta(1000),
      parent.signal,
    );
    expect(result).toEqual({ ok: true, result: { x: 1 } });
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    expect(seen).toMatchObject({
      requestId: 'r1',
      service: 's',
      requestType: 'f',
      userId: 'u1',
      roles: ['a'],
      gateway: 'g1',
    });
  });

  it('the signal aborts at the deadline; the late result is a 504', async () => {
    const result = await runCall(
      one(async (_args, ctx) => {
        await new Promise((resolve) =>
          ctx.signal.addEventListener('abort', resolve, { once: true }),
        );
        return (ctx.signal.reason as Error).message;
      }),
      {},
      meta(50),
    );
    expect(result).toEqual({ ok: false, error: 'deadline exceeded', code: DEADLINE_CODE });
  });

  it('a handler that settles after its deadline without reading the signal still reports 504', async () => {
    const late = meta(20);
    const result = await runCall(
      // Settles once its deadline has passed (by the clock the runtime reads).
      one(() => until(() => Date.now() > late.deadline, 'the deadline to pass').then(() => 'late')),
      {},
      late,
    );
    expect(result).toEqual({ ok: false, error: 'deadline exceeded', code: DEADLINE_CODE });
  });

  it('read after the deadline, after the caller aborted, or after cancel, the signal is already aborted', () => {
    const late = new CallSignal(Date.now() - 1);
    expect(late.signal.aborted).toBe(true);
    const parent = new AbortController();
    parent.abort(new Error('client left'));
    expect(new CallSignal(Date.now() + 1000, parent.signal).signal.reason).toEqual(
      new Error('client left'),
    );
    const cancelled = new CallSignal(Date.now() + 1000);
    cancelled.cancel(new Error('stopping'));
    expect(cancelled.signal.reason).toEqual(new Error('stopping'));
    cancelled.dispose();
  });

  it('once read, it follows the caller signal and cancel; dispose removes its listener and timer', () => {
    const parent = new AbortController();
    const call = new CallSignal(Date.now() + 1000, parent.signal);
    const signal = call.signal;
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    parent.abort(new Error('gone'));
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toEqual(new Error('gone'));
    call.dispose();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);

    const stopped = new CallSignal(Date.now() + 1000);
    const s2 = stopped.signal;
    stopped.cancel(new Error('service stopping'));
    expect(s2.reason).toEqual(new Error('service stopping'));
    stopped.dispose();
  });
});

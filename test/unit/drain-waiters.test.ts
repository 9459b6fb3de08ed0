/** DrainWaiters: waits on a send buffer woken by the transport's drain reports, never by a timer. */
import { describe, expect, it } from 'vitest';
import { DrainWaiters } from '../../src/util/drain-waiters.js';

/** Settles `promise` into a flag the test reads after letting microtasks run. */
function track(promise: Promise<void>): { done: boolean } {
  const state = { done: false };
  promise.then(
    () => (state.done = true),
    () => undefined,
  );
  return state;
}

const microtasks = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('DrainWaiters', () => {
  it('wakes a waiter only once a report meets its level', async () => {
    const waiters = new DrainWaiters();
    const wait = track(waiters.wait(100, new AbortController().signal));
    waiters.drained(150);
    await microtasks();
    expect(wait.done).toBe(false);
    expect(waiters.size).toBe(1);
    waiters.drained(100);
    await microtasks();
    expect(wait.done).toBe(true);
    expect(waiters.size).toBe(0);
  });

  it('wakes each waiter at its own level', async () => {
    const waiters = new DrainWaiters();
    const low = track(waiters.wait(10, new AbortController().signal));
    const high = track(waiters.wait(1_000, new AbortController().signal));
    waiters.drained(500);
    await microtasks();
    expect([low.done, high.done]).toEqual([false, true]);
    waiters.drained(0);
    await microtasks();
    expect([low.done, high.done]).toEqual([true, true]);
  });

  it('an abort wakes the waiter and forgets it; an aborted signal resolves at once', async () => {
    const waiters = new DrainWaiters();
    const controller = new AbortController();
    const wait = track(waiters.wait(0, controller.signal));
    controller.abort();
    await microtasks();
    expect(wait.done).toBe(true);
    expect(waiters.size).toBe(0);
    const late = track(waiters.wait(0, controller.signal));
    await microtasks();
    expect(late.done).toBe(true);
    expect(waiters.size).toBe(0);
  });

  it('releaseAll wakes every waiter (the connection ended)', async () => {
    const waiters = new DrainWaiters();
    const a = track(waiters.wait(0, new AbortController().signal));
    const b = track(waiters.wait(5, new AbortController().signal));
    waiters.releaseAll();
    await microtasks();
    expect([a.done, b.done]).toEqual([true, true]);
    expect(waiters.size).toBe(0);
  });
});

/**
 * Outlier ejection of stalled instances (src/genapi/select/stall.ts, `resilience.stallAfterMs`)
 * with a manual clock: exact outcomes, no real time.
 */
import { describe, expect, it } from 'vitest';
import { StallDetector } from '../../../src/genapi/select/stall.js';
import {
  Resilience,
  RESILIENCE_DEFAULTS,
  TransportFailureError,
} from '../../../src/genapi/resilience.js';
import { OutOfRangeError } from '../../../src/errors.js';
import type { ServiceInstance } from '../../../src/genapi/types.js';
import { manualClock } from '../../support/clock.js';

const inst = (id: string) => ({ id }) as ServiceInstance;
const ids = (order: ServiceInstance[]) => order.map((i) => i.id);

describe('StallDetector', () => {
  it('an instance holding a call for stallAfterMs with no answer since is stalled; an answer clears it', () => {
    const clock = manualClock(1_000);
    const d = new StallDetector(500, clock.now);
    const call = d.begin('a');
    clock.advance(499);
    expect(d.stalled('a')).toBe(false);
    clock.advance(1);
    expect(d.stalled('a')).toBe(true);
    expect(d.stalledInstances()).toEqual(['a']);
    // Any answer (even to another call) proves it is not frozen.
    const other = d.begin('a');
    d.end('a', other, true);
    expect(d.stalled('a')).toBe(false);
    clock.advance(500);
    expect(d.stalled('a')).toBe(true);
    d.end('a', call, true);
    expect(d.stalled('a')).toBe(false);
    // Idle and answered: nothing is kept.
    expect(d.size).toBe(0);
  });

  it('a busy instance that keeps answering is never stalled, however long one call takes', () => {
    const clock = manualClock();
    const d = new StallDetector(500, clock.now);
    d.begin('a'); // a long call, never answered in this test
    for (let i = 0; i < 20; i++) {
      const quick = d.begin('a');
      clock.advance(100);
      d.end('a', quick, true);
      expect(d.stalled('a')).toBe(false);
    }
  });

  it('calls that end unanswered (timeout, instance lost) do not clear a stall', () => {
    const clock = manualClock();
    const d = new StallDetector(500, clock.now);
    const first = d.begin('a');
    const second = d.begin('a');
    clock.advance(600);
    d.end('a', first, false);
    expect(d.stalled('a')).toBe(true);
    d.end('a', second, false);
    // Nothing held now: not stalled (there is nothing to wait for), but not forgotten either.
    expect(d.stalled('a')).toBe(false);
    const third = d.begin('a');
    clock.advance(500);
    expect(d.stalled('a')).toBe(true);
    d.end('a', third, true);
    expect(d.stalled('a')).toBe(false);
  });

  it('reorder moves stalled instances last, keeping both groups in their order; all stalled → unchanged', () => {
    const clock = manualClock();
    const d = new StallDetector(500, clock.now);
    const order = [inst('a'), inst('b'), inst('c'), inst('d')];
    expect(d.reorder(order)).toBe(order);
    d.begin('a');
    d.begin('c');
    clock.advance(500);
    expect(ids(d.reorder(order))).toEqual(['b', 'd', 'a', 'c']);
    d.begin('b');
    d.begin('d');
    clock.advance(500);
    expect(ids(d.reorder(order))).toEqual(['a', 'b', 'c', 'd']);
  });

  it('stallAfterMs 0 turns it off', () => {
    const clock = manualClock();
    const d = new StallDetector(0, clock.now);
    const call = d.begin('a');
    clock.advance(60_000);
    expect(d.stalled('a')).toBe(false);
    d.end('a', call, false);
    expect(d.size).toBe(0);
  });

  it('forget drops a gone instance; its late calls end as no-ops', () => {
    const clock = manualClock();
    const d = new StallDetector(500, clock.now);
    const call = d.begin('a');
    d.forget('a');
    d.end('a', call, false);
    expect(d.size).toBe(0);
    expect(d.stalled('a')).toBe(false);
  });
});

describe('Resilience', () => {
  it('forgetInstance forgets the stall record too; instanceHealthy follows the breaker', async () => {
    const clock = manualClock();
    const r = new Resilience({ ...RESILIENCE_DEFAULTS, instanceFailures: 1 }, clock.now);
    r.stalls.begin('a');
    expect(r.stalls.size).toBe(1);
    r.forgetInstance('a');
    expect(r.stalls.size).toBe(0);
    expect(r.instanceHealthy('b')).toBe(true);
    await expect(
      r.instance('b').execute(() => {
        throw new TransportFailureError('timed out');
      }),
    ).rejects.toThrow('timed out');
    expect(r.instanceHealthy('b')).toBe(false);
  });

  it('reviveService closes an open service breaker only for a healthy instance that was not sick when it opened', async () => {
    const r = new Resilience({ ...RESILIENCE_DEFAULTS, serviceFailures: 1, instanceFailures: 1 });
    const fail = () => {
      throw new TransportFailureError('timed out');
    };
    await expect(r.instance('a').execute(fail)).rejects.toThrow('timed out');
    r.noteServiceFailure('svc', [inst('a')]);
    await expect(r.service('svc').execute(fail)).rejects.toThrow('timed out');
    expect(r.snapshot().services.svc).toBe('open');
    // a was sick when it opened: no revival.
    r.reviveService('svc', [inst('a')]);
    expect(r.snapshot().services.svc).toBe('open');
    // a new instance with an open breaker is not healthy either.
    await expect(r.instance('b').execute(fail)).rejects.toThrow('timed out');
    r.reviveService('svc', [inst('a'), inst('b')]);
    expect(r.snapshot().services.svc).toBe('open');
    // a came back after discovery forgot it: healthy and not in the sick set any more.
    r.forgetInstance('a');
    r.reviveService('svc', [inst('a'), inst('b')]);
    expect(r.snapshot().services.svc).toBeUndefined();
    expect(r.service('svc').state).toBe(0);
  });

  it('refuses a stallAfterMs that is negative or not a number', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => new Resilience({ ...RESILIENCE_DEFAULTS, stallAfterMs: bad })).toThrow(
        OutOfRangeError,
      );
  });
});

/**
 * The per-function sliding window behind the dashboard's gen_api table, on a manual clock: rates
 * over the part of the window watched, outcomes, p50/p99 within the histogram's ±5 %, the window
 * sliding, the `maxFunctions` bound and idle functions giving their place back.
 */
import { describe, expect, it } from 'vitest';
import {
  LATENCY_BUCKETS,
  LATENCY_MAX_MS,
  latencyBucket,
  latencyQuantile,
} from '../../src/dashboard/latency-histogram.js';
import { OTHER_FUNCTIONS, RequestWindow } from '../../src/dashboard/request-window.js';
import { TopK } from '../../src/dashboard/top.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const call = (fn: string, durationMs: number, outcome = 'ok') => ({
  service: 'svc',
  function: fn,
  outcome,
  durationMs,
});

describe('latency histogram', () => {
  it('quantiles are within 5 % of the exact ones, from microseconds to minutes', () => {
    for (const values of [
      Array.from({ length: 1000 }, (_, i) => 0.02 + i * 0.001),
      Array.from({ length: 1000 }, (_, i) => (i + 1) * 3.7),
      Array.from({ length: 999 }, (_, i) => 10 ** (1 + (i % 4))).concat([60_000]),
    ]) {
      const buckets = new Uint32Array(LATENCY_BUCKETS);
      for (const v of values) buckets[latencyBucket(v)]!++;
      const sorted = [...values].sort((a, b) => a - b);
      for (const q of [0.5, 0.99]) {
        const exact = sorted[Math.ceil(q * sorted.length) - 1]!;
        const estimate = latencyQuantile(buckets, values.length, q)!;
        expect(Math.abs(estimate - exact) / exact).toBeLessThanOrEqual(0.05);
      }
    }
  });

  it('empty is null; nonsense and huge durations land in the end buckets', () => {
    expect(latencyQuantile(new Uint32Array(LATENCY_BUCKETS), 0, 0.5)).toBeNull();
    expect(latencyBucket(Number.NaN)).toBe(0);
    expect(latencyBucket(-5)).toBe(0);
    expect(latencyBucket(1e9)).toBe(LATENCY_BUCKETS - 1);
    const buckets = new Uint32Array(LATENCY_BUCKETS);
    buckets[LATENCY_BUCKETS - 1] = 1;
    expect(latencyQuantile(buckets, 1, 0.99)).toBe(LATENCY_MAX_MS);
  });
});

describe('RequestWindow', () => {
  it('counts outcomes and rates over the seconds watched, busiest first', () => {
    const c = clock();
    const window = new RequestWindow(10_000, 100, c.now);
    for (let i = 0; i < 4; i++) window.record(call('a', 10));
    window.record(call('a', 10, 'timeout'));
    window.record(call('b', 2));
    c.advance(1_000);
    for (let i = 0; i < 5; i++) window.record(call('a', 20));
    const [a, b] = window.figures();
    // 10 calls of "a" in the 2 seconds watched so far.
    expect(a).toMatchObject({
      service: 'svc',
      function: 'a',
      count: 10,
      rate: 5,
      outcomes: { ok: 9, timeout: 1 },
      errors: 1,
    });
    // Within the histogram's ±5 %.
    expect(a!.p50Ms).toBeGreaterThanOrEqual(9.5);
    expect(a!.p50Ms).toBeLessThanOrEqual(10.5);
    expect(a!.p99Ms).toBeGreaterThanOrEqual(19);
    expect(a!.p99Ms).toBeLessThanOrEqual(21);
    expect(b).toMatchObject({ function: 'b', count: 1, rate: 0.5, errors: 0 });
    // An outcome the window does not know counts as an error.
    window.record(call('b', 2, 'some_new_outcome'));
    expect(window.figures()[1]).toMatchObject({ count: 2, outcomes: { ok: 1, error: 1 } });
  });

  it('slides: seconds older than the window drop out, and a function idle for a window is forgotten', () => {
    const c = clock();
    const window = new RequestWindow(3_000, 100, c.now);
    window.record(call('old', 1));
    c.advance(1_000);
    window.record(call('new', 1));
    c.advance(1_000);
    expect(window.figures().map((f) => f.function)).toEqual(['old', 'new']);
    c.advance(1_000); // "old" was 3 s ago: out of a 3 s window
    expect(window.figures().map((f) => [f.function, f.count, f.rate])).toEqual([['new', 1, 0.33]]);
    expect(window.size).toBe(1);
    c.advance(2_000);
    expect(window.figures()).toEqual([]);
    expect(window.size).toBe(0);
  });

  it('tracks at most maxFunctions; the rest share the (other) row until places free up', () => {
    const c = clock();
    const window = new RequestWindow(2_000, 2, c.now);
    for (const fn of ['f1', 'f2', 'f3', 'f4', 'f4']) window.record(call(fn, 1));
    expect(window.size).toBe(2);
    expect(window.figures().map((f) => [f.service, f.function, f.count])).toEqual([
      [OTHER_FUNCTIONS, OTHER_FUNCTIONS, 3],
      ['svc', 'f1', 1],
      ['svc', 'f2', 1],
    ]);
    c.advance(2_000);
    expect(window.figures()).toEqual([]);
    window.record(call('f3', 1));
    expect(window.figures().map((f) => f.function)).toEqual(['f3']);
  });
});

describe('TopK', () => {
  it('keeps the k best, best first', () => {
    const top = new TopK<number>(3, (a, b) => b - a);
    for (const n of [5, 1, 9, 7, 3, 9, 2]) top.offer(n);
    expect(top.list()).toEqual([9, 9, 7]);
    const none = new TopK<number>(0, (a, b) => b - a);
    none.offer(1);
    expect(none.list()).toEqual([]);
  });
});

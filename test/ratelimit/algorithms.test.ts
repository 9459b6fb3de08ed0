/**
 * The four rate-limit algorithms as pure state machines, driven by an injected fake clock (plain
 * numbers passed as `now`): table-driven rows of (time, cost, allowed, remaining, resetMs,
 * retryAfterMs), the §5 A acceptance cases of spec/rate-limiting.md (1, 2, 4, 5, 6, 7, 8, 13),
 * window-end exclusivity, refund / apply (remote hits at their origin time), encode / decode and
 * horizons.
 */
import { describe, expect, it } from 'vitest';
import {
  createAlgorithm,
  FixedWindow,
  Gcra,
  SlidingLog,
  SlidingWindow,
} from '../../src/ratelimit/algorithms/index.js';
import {
  ALGORITHMS,
  ceilMs,
  emptyDecision,
  NeverSatisfiableError,
  type Algorithm,
  type Decision,
} from '../../src/ratelimit/types.js';

/** time, cost → allowed, remaining, resetMs, retryAfterMs */
type Row = readonly [
  time: number,
  cost: number,
  allowed: boolean,
  remaining: number,
  resetMs: number,
  retryAfterMs: number,
];

/** Runs rows against one state: peek, and commit when allowed (as the limiter does). */
function runTable<S>(
  algorithm: Algorithm<S>,
  rows: readonly Row[],
  state: S = algorithm.create(),
): S {
  rows.forEach(([time, cost, allowed, remaining, resetMs, retryAfterMs], row) => {
    const out = emptyDecision();
    algorithm.peek(state, time, cost, out);
    if (out.allowed) algorithm.commit(state, time, cost);
    expect({
      row,
      time,
      cost,
      allowed: out.allowed,
      remaining: out.remaining,
      resetMs: out.resetMs,
      retryAfterMs: out.retryAfterMs,
    }).toEqual({
      row,
      time,
      cost,
      allowed,
      remaining,
      resetMs,
      retryAfterMs,
    });
    expect(out.limit).toBe(algorithm.limit);
    expect(out.windowMs).toBe(algorithm.windowMs);
  });
  return state;
}

/** One request: peek, commit when allowed; returns a copy of the decision. */
function attempt<S>(algorithm: Algorithm<S>, state: S, now: number, cost = 1): Decision {
  const out = emptyDecision();
  algorithm.peek(state, now, cost, out);
  if (out.allowed) algorithm.commit(state, now, cost);
  return { ...out };
}

/** Peek without committing. */
function look<S>(algorithm: Algorithm<S>, state: S, now: number, cost = 1): Decision {
  const out = emptyDecision();
  algorithm.peek(state, now, cost, out);
  return out;
}

/** The largest number of `times` (sorted) inside any trailing window (t − w, t]. */
function maxInAnyWindow(times: readonly number[], windowMs: number): number {
  let max = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[start]! <= times[end]! - windowMs) start++;
    max = Math.max(max, end - start + 1);
  }
  return max;
}

const rows = (count: number, make: (i: number) => Row): Row[] =>
  Array.from({ length: count }, (_, i) => make(i));

describe('ceilMs: waits are rounded up, never down', () => {
  it.each([
    [0, 0],
    [-5, 0],
    [0.2, 1],
    [0.1 + 0.2, 1],
    [1, 1],
    [999.0001, 1000],
    [999.9999999, 1000],
    [1000, 1000],
    [1000.001, 1001],
    [333.3333333333333, 334],
  ])('ceilMs(%s) = %s', (input, expected) => {
    expect(ceilMs(input)).toBe(expected);
  });
});

describe('sliding log', () => {
  it('spec 1: 10 per 1 s, 15 requests at t=0 → exactly 10; the 11th reports r=0, retryAfter 1000; t=1000 is allowed (window end exclusive)', () => {
    const log = new SlidingLog(10, 1000);
    runTable(log, [
      ...rows(10, (i): Row => [0, 1, true, 9 - i, 1000, 0]),
      ...rows(5, (): Row => [0, 1, false, 0, 1000, 1000]),
      [999, 1, false, 0, 1, 1],
      [1000, 1, true, 9, 1000, 0],
    ]);
  });

  it('spaced hits and costs: remaining, reset (oldest hit leaving) and retry (enough hits leaving for the cost)', () => {
    runTable(new SlidingLog(3, 1000), [
      [0, 1, true, 2, 1000, 0],
      [200, 1, true, 1, 800, 0],
      [400, 1, true, 0, 600, 0],
      [500, 1, false, 0, 500, 500],
      // cost 2 needs the two oldest (t=0 and t=200) to leave: 200 + 1000 − 500
      [500, 2, false, 0, 500, 700],
      [999, 1, false, 0, 1, 1],
      // t=0 left at exactly t=1000 (exclusive end)
      [1000, 1, true, 0, 200, 0],
      [1000, 1, false, 0, 200, 200],
      // t=200 left: hits at 400 and 1000 remain; cost 2 waits for t=400 to leave
      [1200, 2, false, 1, 200, 200],
      [1400, 2, true, 0, 600, 0],
    ]);
  });

  it('window end is exclusive: a hit at t counts while t > now − window', () => {
    const log = new SlidingLog(1, 1000);
    const state = log.create();
    expect(attempt(log, state, 5000).allowed).toBe(true);
    expect(attempt(log, state, 5999)).toMatchObject({
      allowed: false,
      retryAfterMs: 1,
      resetMs: 1,
    });
    expect(attempt(log, state, 6000)).toMatchObject({ allowed: true, remaining: 0, resetMs: 1000 });
  });

  it('spec 2: 100 per 60 s, 100 at t=59.9 s then 100 at t=60.1 s → none of the second batch', () => {
    const log = new SlidingLog(100, 60_000);
    const state = log.create();
    const first = Array.from({ length: 100 }, () => attempt(log, state, 59_900));
    expect(first.filter((d) => d.allowed)).toHaveLength(100);
    const second = Array.from({ length: 100 }, () => attempt(log, state, 60_100));
    expect(second.filter((d) => d.allowed)).toHaveLength(0);
    // The batch at 59.9 s leaves at 119.9 s: retry 59.8 s from 60.1 s
    expect(second[0]).toMatchObject({ remaining: 0, retryAfterMs: 59_800 });
    expect(attempt(log, state, 119_899).allowed).toBe(false);
    expect(attempt(log, state, 119_900).allowed).toBe(true);
  });

  it('spec 2 contrast (documented): the same traffic under a fixed window admits the whole second batch (2N across the boundary)', () => {
    const fixed = new FixedWindow(100, 60_000);
    const state = fixed.create();
    const first = Array.from({ length: 100 }, () => attempt(fixed, state, 59_900));
    const second = Array.from({ length: 100 }, () => attempt(fixed, state, 60_100));
    expect(first.filter((d) => d.allowed)).toHaveLength(100);
    expect(second.filter((d) => d.allowed)).toHaveLength(100);
    // 200 allowed within 200 ms, against a limit of 100 per 60 s
    expect(
      maxInAnyWindow(
        [...Array<number>(100).fill(59_900), ...Array<number>(100).fill(60_100)],
        60_000,
      ),
    ).toBe(200);
  });

  it('spec 8: denied requests consume nothing (30 in the first 100 ms → 10 timestamps stored; 10 more at t=1000)', () => {
    const log = new SlidingLog(10, 1000);
    const state = log.create();
    const allowed: number[] = [];
    for (let i = 0; i < 30; i++) {
      const now = i < 10 ? 0 : Math.round(((i - 9) * 100) / 21); // 10 at t=0, then 20 spread over (0, 100)
      if (attempt(log, state, now).allowed) allowed.push(now);
    }
    expect(allowed).toEqual(Array<number>(10).fill(0));
    expect(log.encode(state)).toHaveLength(10);
    const later = Array.from({ length: 11 }, () => attempt(log, state, 1000));
    expect(later.slice(0, 10).every((d) => d.allowed)).toBe(true);
    expect(later[10]).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 1000 });
  });

  it('a denial with a cost waits for the (used + cost − limit)-th oldest hit to leave', () => {
    const log = new SlidingLog(5, 1000);
    const state = log.create();
    for (const t of [0, 100, 200, 300, 400]) attempt(log, state, t);
    expect(look(log, state, 500, 1)).toMatchObject({
      allowed: false,
      retryAfterMs: 500,
      remaining: 0,
    });
    expect(look(log, state, 500, 3)).toMatchObject({ allowed: false, retryAfterMs: 700 });
    expect(look(log, state, 500, 5)).toMatchObject({ allowed: false, retryAfterMs: 900 });
    expect(look(log, state, 1200, 3)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('refund removes the newest hit recorded at that time; unknown times change nothing', () => {
    const log = new SlidingLog(3, 1000);
    const state = log.create();
    attempt(log, state, 100);
    attempt(log, state, 200);
    attempt(log, state, 200);
    log.refund(state, 200, 1);
    expect(log.encode(state)).toEqual([100, 200]);
    log.refund(state, 150, 1);
    expect(log.encode(state)).toEqual([100, 200]);
    log.refund(state, 200, 2); // only one left at 200
    expect(log.encode(state)).toEqual([100]);
    expect(look(log, state, 300)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('apply: remote hits at their origin time, inserted in time order (out-of-order arrivals)', () => {
    const log = new SlidingLog(4, 1000);
    const state = log.create();
    attempt(log, state, 500);
    log.apply(state, 300, 1);
    log.apply(state, 100, 1);
    log.apply(state, 400, 1);
    expect(log.encode(state)).toEqual([100, 300, 400, 500]);
    // The remote hit at 100 expires at 1100, not 1000 + arrival time
    expect(look(log, state, 1099)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    expect(look(log, state, 1100)).toMatchObject({ allowed: true, remaining: 0, resetMs: 200 });
  });

  it('apply: stale hits (older than the window) are trimmed and never count', () => {
    const log = new SlidingLog(2, 1000);
    const state = log.create();
    log.apply(state, -5000, 1);
    log.apply(state, -1000, 1);
    expect(attempt(log, state, 0)).toMatchObject({ allowed: true, remaining: 1 });
    expect(log.encode(state)).toEqual([0]);
  });

  it('apply on a full ring keeps the newest hits (decisions stay exact); older ones are ignored', () => {
    const log = new SlidingLog(2, 1000);
    const state = log.create();
    attempt(log, state, 100);
    attempt(log, state, 200);
    log.apply(state, 50, 1); // older than everything kept: cannot change a decision
    expect(log.encode(state)).toEqual([100, 200]);
    log.apply(state, 150, 1); // true hits 100, 150, 200: the ring keeps 150, 200
    expect(log.encode(state)).toEqual([150, 200]);
    // 3 hits in the window against a limit of 2: two must leave (100 and 150) → 1150 − 300
    expect(look(log, state, 300)).toMatchObject({ allowed: false, retryAfterMs: 850 });
  });

  it('encode/decode: round trip through JSON, sorting, and at most `limit` newest entries', () => {
    const log = new SlidingLog(3, 1000);
    const state = log.create();
    for (const t of [10, 20, 30]) attempt(log, state, t);
    const copy = log.decode(JSON.parse(JSON.stringify(log.encode(state))));
    expect(copy).not.toBeNull();
    expect(log.encode(copy!)).toEqual([10, 20, 30]);
    expect(look(log, copy!, 500)).toEqual(look(log, state, 500));
    expect(log.encode(log.decode([30, 10, 20])!)).toEqual([10, 20, 30]);
    expect(log.encode(log.decode([1, 2, 3, 4, 5])!)).toEqual([3, 4, 5]);
    expect(log.encode(log.decode([])!)).toEqual([]);
  });

  it.each([
    [null],
    [undefined],
    ['[1,2]'],
    [{ 0: 1 }],
    [[1, '2']],
    [[Number.NaN]],
    [[Number.POSITIVE_INFINITY]],
    [[[1]]],
    [[null]],
    [42],
  ])('decode rejects garbage: %j', (value) => {
    expect(new SlidingLog(3, 1000).decode(value)).toBeNull();
  });
});

describe('sliding window counter', () => {
  it('table: previous window weighed by its remaining share; retry inside the window or in the next', () => {
    runTable(new SlidingWindow(10, 1000), [
      ...rows(10, (i): Row => [0, 1, true, 9 - i, 1000, 0]),
      // Full: the current count becomes the previous window, 1 − 9/10 of the next window in
      [0, 1, false, 0, 1000, 1100],
      // prev 10 weighs 10·(1 − 0/1000): room after 100 ms
      [1000, 1, false, 0, 1000, 100],
      [1099, 1, false, 0, 901, 1],
      [1100, 1, true, 0, 900, 0],
      [1100, 1, false, 0, 900, 100],
      // 10·0.5 + 1 = 6 counted
      [1500, 1, true, 3, 500, 0],
      // prev 2 (1000..1999), weight 0.5 → 1 counted
      [2500, 1, true, 8, 500, 0],
      // two windows idle: nothing counts
      [5000, 1, true, 9, 1000, 0],
    ]);
  });

  it('fractional waits round up: 3 per 1 s full at t=0 → at t=1000 retry ceil(333.3) = 334', () => {
    const sw = new SlidingWindow(3, 1000);
    const state = sw.create();
    for (let i = 0; i < 3; i++) attempt(sw, state, 0);
    expect(look(sw, state, 1000)).toMatchObject({ allowed: false, retryAfterMs: 334 });
    expect(look(sw, state, 1333).allowed).toBe(false);
    expect(look(sw, state, 1334).allowed).toBe(true);
  });

  it('spec 4: uniform offered load of 2× the limit over 20 windows → allowed per window within ±2 % of N', () => {
    const limit = 100;
    const sw = new SlidingWindow(limit, 1000);
    const state = sw.create();
    const perWindow = Array<number>(20).fill(0);
    const times: number[] = [];
    for (let t = 0; t < 20_000; t += 5) {
      if (attempt(sw, state, t).allowed) {
        perWindow[Math.floor(t / 1000)]!++;
        times.push(t);
      }
    }
    for (const count of perWindow) {
      expect(count).toBeGreaterThanOrEqual(limit * 0.98);
      expect(count).toBeLessThanOrEqual(limit * 1.02);
    }
    expect(maxInAnyWindow(times, 1000)).toBeLessThanOrEqual(limit * 1.02);
  });

  it('spec 4: the documented adversarial pattern (previous window’s hits at its very end) stays ≤ 2N, but exceeds N', () => {
    const limit = 100;
    const sw = new SlidingWindow(limit, 1000);
    const state = sw.create();
    const times: number[] = [];
    for (let i = 0; i < limit; i++) if (attempt(sw, state, 999).allowed) times.push(999);
    for (let t = 1000; t < 4000; t++) if (attempt(sw, state, t).allowed) times.push(t);
    const worst = maxInAnyWindow(times, 1000);
    expect(worst).toBeLessThanOrEqual(2 * limit);
    // The approximation is real (this is why the sliding log is the default)
    expect(worst).toBeGreaterThan(1.5 * limit);
  });

  it('refund takes back from the window the hit was in; apply adds remote hits to their window', () => {
    const sw = new SlidingWindow(10, 1000);
    const state = sw.create();
    attempt(sw, state, 500);
    attempt(sw, state, 1500, 3);
    expect(sw.encode(state)).toEqual([1000, 1, 3]);
    sw.refund(state, 1500, 1);
    expect(sw.encode(state)).toEqual([1000, 1, 2]);
    sw.refund(state, 500, 5); // previous window, clamped at 0
    expect(sw.encode(state)).toEqual([1000, 0, 2]);
    sw.refund(state, -1500, 1); // older: nothing to take back
    expect(sw.encode(state)).toEqual([1000, 0, 2]);
    sw.apply(state, 900, 2); // remote hit in the previous window
    sw.apply(state, 1200, 1); // in the current one
    sw.apply(state, -3000, 4); // stale: ignored
    expect(sw.encode(state)).toEqual([1000, 2, 3]);
    sw.apply(state, 2100, 1); // a newer window: rolls forward
    expect(sw.encode(state)).toEqual([2000, 3, 1]);
  });

  it('encode/decode round trip; decode rejects garbage', () => {
    const sw = new SlidingWindow(10, 1000);
    const state = sw.create();
    attempt(sw, state, 500, 4);
    attempt(sw, state, 1200, 2);
    const copy = sw.decode(JSON.parse(JSON.stringify(sw.encode(state))))!;
    expect(sw.encode(copy)).toEqual([1000, 4, 2]);
    expect(look(sw, copy, 1700)).toEqual(look(sw, state, 1700));
    for (const garbage of [
      null,
      3,
      'x',
      [],
      [1, 2],
      [1, 2, 3, 4],
      [1, '2', 3],
      [1, Number.NaN, 3],
      { start: 0, prev: 0, curr: 0 },
    ]) {
      expect(sw.decode(garbage)).toBeNull();
    }
  });
});

describe('GCRA', () => {
  it('spec 5: rate 10/s, burst 5 → 5 at t=0, the 6th denied with retryAfter 100 ms, one more at t=100', () => {
    runTable(new Gcra(10, 1000, 5), [
      ...rows(5, (i): Row => [0, 1, true, 4 - i, 100, 0]),
      [0, 1, false, 0, 100, 100],
      [99, 1, false, 0, 1, 1],
      [100, 1, true, 0, 100, 0],
      [100, 1, false, 0, 100, 100],
      [150, 1, false, 0, 50, 50],
      // idle long enough: the full burst is back
      [1000, 1, true, 4, 100, 0],
    ]);
  });

  it('spec 5: a steady offered 20/s for 10 s → 100 + 5 (±1) allowed', () => {
    const gcra = new Gcra(10, 1000, 5);
    const state = gcra.create();
    let allowed = 0;
    for (let t = 0; t < 10_000; t += 50) if (attempt(gcra, state, t).allowed) allowed++;
    expect(allowed).toBeGreaterThanOrEqual(104);
    expect(allowed).toBeLessThanOrEqual(106);
  });

  it('spec 6: 2 tokens remaining and cost 3 → denied with the state unchanged; a following cost-2 request is allowed', () => {
    const gcra = new Gcra(10, 1000, 5);
    const state = runTable(gcra, [
      [0, 1, true, 4, 100, 0],
      [0, 1, true, 3, 100, 0],
      [0, 1, true, 2, 100, 0],
    ]);
    const before = gcra.encode(state);
    expect(attempt(gcra, state, 0, 3)).toMatchObject({
      allowed: false,
      remaining: 2,
      retryAfterMs: 100,
    });
    expect(gcra.encode(state)).toBe(before);
    expect(attempt(gcra, state, 0, 2)).toMatchObject({ allowed: true, remaining: 0 });
    expect(attempt(gcra, state, 0, 1)).toMatchObject({
      allowed: false,
      remaining: 0,
      retryAfterMs: 100,
    });
  });

  it('burst defaults to the limit', () => {
    const gcra = createAlgorithm('gcra', 4, 1000) as Gcra;
    expect(gcra.burst).toBe(4);
    const state = gcra.create();
    expect(Array.from({ length: 5 }, () => attempt(gcra, state, 0).allowed)).toEqual([
      true,
      true,
      true,
      true,
      false,
    ]);
  });

  it('fractional intervals: 3 per 1 s (T = 333.3 ms) → retry ceil(333.3) = 334, never 333', () => {
    const gcra = new Gcra(3, 1000);
    const state = gcra.create();
    for (let i = 0; i < 3; i++) expect(attempt(gcra, state, 0).allowed).toBe(true);
    const denied = look(gcra, state, 0);
    expect(denied).toMatchObject({ allowed: false, retryAfterMs: 334, resetMs: 334 });
    expect(look(gcra, state, 333)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    expect(look(gcra, state, 334).allowed).toBe(true);
  });

  it('refund moves TAT back by cost·T but never before the hit time', () => {
    const gcra = new Gcra(10, 1000, 5);
    const state = gcra.create();
    attempt(gcra, state, 1000, 3);
    expect(gcra.encode(state)).toBe(1300);
    gcra.refund(state, 1000, 1);
    expect(gcra.encode(state)).toBe(1200);
    gcra.refund(state, 1000, 5);
    expect(gcra.encode(state)).toBe(1000);
    expect(look(gcra, state, 1000)).toMatchObject({ allowed: true, remaining: 4 });
  });

  it('apply: a remote hit at its origin time is a commit at that time (not at arrival)', () => {
    const gcra = new Gcra(10, 1000, 5);
    const remote = gcra.create();
    gcra.apply(remote, 400, 2);
    const local = gcra.create();
    gcra.commit(local, 400, 2);
    expect(gcra.encode(remote)).toBe(gcra.encode(local));
    expect(gcra.encode(remote)).toBe(600);
    // Arriving at t=900, the hit from t=400 has already drained
    expect(look(gcra, remote, 900)).toMatchObject({ allowed: true, remaining: 4 });
    // An old hit applied to an idle state leaves nothing behind once drained
    const idle = gcra.create();
    gcra.apply(idle, 10_000, 1);
    expect(look(gcra, idle, 20_000)).toEqual(look(gcra, gcra.create(), 20_000));
    // Out of order (a hit older than TAT arriving late) still costs one interval: a conservative
    // upper bound of the merged order, never an under-count
    const busy = gcra.create();
    gcra.commit(busy, 1000, 3);
    gcra.apply(busy, 950, 1);
    expect(gcra.encode(busy)).toBe(1400);
  });

  it('encode/decode round trip; decode rejects garbage', () => {
    const gcra = new Gcra(10, 1000, 5);
    const state = gcra.create();
    attempt(gcra, state, 123.5, 2);
    const copy = gcra.decode(JSON.parse(JSON.stringify(gcra.encode(state))))!;
    expect(copy).toEqual(state);
    expect(look(gcra, copy, 200)).toEqual(look(gcra, state, 200));
    for (const garbage of [
      null,
      undefined,
      '5',
      [5],
      { tat: 5 },
      Number.NaN,
      Number.POSITIVE_INFINITY,
      true,
    ])
      expect(gcra.decode(garbage)).toBeNull();
  });
});

describe('fixed window', () => {
  it('table: aligned windows, reset at the window end', () => {
    runTable(new FixedWindow(3, 1000), [
      [0, 1, true, 2, 1000, 0],
      [250, 1, true, 1, 750, 0],
      [500, 1, true, 0, 500, 0],
      [600, 1, false, 0, 400, 400],
      [999, 2, false, 0, 1, 1],
      [1000, 1, true, 2, 1000, 0],
      [1500, 2, true, 0, 500, 0],
      [1700, 1, false, 0, 300, 300],
      [7250, 3, true, 0, 750, 0],
    ]);
  });

  it('a fractional wait rounds up (999.5 → 1 ms, not 0)', () => {
    const fixed = new FixedWindow(1, 1000);
    const state = fixed.create();
    attempt(fixed, state, 0);
    expect(look(fixed, state, 999.5)).toMatchObject({
      allowed: false,
      retryAfterMs: 1,
      resetMs: 1,
    });
    expect(look(fixed, state, 1000.5).allowed).toBe(true);
  });

  it('refund only within the current window; apply counts remote hits in their window', () => {
    const fixed = new FixedWindow(5, 1000);
    const state = fixed.create();
    attempt(fixed, state, 1200, 3);
    fixed.refund(state, 1300, 1);
    expect(fixed.encode(state)).toEqual([1000, 2]);
    fixed.refund(state, 300, 2); // previous window: nothing to take back
    expect(fixed.encode(state)).toEqual([1000, 2]);
    fixed.refund(state, 1000, 9); // clamped at 0
    expect(fixed.encode(state)).toEqual([1000, 0]);
    fixed.apply(state, 1999, 2);
    fixed.apply(state, 500, 4); // stale: an older window
    expect(fixed.encode(state)).toEqual([1000, 2]);
    fixed.apply(state, 2001, 1); // a newer window starts with the remote hit
    expect(fixed.encode(state)).toEqual([2000, 1]);
  });

  it('encode/decode round trip; decode rejects garbage', () => {
    const fixed = new FixedWindow(5, 1000);
    const state = fixed.create();
    attempt(fixed, state, 4200, 2);
    const copy = fixed.decode(JSON.parse(JSON.stringify(fixed.encode(state))))!;
    expect(copy).toEqual(state);
    for (const garbage of [
      null,
      7,
      'x',
      [],
      [1],
      [1, 2, 3],
      ['1', 2],
      [1, Number.NaN],
      { start: 0, count: 0 },
    ])
      expect(fixed.decode(garbage)).toBeNull();
  });
});

/** Each algorithm with a limit of 10 per second (GCRA burst 10), for the cross-algorithm cases. */
const ALL: readonly (readonly [string, () => Algorithm<unknown>])[] = ALGORITHMS.map(
  (name) => [name, () => createAlgorithm(name, 10, 1000)] as const,
);

describe('every algorithm', () => {
  it('createAlgorithm builds the named algorithm with its parameters', () => {
    expect(createAlgorithm('sliding_log', 7, 500)).toBeInstanceOf(SlidingLog);
    expect(createAlgorithm('sliding_window', 7, 500)).toBeInstanceOf(SlidingWindow);
    expect(createAlgorithm('fixed_window', 7, 500)).toBeInstanceOf(FixedWindow);
    const gcra = createAlgorithm('gcra', 7, 500, 3) as Gcra;
    expect(gcra).toBeInstanceOf(Gcra);
    expect([gcra.limit, gcra.windowMs, gcra.burst, gcra.interval]).toEqual([7, 500, 3, 500 / 7]);
    for (const name of ALGORITHMS) expect(createAlgorithm(name, 7, 500).name).toBe(name);
  });

  it('horizonMs: how long one hit can matter', () => {
    expect(new SlidingLog(10, 1000).horizonMs).toBe(1000);
    expect(new FixedWindow(10, 1000).horizonMs).toBe(1000);
    expect(new SlidingWindow(10, 1000).horizonMs).toBe(2000);
    expect(new Gcra(10, 1000, 5).horizonMs).toBe(1000);
    expect(new Gcra(10, 1000, 30).horizonMs).toBe(3000);
  });

  it.each(ALL)(
    '%s: after expiresAt the state carries no information (same decisions as a fresh state)',
    (_name, make) => {
      const algorithm = make();
      const state = algorithm.create();
      for (const [t, cost] of [
        [100, 3],
        [350, 2],
        [900, 4],
        [1300, 1],
      ] as const) {
        attempt(algorithm, state, t, cost);
      }
      const expires = algorithm.expiresAt(state);
      expect(expires).toBeGreaterThanOrEqual(1300);
      expect(expires).toBeLessThanOrEqual(1300 + algorithm.horizonMs);
      for (const cost of [1, 5, 10])
        expect(look(algorithm, state, expires, cost)).toEqual(
          look(algorithm, algorithm.create(), expires, cost),
        );
    },
  );

  it.each(ALL)(
    '%s: spec 7, cost above the capacity → NeverSatisfiableError, no decision written, no state change',
    (_name, make) => {
      const algorithm = make();
      const state = algorithm.create();
      attempt(algorithm, state, 0, 4);
      const before = JSON.stringify(algorithm.encode(state));
      const out = emptyDecision();
      // Far in the future, where a peek would otherwise trim or roll the state
      expect(() => algorithm.peek(state, 60_000, 11, out)).toThrow(NeverSatisfiableError);
      expect(out).toEqual(emptyDecision());
      expect(JSON.stringify(algorithm.encode(state))).toBe(before);
      // Exactly the capacity is fine
      expect(look(algorithm, state, 60_000, 10).allowed).toBe(true);
    },
  );

  it('GCRA: the capacity is the burst, not the rate', () => {
    const gcra = new Gcra(10, 1000, 5);
    expect(() => look(gcra, gcra.create(), 0, 6)).toThrow(NeverSatisfiableError);
    expect(() => look(gcra, gcra.create(), 0, 6)).toThrow(/burst 5/);
    expect(look(gcra, gcra.create(), 0, 5)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it.each(ALL)(
    '%s: a denied peek changes nothing (same encoding, same later decisions)',
    (_name, make) => {
      const algorithm = make();
      const state = algorithm.create();
      for (let i = 0; i < 10; i++) attempt(algorithm, state, 400);
      const decodedCopy = algorithm.decode(algorithm.encode(state))!;
      const before = JSON.stringify(algorithm.encode(state));
      for (let i = 0; i < 5; i++)
        expect(attempt(algorithm, state, 400 + i, 1 + (i % 3)).allowed).toBe(false);
      expect(JSON.stringify(algorithm.encode(state))).toBe(before);
      for (const t of [600, 1000, 1399, 1400, 2500])
        expect(look(algorithm, state, t, 2)).toEqual(look(algorithm, decodedCopy, t, 2));
    },
  );

  it.each(ALL)(
    '%s: denials report remaining ≥ 0 and an integer retryAfter ≥ 1; allowed ones retryAfter 0',
    (_name, make) => {
      const algorithm = make();
      const state = algorithm.create();
      for (let t = 0; t < 3000; t += 7.5) {
        const decision = attempt(algorithm, state, t, 1 + (Math.floor(t) % 3));
        expect(decision.remaining).toBeGreaterThanOrEqual(0);
        expect(decision.resetMs).toBeGreaterThanOrEqual(0);
        expect(Number.isInteger(decision.resetMs)).toBe(true);
        if (decision.allowed) expect(decision.retryAfterMs).toBe(0);
        else {
          expect(Number.isInteger(decision.retryAfterMs)).toBe(true);
          expect(decision.retryAfterMs).toBeGreaterThanOrEqual(1);
        }
      }
    },
  );

  it.each(ALL)(
    '%s: spec 13 rounding, the request retried after retryAfterMs (fractional times) passes; 1 ms earlier it does not',
    (_name, make) => {
      const algorithm = make();
      const state = algorithm.create();
      // Dyadic fractions: exactly representable, so the only rounding is the algorithm's
      for (let i = 0; i < 10; i++) attempt(algorithm, state, 250.25 + i * 0.125);
      const now = 300.375;
      const denied = look(algorithm, state, now, 2);
      expect(denied.allowed).toBe(false);
      // (earlier first: a peek may trim what has expired)
      if (denied.retryAfterMs > 1)
        expect(look(algorithm, state, now + denied.retryAfterMs - 1, 2).allowed).toBe(false);
      expect(look(algorithm, state, now + denied.retryAfterMs, 2).allowed).toBe(true);
    },
  );
});

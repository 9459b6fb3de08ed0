// @vitest-environment node
/**
 * Memory hygiene of the rate limiter (spec/rate-limiting.md §5 A case 15): one million distinct
 * keys, each touched once with a 1 s window, through a RateLimiter on fake clocks, swept once per
 * sweep interval as the limiter's own timer does:
 * - the live key count falls to ≤ 1 % of the peak within 2 windows plus one sweep interval;
 * - no timer per key (the process's active Timeout count does not move);
 * - the heap returns within 10 % of its baseline after a full GC.
 * Then the key cap (maxKeys): user keys evict the oldest, IP keys refuse new keys (the request
 * is denied, nobody's quota is forgotten).
 *
 * GC: taken at run time when vitest's fork lacks --expose-gc (test/support/heap.ts). If even that
 * fails the heap assertion is replaced by the structural one that always runs: no key, no sweep
 * bucket and no deny-cache entry is retained.
 */
import { createHook } from 'node:async_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { RateLimiter } from '../../src/ratelimit/limiter.js';
import { Policy } from '../../src/ratelimit/policy.js';
import { StateStore } from '../../src/ratelimit/store.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import type { GenApiRequest, ResolvedFunConfig } from '../../src/genapi/types.js';
import { expectHeapBack, settledHeap } from '../support/heap.js';

/** Local policies decide synchronously; a promise here would be a bug. */
function localCheck<T>(result: T | Promise<T>): T {
  if (result instanceof Promise) throw new Error('a local check returned a promise');
  return result;
}

/** Active ref'ed timers, as the process reports them. */
function timers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}

/**
 * Every Timeout created while enabled, unref'ed ones included (which getActiveResourcesInfo does
 * not list), and the ones still alive.
 */
function timerWatch(): {
  readonly created: () => number;
  readonly live: () => number;
  stop(): void;
} {
  let created = 0;
  const live = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type !== 'Timeout') return;
      created++;
      live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  });
  hook.enable();
  return { created: () => created, live: () => live.size, stop: () => hook.disable() };
}

/** The store's sweep buckets (internal; checked so nothing is retained even without a GC). */
function bucketCount(store: StateStore<unknown>): number {
  return (store as unknown as { buckets: Map<number, string[]> }).buckets.size;
}

const config = { service: 'svc', requestType: 'fn' } as ResolvedFunConfig;
const context = { ip: null, socketId: null };

const open: RateLimiter[] = [];
afterEach(() => {
  while (open.length > 0) open.pop()!.close();
});

describe('spec 15: one million distinct keys do not leak', () => {
  it('live keys ≤ 1 % of the peak within 2 windows + 1 sweep interval; no per-key timers; heap back within 10 %', () => {
    const KEYS = 1_000_000;
    const WINDOW = 1000;
    const SWEEP = 1000;
    const clock = { now: 50_000 };
    const watch = timerWatch();
    const activeBefore = timers();
    const limiter = new RateLimiter(
      {
        policies: [
          { id: 'per_user', key: 'user_id', algorithm: 'sliding_log', limit: 5, windowMs: WINDOW },
        ],
        sweepMs: SWEEP,
      },
      silentLogger(),
      () => clock.now,
      () => clock.now,
    );
    open.push(limiter);
    // The limiter's own (unref'ed) sweeper is the one timer it holds, and the watch sees it
    expect(watch.created()).toBe(1);
    const policy = limiter.policy('per_user')!;
    const request: GenApiRequest = {
      request_id: 'r',
      service: 'svc',
      request_type: 'fn',
      version: null,
      args: {},
      user_id: null,
      device_id: null,
      user_roles: null,
    };

    let nextSweep = clock.now;
    const advanceTo = (t: number): void => {
      clock.now = t;
      while (nextSweep <= t) {
        const at = clock.now;
        clock.now = nextSweep;
        limiter.sweep();
        clock.now = at;
        nextSweep += SWEEP;
      }
    };

    // Warm-up (JIT, maps), then the baseline
    advanceTo(clock.now);
    for (let i = 0; i < 20_000; i++) {
      request.user_id = `warm${i}`;
      localCheck(limiter.check(request, config, context));
    }
    advanceTo(clock.now + 3 * WINDOW);
    expect(limiter.keys).toBe(0);
    const baseline = settledHeap();

    // One million keys, each touched once, spread over one window
    const start = clock.now;
    for (let i = 0; i < KEYS; i++) {
      advanceTo(start + (i * WINDOW) / KEYS);
      request.user_id = `user-${i}`;
      const result = limiter.check(request, config, context);
      if (!result || !('allowed' in result) || !result.allowed)
        throw new Error(`key ${i} was not allowed`);
    }
    const last = clock.now;
    const peak = limiter.keys;
    expect(peak).toBe(KEYS);
    expect(policy.store.evicted).toBe(0);
    // No timer per key: none created, none active beyond what there was before
    expect(watch.created()).toBe(1);
    expect(timers()).toBe(activeBefore);
    const peakHeap = process.memoryUsage().heapUsed;

    // Sweep as time goes by; record when the live count falls to ≤ 1 % of the peak
    let reachedAt: number | null = null;
    for (let t = last; t <= last + 2 * WINDOW + SWEEP; t += 100) {
      advanceTo(t);
      if (reachedAt === null && limiter.keys <= peak / 100) reachedAt = t - last;
    }
    expect(reachedAt).not.toBeNull();
    expect(reachedAt!).toBeLessThanOrEqual(2 * WINDOW + SWEEP);
    expect(limiter.keys).toBe(0);
    expect(bucketCount(policy.store)).toBeLessThanOrEqual(2);
    expect(policy.denials.size).toBe(0);
    expect(watch.created()).toBe(1);
    expect(watch.live()).toBe(1);

    // (The million keys really were on the heap: more than 50 MB at the peak.)
    expectHeapBack(baseline, peakHeap, 50 * 1024 * 1024);
    watch.stop();
  }, 60_000);

  it('a key touched again is kept as long as it is used, then dropped', () => {
    const clock = { now: 10_000 };
    const limiter = new RateLimiter(
      { policies: [{ id: 'p', key: 'user_id', limit: 100, windowMs: 1000 }] },
      silentLogger(),
      () => clock.now,
      () => clock.now,
    );
    open.push(limiter);
    const request: GenApiRequest = {
      request_id: 'r',
      service: 'svc',
      request_type: 'fn',
      version: null,
      args: {},
      user_id: 'busy',
      device_id: null,
      user_roles: null,
    };
    limiter.sweep();
    for (let t = 10_000; t < 20_000; t += 250) {
      clock.now = t;
      localCheck(limiter.check(request, config, context));
      if (t % 1000 === 0) limiter.sweep();
      expect(limiter.keys).toBe(1);
    }
    clock.now = 21_000;
    limiter.sweep();
    clock.now = 22_000;
    limiter.sweep();
    expect(limiter.keys).toBe(0);
  });
});

describe('StateStore', () => {
  it('files keys by expiry and drops them only once expired; touched keys are re-filed', () => {
    const store = new StateStore<number>({ sweepMs: 100 });
    store.sweep(0);
    const a = store.ensure('a', () => 1, 10)!;
    const b = store.ensure('b', () => 2, 10)!;
    store.touch(a, 150);
    store.touch(b, 450);
    expect(store.ensure('a', () => 99, 20)).toBe(a);
    expect(store.sweep(100)).toBe(0);
    expect(store.sweep(200)).toBe(1);
    expect(store.get('a')).toBeUndefined();
    store.touch(b, 800); // used again: lives on
    expect(store.sweep(500)).toBe(0);
    expect(store.get('b')?.state).toBe(2);
    expect(store.sweep(900)).toBe(1);
    expect(store.size).toBe(0);
    expect(bucketCount(store as StateStore<unknown>)).toBe(0);
  });

  it('evict: at maxKeys the oldest key goes', () => {
    const store = new StateStore<string>({ maxKeys: 3, onFull: 'evict' });
    for (const key of ['a', 'b', 'c']) store.ensure(key, () => key, 0);
    expect(store.ensure('d', () => 'd', 0)?.state).toBe('d');
    expect(store.size).toBe(3);
    expect(store.evicted).toBe(1);
    expect(store.get('a')).toBeUndefined();
    expect(store.get('b')?.state).toBe('b');
    // An evicted key comes back with a fresh state
    expect(store.ensure('a', () => 'fresh', 0)?.state).toBe('fresh');
    expect(store.get('b')).toBeUndefined();
  });

  it('deny: at maxKeys new keys are refused (null), known keys still answer', () => {
    const store = new StateStore<string>({ maxKeys: 2, onFull: 'deny' });
    store.ensure('a', () => 'a', 0);
    store.ensure('b', () => 'b', 0);
    expect(store.ensure('c', () => 'c', 0)).toBeNull();
    expect(store.refused).toBe(1);
    expect(store.ensure('a', () => 'x', 0)?.state).toBe('a');
    expect(store.size).toBe(2);
  });

  it('policies choose: IP keys refuse when full, every other dimension evicts', () => {
    const make = (key: PolicyConfig['key']) =>
      new Policy({ id: 'p', key, limit: 1, windowMs: 1000 }, { maxKeys: 1 }).store;
    const ip = make('ip');
    ip.ensure('ip:1', () => 0, 0);
    expect(ip.ensure('ip:2', () => 0, 0)).toBeNull();
    for (const key of [
      'user_id',
      'device_id',
      'socket_id',
      { arg: 'room' },
    ] as PolicyConfig['key'][]) {
      const store = make(key);
      store.ensure('k1', () => 0, 0);
      expect(store.ensure('k2', () => 0, 0)).not.toBeNull();
      expect(store.evicted).toBe(1);
    }
  });

  it('a full IP policy denies the request (not forgotten); a full user policy forgets the oldest user', () => {
    const clock = { now: 0 };
    const limiter = new RateLimiter(
      {
        policies: [
          {
            id: 'ip',
            key: 'ip',
            limit: 2,
            windowMs: 60_000,
            scope: { service: 'svc', requestType: 'by_ip' },
          },
          {
            id: 'user',
            key: 'user_id',
            limit: 2,
            windowMs: 60_000,
            scope: { service: 'svc', requestType: 'by_user' },
          },
        ],
        maxKeys: 100,
      },
      silentLogger(),
      () => clock.now,
      () => clock.now,
    );
    open.push(limiter);
    const request = (user: string): GenApiRequest => ({
      request_id: 'r',
      service: 'svc',
      request_type: 'x',
      version: null,
      args: {},
      user_id: user,
      device_id: null,
      user_roles: null,
    });
    const byIp = { service: 'svc', requestType: 'by_ip' } as ResolvedFunConfig;
    const byUser = { service: 'svc', requestType: 'by_user' } as ResolvedFunConfig;
    for (let i = 0; i < 100; i++) {
      expect(
        (
          limiter.check(request('u'), byIp, {
            ip: `10.0.${i >> 8}.${i & 255}`,
            socketId: null,
          }) as { allowed: boolean }
        ).allowed,
      ).toBe(true);
      expect(
        (limiter.check(request(`user${i}`), byUser, context) as { allowed: boolean }).allowed,
      ).toBe(true);
    }
    // The 101st IP is denied, however many times it asks
    for (let i = 0; i < 3; i++) {
      const denied = limiter.check(request('u'), byIp, { ip: '192.0.2.1', socketId: null });
      expect(denied).toMatchObject({
        allowed: false,
        details: { policy: 'ip', remaining: 0, retry_after_ms: 60_000 },
      });
    }
    expect(limiter.policy('ip')!.store.refused).toBe(3);
    // Known IPs keep their counts
    expect(
      (
        limiter.check(request('u'), byIp, { ip: '10.0.0.0', socketId: null }) as {
          allowed: boolean;
        }
      ).allowed,
    ).toBe(true);
    expect(
      (
        limiter.check(request('u'), byIp, { ip: '10.0.0.0', socketId: null }) as {
          allowed: boolean;
        }
      ).allowed,
    ).toBe(false);
    // The 101st user evicts user0, whose quota starts over
    expect(
      (limiter.check(request('user100'), byUser, context) as { allowed: boolean }).allowed,
    ).toBe(true);
    expect(limiter.policy('user')!.store.evicted).toBe(1);
    expect(limiter.policy('user')!.store.get('user0')).toBeUndefined();
    expect(limiter.policy('user')!.store.size).toBe(100);
  });

  it('creates no timers, whatever the number of keys', () => {
    const before = timers();
    const store = new StateStore<number>({ sweepMs: 10 });
    store.sweep(0);
    for (let i = 0; i < 100_000; i++)
      store.touch(
        store.ensure(`k${i}`, () => i, i / 10)!,
        i / 10 + 50,
      );
    expect(timers()).toBe(before);
    store.sweep(20_000);
    expect(store.size).toBe(0);
  });
});

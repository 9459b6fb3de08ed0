/**
 * Regressions for defects found in review of src/ratelimit: each test failed before its fix.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { createAlgorithm } from '../../src/ratelimit/algorithms/index.js';
import { RateLimiter, StoreError, type StrictTier } from '../../src/ratelimit/limiter.js';
import type { Policy } from '../../src/ratelimit/policy.js';
import { RateLimits } from '../../src/ratelimit/rate-limits.js';
import { StateStore } from '../../src/ratelimit/store.js';
import {
  emptyDecision,
  type AlgorithmName,
  type Decision,
  type PolicyConfig,
} from '../../src/ratelimit/types.js';
import type { GenApiRequest, ResolvedFunConfig } from '../../src/genapi/types.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const item of open.splice(0)) await item.close();
});

const request = (user = 'alice'): GenApiRequest => ({
  request_id: 'r',
  service: 'svc',
  request_type: 'fn',
  version: null,
  args: {},
  user_id: user,
  device_id: null,
  user_roles: null,
});
const config = { service: 'svc', requestType: 'fn' } as ResolvedFunConfig;
const context = { ip: '203.0.113.9', socketId: 's1' };

function limiterWith(policies: PolicyConfig[], shadow = false) {
  const clock = { now: 10_000 };
  const limiter = new RateLimiter(
    { policies, shadow },
    silentLogger(),
    () => clock.now,
    () => clock.now,
  );
  open.push(limiter);
  return { limiter, clock };
}

describe('StateStore', () => {
  it('a late first sweep still drops keys filed in earlier buckets', () => {
    const store = new StateStore<number>({ sweepMs: 1000 });
    const slot = store.ensure('k', () => 0, 1999.9)!;
    store.touch(slot, 2999.9);
    expect(store.sweep(3000.5)).toBe(1);
    expect(store.size).toBe(0);
  });

  it('eviction gives touched keys a second chance (an early hot key outlives idle ones)', () => {
    const store = new StateStore<number>({ maxKeys: 3 });
    const hot = store.ensure('hot', () => 0, 0)!;
    store.ensure('idle-1', () => 0, 0);
    store.ensure('idle-2', () => 0, 0);
    store.touch(hot, 10_000);
    store.ensure('new', () => 0, 1);
    expect(store.get('hot')).toBeDefined();
    expect(store.get('idle-1')).toBeUndefined();
    expect(store.evicted).toBe(1);
  });
});

describe('waits are honest with fractional clocks', () => {
  it('sliding log: retrying exactly retryAfterMs later succeeds (hit at 0.3 ms)', () => {
    const log = createAlgorithm('sliding_log', 1, 1000);
    const state = log.create();
    const out = emptyDecision();
    log.commit(state, 0.3, 1);
    log.peek(state, 0.3, 1, out);
    expect(out.retryAfterMs).toBe(1000);
    log.peek(state, 0.3 + out.retryAfterMs, 1, out);
    expect(out.allowed).toBe(true);
  });

  it('every algorithm: waiting retryAfterMs then retrying succeeds, for arbitrary double times', () => {
    const names: AlgorithmName[] = ['sliding_log', 'sliding_window', 'gcra', 'fixed_window'];
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.double({ min: 0, max: 10_000, noNaN: true, noDefaultInfinity: true }), {
          minLength: 1,
          maxLength: 60,
        }),
        (name, limit, windowMs, gaps) => {
          const algorithm = createAlgorithm(name, limit, windowMs);
          const state = algorithm.create();
          const out = emptyDecision();
          let now = 1_000_000.123;
          for (const gap of gaps) {
            now += gap / 7;
            algorithm.peek(state, now, 1, out);
            if (out.allowed) {
              algorithm.commit(state, now, 1);
              continue;
            }
            const later = now + out.retryAfterMs;
            algorithm.peek(state, later, 1, out);
            if (!out.allowed) return false;
          }
          return true;
        },
      ),
      { numRuns: 3000, seed: 42 },
    );
  });
});

describe('windows do not reset when a time comes from behind (clock skew between nodes)', () => {
  for (const name of ['fixed_window', 'sliding_window'] as const) {
    it(`${name}: a hit from 2 ms earlier, across a boundary, counts in the current window`, () => {
      const algorithm = createAlgorithm(name, 3, 1000);
      const state = algorithm.create();
      const out = emptyDecision();
      let allowed = 0;
      // Two nodes 2 ms apart around the 2000 ms boundary share one state (as strict mode does).
      for (let i = 0; i < 20; i++) {
        const at = i % 2 === 0 ? 2001 + i * 0.1 : 1999 + i * 0.1;
        algorithm.peek(state, at, 1, out);
        if (out.allowed) {
          algorithm.commit(state, at, 1);
          allowed++;
        }
        expect(out.remaining).toBeGreaterThanOrEqual(0);
        expect(out.retryAfterMs).toBeGreaterThanOrEqual(0);
      }
      // At most the previous window's 3 (taken before the boundary) + 3: never 20.
      expect(allowed).toBeLessThanOrEqual(6);
    });
  }
});

describe('global shadow mode decides as enforcement would', () => {
  it('with two policies, wouldDeny equals the enforced denials and the states match', () => {
    const policies: PolicyConfig[] = [
      { id: 'a', key: 'user_id', limit: 1, windowMs: 1000 },
      { id: 'b', key: 'user_id', limit: 2, windowMs: 1000 },
    ];
    const enforced = limiterWith(policies);
    const shadow = limiterWith(policies, true);
    let denied = 0;
    for (let i = 0; i < 100; i++) {
      enforced.clock.now += 37;
      shadow.clock.now += 37;
      const decision = enforced.limiter.check(request(), config, context);
      if (!(decision instanceof Promise) && !decision.allowed) denied++;
      const passed = shadow.limiter.check(request(), config, context);
      expect(passed).toEqual({ allowed: true });
    }
    expect(shadow.limiter.stats.wouldDeny).toBe(denied);
    for (const id of ['a', 'b'])
      expect(shadow.limiter.status(id, 'alice')).toEqual(enforced.limiter.status(id, 'alice'));
  });
});

/** A store that is down: every call fails. */
class DownStore implements StrictTier {
  calls = 0;
  available(): boolean {
    return true;
  }
  consume(
    _policy: Policy,
    _key: string,
    _at: number,
    _cost: number,
    _out: Decision,
  ): Promise<boolean> {
    this.calls++;
    return Promise.reject(new StoreError('down'));
  }
  refund(): Promise<void> {
    return Promise.resolve();
  }
}

describe('strict policies on their fallback', () => {
  it('status() reports the fallback share the next request is decided with', async () => {
    const { limiter } = limiterWith([
      {
        id: 's',
        key: 'user_id',
        algorithm: 'sliding_log',
        limit: 5,
        windowMs: 1000,
        mode: 'strict',
      },
    ]);
    limiter.strict = new DownStore();
    limiter.nodes = () => 2;
    for (let i = 0; i < 2; i++)
      expect((await limiter.check(request(), config, context)).allowed).toBe(true);
    const status = limiter.status('s', 'alice')!;
    expect(status.limit).toBe(3);
    expect(status.remaining).toBe(0);
    expect(status.allowed).toBe(true);
    expect((await limiter.check(request(), config, context)).allowed).toBe(true);
    expect((await limiter.check(request(), config, context)).allowed).toBe(false);
  });

  it('a fail-open connect policy sends no RateLimit state (there is no quota to report)', async () => {
    const limits = new RateLimits(
      { connect: { limit: 10, windowMs: 60_000, mode: 'strict', fallback: 'open' } },
      silentLogger(),
    );
    open.push(limits);
    limits.limiter.strict = new DownStore();
    const decision = await limits.connectLimit('203.0.113.9');
    expect(decision).toEqual({ allowed: true });
  });

  it('an unexpected error from the store goes to the fallback instead of failing the request', async () => {
    const { limiter } = limiterWith([
      { id: 's', key: 'user_id', limit: 5, windowMs: 1000, mode: 'strict', fallback: 'open' },
    ]);
    limiter.strict = {
      available: () => true,
      consume: () => Promise.reject(new TypeError('bug')),
      refund: () => Promise.resolve(),
    };
    expect(await limiter.check(request(), config, context)).toEqual({ allowed: true });
    expect(limiter.stats.storeErrors).toBe(1);
    expect(limiter.stats.failOpen).toBe(1);
  });
});

/**
 * RateLimiter (src/ratelimit/limiter.ts) with fake monotonic and wall clocks: policy keys and
 * scopes, the §5 A cases 9–12 and 14 of spec/rate-limiting.md, shadow mode (38), the shape of a
 * denial (34, limiter part), policy validation, runtime changes, and the strict tier's deny
 * cache, fallbacks and refunds (cases 11 strict half, 28–30 at the limiter level).
 *
 * The strict tier here is an in-memory store (MemoryStrictTier) that runs each policy's own
 * algorithm on JSON-encoded states, like the JetStream KV store does; the real KV store is
 * covered by the cluster tests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StateStore } from '../../src/ratelimit/store.js';
import { silentLogger } from '../../src/log/logger.js';
import {
  RateLimiter,
  StoreError,
  type EventualTier,
  type LimiterDecision,
  type Observation,
  type RateLimitDetails,
  type StrictTier,
} from '../../src/ratelimit/limiter.js';
import {
  normaliseIp,
  PolicyError,
  type Policy,
  type RateContext,
} from '../../src/ratelimit/policy.js';
import {
  ALGORITHMS,
  emptyDecision,
  type Decision,
  type PolicyConfig,
} from '../../src/ratelimit/types.js';
import type { GenApiRequest, ResolvedFunConfig } from '../../src/genapi/types.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

interface Clocks {
  mono: number;
  wall: number;
}

const open: RateLimiter[] = [];
afterEach(() => {
  while (open.length > 0) open.pop()!.close();
});

function setup(
  policies: PolicyConfig[],
  options: { shadow?: boolean; maxKeys?: number; sweepMs?: number } = {},
): { limiter: RateLimiter; clocks: Clocks } {
  const clocks: Clocks = { mono: 5_000, wall: 1_700_000_000_000 };
  const limiter = new RateLimiter(
    { policies, ...options },
    silentLogger(),
    () => clocks.mono,
    () => clocks.wall,
  );
  open.push(limiter);
  return { limiter, clocks };
}

function req(over: Partial<GenApiRequest> = {}): GenApiRequest {
  return {
    request_id: 'r1',
    service: 'svc',
    request_type: 'fn',
    version: null,
    args: {},
    user_id: 'alice',
    device_id: 'phone',
    user_roles: null,
    ...over,
  };
}

function fn(service = 'svc', requestType = 'fn'): ResolvedFunConfig {
  return { service, requestType } as ResolvedFunConfig;
}

function ctx(ip: string | null = '203.0.113.7', socketId: string | null = 'sock-1'): RateContext {
  return { ip, socketId };
}

/** A local-only check: must answer synchronously. */
function sync(result: LimiterDecision | Promise<LimiterDecision>): LimiterDecision {
  if (result instanceof Promise)
    throw new Error('expected a synchronous decision (local policies only)');
  return result;
}

function call(
  limiter: RateLimiter,
  over: Partial<GenApiRequest> = {},
  config = fn(),
  context = ctx(),
): LimiterDecision {
  return sync(limiter.check(req(over), config, context));
}

/** The details of a rate-limited denial (fails on allowed / unavailable). */
function deniedDetails(result: LimiterDecision): RateLimitDetails {
  if (result.allowed || 'unavailable' in result)
    throw new Error(`expected a rate-limited denial, got ${JSON.stringify(result)}`);
  expect(result.retryAfterMs).toBe(result.details.retry_after_ms);
  return result.details;
}

function countAllowed(
  limiter: RateLimiter,
  times: number,
  over: Partial<GenApiRequest> = {},
  config = fn(),
  context = ctx(),
): number {
  let allowed = 0;
  for (let i = 0; i < times; i++) if (call(limiter, over, config, context).allowed) allowed++;
  return allowed;
}

/**
 * A strict store in memory: per (policy, key) a JSON-encoded state, run through the policy's own
 * algorithm (get → decide → put), like the KV store; counts calls and records refunds.
 */
class MemoryStrictTier implements StrictTier {
  up = true;
  failure: Error | null = null;
  /** Policies whose store calls fail with a StoreError. */
  readonly failFor = new Set<string>();
  consumeCalls = 0;
  readonly refunds: { policy: string; key: string; at: number; cost: number }[] = [];
  private readonly data = new Map<string, string>();

  available(): boolean {
    return this.up;
  }

  private read(policy: Policy, name: string): unknown {
    const raw = this.data.get(name);
    return (
      (raw === undefined ? null : policy.algorithm.decode(JSON.parse(raw))) ??
      policy.algorithm.create()
    );
  }

  async consume(
    policy: Policy,
    key: string,
    at: number,
    cost: number,
    out: Decision,
  ): Promise<boolean> {
    this.consumeCalls++;
    await Promise.resolve();
    if (this.failure) throw this.failure;
    if (this.failFor.has(policy.id)) throw new StoreError(`store unavailable for ${policy.id}`);
    const name = `${policy.id}/${key}`;
    const state = this.read(policy, name);
    policy.algorithm.peek(state, at, cost, out);
    if (!out.allowed) return false;
    policy.algorithm.commit(state, at, cost);
    this.data.set(name, JSON.stringify(policy.algorithm.encode(state)));
    return true;
  }

  async refund(policy: Policy, key: string, at: number, cost: number): Promise<void> {
    this.refunds.push({ policy: policy.id, key, at, cost });
    await Promise.resolve();
    const name = `${policy.id}/${key}`;
    const state = this.read(policy, name);
    policy.algorithm.refund(state, at, cost);
    this.data.set(name, JSON.stringify(policy.algorithm.encode(state)));
  }

  /** The store's view of one key (test assertions). */
  peek(policy: Policy, key: string, at: number): Decision {
    const out = emptyDecision();
    policy.algorithm.peek(this.read(policy, `${policy.id}/${key}`), at, policy.cost, out);
    return out;
  }
}

function strictSetup(
  policies: PolicyConfig[],
  options: { shadow?: boolean } = {},
): { limiter: RateLimiter; clocks: Clocks; tier: MemoryStrictTier } {
  const { limiter, clocks } = setup(policies, options);
  const tier = new MemoryStrictTier();
  limiter.strict = tier;
  return { limiter, clocks, tier };
}

const perUser = (
  id: string,
  limit: number,
  windowMs: number,
  extra: Partial<PolicyConfig> = {},
): PolicyConfig => ({ id, key: 'user_id', limit, windowMs, ...extra });

// ---------------------------------------------------------------------------------------------
// Keys and scopes
// ---------------------------------------------------------------------------------------------

describe('policy keys', () => {
  it('user_id: each user has a counter of their own', () => {
    const { limiter } = setup([perUser('u', 2, 1000)]);
    expect(countAllowed(limiter, 5, { user_id: 'alice' })).toBe(2);
    expect(countAllowed(limiter, 5, { user_id: 'bob' })).toBe(2);
    expect(limiter.policy('u')!.store.size).toBe(2);
    expect(limiter.policy('u')!.store.get('alice')).toBeDefined();
  });

  it('device_id: keyed by the device, whoever the user is', () => {
    const { limiter } = setup([{ id: 'd', key: 'device_id', limit: 2, windowMs: 1000 }]);
    expect(countAllowed(limiter, 1, { user_id: 'alice', device_id: 'tablet' })).toBe(1);
    expect(countAllowed(limiter, 3, { user_id: 'bob', device_id: 'tablet' })).toBe(1);
    expect(countAllowed(limiter, 3, { user_id: 'bob', device_id: 'laptop' })).toBe(2);
  });

  it('ip: keyed by the connection’s IP from the context', () => {
    const { limiter } = setup([{ id: 'i', key: 'ip', limit: 2, windowMs: 1000 }]);
    expect(countAllowed(limiter, 3, { user_id: 'a' }, fn(), ctx('198.51.100.1', 's1'))).toBe(2);
    expect(countAllowed(limiter, 3, { user_id: 'b' }, fn(), ctx('198.51.100.1', 's2'))).toBe(0);
    expect(countAllowed(limiter, 3, { user_id: 'b' }, fn(), ctx('198.51.100.2', 's2'))).toBe(2);
  });

  it('socket_id: keyed by the connection id from the context', () => {
    const { limiter } = setup([{ id: 's', key: 'socket_id', limit: 1, windowMs: 1000 }]);
    expect(countAllowed(limiter, 2, {}, fn(), ctx('10.0.0.1', 'sock-a'))).toBe(1);
    expect(countAllowed(limiter, 2, {}, fn(), ctx('10.0.0.1', 'sock-b'))).toBe(1);
    expect(countAllowed(limiter, 2, {}, fn(), ctx('10.0.0.1', 'sock-a'))).toBe(0);
  });

  it('{arg}: keyed by a request argument (strings and finite numbers)', () => {
    const { limiter } = setup([{ id: 'room', key: { arg: 'room' }, limit: 2, windowMs: 1000 }]);
    expect(countAllowed(limiter, 3, { args: { room: 'lobby' } })).toBe(2);
    expect(countAllowed(limiter, 3, { args: { room: 'kitchen' } })).toBe(2);
    expect(countAllowed(limiter, 1, { args: { room: 7 } })).toBe(1);
    // a number and its decimal string are the same value
    expect(countAllowed(limiter, 2, { args: { room: '7' } })).toBe(1);
    expect([...limiter.policy('room')!.store.entries()].map(([key]) => key).sort()).toEqual([
      '7',
      'kitchen',
      'lobby',
    ]);
  });

  it('normaliseIp folds IPv6 to its /64 and unwraps IPv4-mapped addresses', () => {
    expect(normaliseIp('203.0.113.7')).toBe('203.0.113.7');
    expect(normaliseIp('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(normaliseIp('2001:db8:aa:bb:1:2:3:4')).toBe('2001:db8:aa:bb::/64');
    expect(normaliseIp('2001:0DB8:00aa:bb::9')).toBe('2001:db8:aa:bb::/64');
    expect(normaliseIp('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(normaliseIp('::1')).toBe('0:0:0:0::/64');
  });

  it('two addresses of one /64 share an IP bucket once normalised', () => {
    const { limiter } = setup([{ id: 'i', key: 'ip', limit: 2, windowMs: 1000 }]);
    expect(countAllowed(limiter, 1, {}, fn(), ctx(normaliseIp('2001:db8:1:2::a'), 's'))).toBe(1);
    expect(countAllowed(limiter, 2, {}, fn(), ctx(normaliseIp('2001:db8:1:2:ffff::b'), 's'))).toBe(
      1,
    );
    expect(countAllowed(limiter, 1, {}, fn(), ctx(normaliseIp('2001:db8:1:3::a'), 's'))).toBe(1);
  });
});

describe('policy scopes', () => {
  it('global applies to every function; {service} to that service; {service, requestType} to one function', () => {
    const { limiter } = setup([
      perUser('all', 100, 1000),
      perUser('svc', 100, 1000, { scope: { service: 'svc' } }),
      perUser('one', 100, 1000, { scope: { service: 'svc', requestType: 'fn' } }),
    ]);
    call(limiter, {}, fn('svc', 'fn'));
    call(limiter, {}, fn('svc', 'other'));
    call(limiter, {}, fn('elsewhere', 'fn'));
    const checks = (id: string) => limiter.policy(id)!.stats.checks;
    expect([checks('all'), checks('svc'), checks('one')]).toEqual([3, 2, 1]);
  });

  it('a function with no applicable policy is allowed without touching any state', () => {
    const { limiter } = setup([
      perUser('one', 1, 1000, { scope: { service: 'svc', requestType: 'fn' } }),
    ]);
    expect(countAllowed(limiter, 5, {}, fn('svc', 'other'))).toBe(5);
    expect(limiter.stats.checks).toBe(0);
    expect(limiter.keys).toBe(0);
  });

  it('connect policies never apply to gen_api requests; decide() runs them with the IP only', () => {
    const { limiter } = setup([
      { id: 'conn', scope: 'connect', key: 'ip', algorithm: 'gcra', limit: 2, windowMs: 1000 },
    ]);
    expect(countAllowed(limiter, 5)).toBe(5);
    const policy = limiter.policy('conn')!;
    const observation: Observation = { decision: emptyDecision(), policy: null };
    expect(sync(limiter.decide([policy], null, ctx('198.51.100.9', null), observation))).toEqual({
      allowed: true,
    });
    // The tightest allowed decision is observed (for RateLimit headers on the 101)
    expect(observation.policy).toBe(policy);
    expect(observation.decision).toMatchObject({ allowed: true, limit: 2, remaining: 1 });
    expect(sync(limiter.decide([policy], null, ctx('198.51.100.9', null), null)).allowed).toBe(
      true,
    );
    const denied = deniedDetails(
      sync(limiter.decide([policy], null, ctx('198.51.100.9', null), null)),
    );
    expect(denied).toMatchObject({
      policy: 'conn',
      limit: 2,
      remaining: 0,
      retry_after_ms: 500,
      source: 'local',
    });
    // Without an IP the connect policy is skipped
    expect(sync(limiter.decide([policy], null, ctx(null, null), null)).allowed).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Acceptance cases 9–12, 14
// ---------------------------------------------------------------------------------------------

describe('spec 9: independent limits, the stricter decides', () => {
  it('10/s and 100/min per user, offered 20/s for a minute → 10 in any second, 100 in the minute', () => {
    const { limiter, clocks } = setup([
      perUser('per_second', 10, 1000),
      perUser('per_minute', 100, 60_000),
    ]);
    const start = clocks.mono;
    const allowed: number[] = [];
    const deciders = new Map<string, number>();
    for (let i = 0; i < 1200; i++) {
      clocks.mono = start + i * 50;
      const result = call(limiter);
      if (result.allowed) allowed.push(clocks.mono - start);
      else {
        const details = deniedDetails(result);
        deciders.set(details.policy, (deciders.get(details.policy) ?? 0) + 1);
        // per_second waits for its oldest hit within the second; per_minute for the hit at 0
        if (details.policy === 'per_second')
          expect(details.retry_after_ms).toBeLessThanOrEqual(1000);
        else expect(details.retry_after_ms).toBe(60_000 - (clocks.mono - start));
      }
    }
    expect(allowed).toHaveLength(100);
    let maxPerSecond = 0;
    for (const t of allowed)
      maxPerSecond = Math.max(maxPerSecond, allowed.filter((u) => u > t - 1000 && u <= t).length);
    expect(maxPerSecond).toBe(10);
    // 10 per second for the first 10 s, then the minute is spent
    expect(allowed[99]).toBeLessThan(10_000);
    expect(deciders.get('per_second')).toBeGreaterThan(0);
    expect(deciders.get('per_minute')).toBeGreaterThan(0);
    // Both counters are kept on their own keys
    expect(limiter.policy('per_second')!.store.get('alice')).toBeDefined();
    expect(limiter.policy('per_minute')!.store.get('alice')).toBeDefined();
  });

  it('when both deny, the one with the longer wait decides', () => {
    const { limiter } = setup([perUser('short', 2, 1000), perUser('long', 2, 60_000)]);
    countAllowed(limiter, 2);
    expect(deniedDetails(call(limiter))).toMatchObject({ policy: 'long', retry_after_ms: 60_000 });
  });
});

describe('spec 10: key isolation', () => {
  it('user_id, device_id and ip with the same value "abc" have separate counters', () => {
    const { limiter } = setup([
      perUser('by_user', 3, 1000, { scope: { service: 'svc', requestType: 'u' } }),
      {
        id: 'by_device',
        key: 'device_id',
        limit: 3,
        windowMs: 1000,
        scope: { service: 'svc', requestType: 'd' },
      },
      {
        id: 'by_ip',
        key: 'ip',
        limit: 3,
        windowMs: 1000,
        scope: { service: 'svc', requestType: 'i' },
      },
    ]);
    const same = { user_id: 'abc', device_id: 'abc' };
    expect(countAllowed(limiter, 5, same, fn('svc', 'u'), ctx('abc'))).toBe(3);
    expect(limiter.status('by_device', 'abc')).toMatchObject({ allowed: true, remaining: 2 });
    expect(limiter.status('by_ip', 'abc')).toMatchObject({ allowed: true, remaining: 2 });
    expect(countAllowed(limiter, 5, same, fn('svc', 'd'), ctx('abc'))).toBe(3);
    expect(countAllowed(limiter, 5, same, fn('svc', 'i'), ctx('abc'))).toBe(3);
    expect(limiter.policy('by_device')!.store.get('abc')).toBeDefined();
    expect(limiter.policy('by_ip')!.store.get('abc')).toBeDefined();
  });

  it('the same dimension under two policies: exhausting one leaves the other untouched', () => {
    const { limiter } = setup([
      perUser('p1', 2, 1000, { scope: { service: 'svc', requestType: 'a' } }),
      perUser('p2', 2, 1000, { scope: { service: 'svc', requestType: 'b' } }),
    ]);
    expect(countAllowed(limiter, 4, {}, fn('svc', 'a'))).toBe(2);
    expect(limiter.status('p2', 'alice')).toMatchObject({ allowed: true, remaining: 1 });
    expect(countAllowed(limiter, 4, {}, fn('svc', 'b'))).toBe(2);
  });
});

describe('spec 11: multi-limit atomicity (local)', () => {
  it('global 100/min + per-API 10/min: the 11th call to the API is denied and the global remaining is unchanged', () => {
    const { limiter } = setup([
      perUser('global', 100, 60_000),
      perUser('api', 10, 60_000, { scope: { service: 'svc', requestType: 'fn' } }),
    ]);
    expect(countAllowed(limiter, 10)).toBe(10);
    const before = limiter.status('global', 'alice');
    expect(before).toMatchObject({ remaining: 89 });
    expect(deniedDetails(call(limiter))).toMatchObject({ policy: 'api', remaining: 0 });
    expect(deniedDetails(call(limiter))).toMatchObject({ policy: 'api' });
    expect(limiter.status('global', 'alice')).toEqual(before);
    // Another function still spends the global quota
    expect(call(limiter, {}, fn('svc', 'other')).allowed).toBe(true);
    expect(limiter.status('global', 'alice')).toMatchObject({ remaining: 88 });
  });

  it('a denial by a later policy does not consume an earlier one, for every algorithm', () => {
    for (const algorithm of ALGORITHMS) {
      const { limiter } = setup([
        perUser('first', 50, 60_000, { algorithm }),
        perUser('second', 1, 60_000, { algorithm, scope: { service: 'svc' } }),
      ]);
      expect(call(limiter).allowed).toBe(true);
      const before = limiter.status('first', 'alice');
      for (let i = 0; i < 5; i++) expect(call(limiter).allowed).toBe(false);
      expect(limiter.status('first', 'alice')).toEqual(before);
    }
  });
});

describe('spec 12: a missing dimension skips the policy', () => {
  it.each([
    ['null', null],
    ['empty string', ''],
  ])(
    'device_id %s → the device policy is skipped, never a "" bucket; other policies still apply',
    (_label, device) => {
      const { limiter } = setup([
        { id: 'dev', key: 'device_id', limit: 1, windowMs: 1000 },
        perUser('user', 3, 1000),
      ]);
      expect(countAllowed(limiter, 5, { device_id: device })).toBe(3);
      const dev = limiter.policy('dev')!;
      expect(dev.store.size).toBe(0);
      expect(dev.store.get('')).toBeUndefined();
      expect(dev.stats.checks).toBe(0);
      expect(limiter.policy('user')!.stats.checks).toBe(5);
    },
  );

  it('missing user, IP, socket id or argument: skipped; non-scalar argument values are skipped too', () => {
    const { limiter } = setup([
      perUser('user', 1, 1000),
      { id: 'ip', key: 'ip', limit: 1, windowMs: 1000 },
      { id: 'sock', key: 'socket_id', limit: 1, windowMs: 1000 },
      { id: 'arg', key: { arg: 'room' }, limit: 1, windowMs: 1000 },
    ]);
    const anonymous = { user_id: null, device_id: null };
    for (const args of [
      {},
      { room: '' },
      { room: true },
      { room: { id: 1 } },
      { room: ['a'] },
      { room: null },
      { room: Number.NaN },
    ]) {
      expect(countAllowed(limiter, 3, { ...anonymous, args }, fn(), ctx(null, null))).toBe(3);
    }
    expect(limiter.keys).toBe(0);
    expect(limiter.stats.denied).toBe(0);
    // Zero is a value, not a missing one
    expect(
      countAllowed(limiter, 2, { ...anonymous, args: { room: 0 } }, fn(), ctx(null, null)),
    ).toBe(1);
    expect(limiter.policy('arg')!.store.get('0')).toBeDefined();
  });
});

describe('spec 14: a backwards wall-clock step does not affect local policies (monotonic clock)', () => {
  it.each(ALGORITHMS)(
    '%s: a 5 s step back neither grants quota nor yields negative numbers',
    (algorithm) => {
      const { limiter, clocks } = setup([perUser('p', 5, 1000, { algorithm })]);
      expect(countAllowed(limiter, 5)).toBe(5);
      const denied = deniedDetails(call(limiter));
      clocks.wall -= 5_000;
      const after = deniedDetails(call(limiter));
      expect(after).toEqual(denied);
      expect(after.remaining).toBeGreaterThanOrEqual(0);
      expect(after.retry_after_ms).toBeGreaterThanOrEqual(1);
      clocks.wall += 3_600_000; // and forward: still the monotonic clock that counts
      expect(deniedDetails(call(limiter))).toEqual(denied);
      clocks.mono += denied.retry_after_ms;
      expect(call(limiter).allowed).toBe(true);
    },
  );

  it('local policies read the monotonic clock, eventual and strict ones the wall clock', () => {
    const { limiter } = setup([
      perUser('l', 1, 1000),
      perUser('e', 1, 1000, { mode: 'eventual' }),
      perUser('s', 1, 1000, { mode: 'strict' }),
    ]);
    expect(limiter.clockFor(limiter.policy('l')!)).toBe(limiter.monotonic);
    expect(limiter.clockFor(limiter.policy('e')!)).toBe(limiter.wall);
    expect(limiter.clockFor(limiter.policy('s')!)).toBe(limiter.wall);
  });

  it.each(['sliding_log', 'gcra'] as const)(
    'eventual %s: a wall step back keeps the recorded hits (no extra quota, no negative numbers)',
    (algorithm) => {
      const { limiter, clocks } = setup([perUser('e', 3, 1000, { algorithm, mode: 'eventual' })]);
      expect(countAllowed(limiter, 3)).toBe(3);
      clocks.wall -= 5_000;
      const details = deniedDetails(call(limiter));
      expect(details.source).toBe('eventual');
      expect(details.remaining).toBeGreaterThanOrEqual(0);
      expect(details.retry_after_ms).toBeGreaterThanOrEqual(1);
      expect(details.reset_ms).toBeGreaterThanOrEqual(0);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Shadow mode (spec 38)
// ---------------------------------------------------------------------------------------------

/** A fixed pseudo-random replay: (gap ms, user) pairs. */
function traffic(length: number, seed: number): { gap: number; user: string }[] {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length }, () => ({
    gap: next() < 0.4 ? 0 : Math.floor(next() * 250),
    user: next() < 0.7 ? 'alice' : 'bob',
  }));
}

function replayTraffic(
  limiter: RateLimiter,
  clocks: Clocks,
  events: readonly { gap: number; user: string }[],
): { allowed: number; denied: number } {
  let allowed = 0;
  let denied = 0;
  for (const { gap, user } of events) {
    clocks.mono += gap;
    clocks.wall += gap;
    if (call(limiter, { user_id: user }).allowed) allowed++;
    else denied++;
  }
  return { allowed, denied };
}

describe('spec 38: shadow mode', () => {
  it('a shadow policy never denies but counts wouldDeny', () => {
    const { limiter } = setup([perUser('p', 3, 1000, { shadow: true })]);
    expect(countAllowed(limiter, 10)).toBe(10);
    expect(limiter.policy('p')!.stats).toMatchObject({ checks: 10, denied: 0, wouldDeny: 7 });
    expect(limiter.stats).toMatchObject({ denied: 0, wouldDeny: 7 });
  });

  it('the global switch puts every policy in shadow, and back', () => {
    const { limiter } = setup([perUser('p', 3, 1000)], { shadow: true });
    expect(limiter.shadow).toBe(true);
    expect(countAllowed(limiter, 5)).toBe(5);
    expect(limiter.stats.wouldDeny).toBe(2);
    limiter.setShadow(false);
    expect(limiter.shadow).toBe(false);
    expect(call(limiter).allowed).toBe(false);
    expect(limiter.stats.denied).toBe(1);
  });

  it('a shadow policy next to an enforced one: the enforced one still denies', () => {
    const { limiter } = setup([
      perUser('enforced', 2, 1000),
      perUser('shadowed', 1, 1000, { shadow: true }),
    ]);
    expect(countAllowed(limiter, 4)).toBe(2);
    expect(limiter.policy('enforced')!.stats.denied).toBe(2);
    expect(limiter.policy('shadowed')!.stats.denied).toBe(0);
    expect(limiter.policy('shadowed')!.stats.wouldDeny).toBeGreaterThanOrEqual(1);
  });

  it.each(ALGORITHMS)(
    '%s: wouldDeny equals what enforcement denies for the same replayed traffic (per policy and global shadow)',
    (algorithm) => {
      const events = traffic(600, 42);
      const policy = perUser('p', 4, 1000, { algorithm });
      const enforced = setup([policy]);
      const perPolicy = setup([{ ...policy, shadow: true }]);
      const global = setup([policy], { shadow: true });
      const outcome = replayTraffic(enforced.limiter, enforced.clocks, events);
      expect(outcome.denied).toBeGreaterThan(50);
      for (const shadow of [perPolicy, global]) {
        expect(replayTraffic(shadow.limiter, shadow.clocks, events)).toEqual({
          allowed: events.length,
          denied: 0,
        });
        expect(shadow.limiter.policy('p')!.stats.wouldDeny).toBe(outcome.denied);
        expect(shadow.limiter.stats.wouldDeny).toBe(enforced.limiter.stats.denied);
      }
    },
  );

  it('a strict policy in shadow: a store denial is counted, the request allowed', async () => {
    const { limiter, tier } = strictSetup([
      perUser('s', 1, 1000, { mode: 'strict', shadow: true }),
    ]);
    expect(await limiter.check(req(), fn(), ctx())).toEqual({ allowed: true });
    expect(await limiter.check(req(), fn(), ctx())).toEqual({ allowed: true });
    expect(limiter.policy('s')!.stats).toMatchObject({ wouldDeny: 1, denied: 0 });
    expect(tier.consumeCalls).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
// Denial details (spec 34, limiter part)
// ---------------------------------------------------------------------------------------------

describe('denial details', () => {
  it('have exactly policy, limit, window_ms, remaining, reset_ms, retry_after_ms and source', () => {
    const { limiter, clocks } = setup([perUser('five_per_10s', 5, 10_000)]);
    for (let i = 0; i < 5; i++) {
      expect(call(limiter).allowed).toBe(true);
      clocks.mono += 1000;
    }
    const result = call(limiter);
    expect(result).toEqual({
      allowed: false,
      retryAfterMs: 5000,
      details: {
        policy: 'five_per_10s',
        limit: 5,
        window_ms: 10_000,
        remaining: 0,
        reset_ms: 5000,
        retry_after_ms: 5000,
        source: 'local',
      },
    });
    expect(Object.keys(deniedDetails(result)).sort()).toEqual([
      'limit',
      'policy',
      'remaining',
      'reset_ms',
      'retry_after_ms',
      'source',
      'window_ms',
    ]);
    expect(limiter.stats).toMatchObject({ checks: 6, denied: 1 });
    expect(limiter.policy('five_per_10s')!.stats).toMatchObject({ checks: 6, denied: 1 });
  });

  it('source is "eventual" for eventual policies', () => {
    const { limiter } = setup([perUser('e', 1, 1000, { mode: 'eventual' })]);
    call(limiter);
    expect(deniedDetails(call(limiter)).source).toBe('eventual');
  });

  it('retry_after_ms is rounded up to whole ms and ≥ 1 with fractional monotonic time', () => {
    const { limiter, clocks } = setup([perUser('g', 3, 1000, { algorithm: 'gcra' })]);
    clocks.mono = 1234.5625;
    countAllowed(limiter, 3);
    const details = deniedDetails(call(limiter));
    expect(details.retry_after_ms).toBe(334);
    clocks.mono += 333;
    expect(deniedDetails(call(limiter)).retry_after_ms).toBe(1);
    clocks.mono += 1;
    expect(call(limiter).allowed).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Eventual tier: only hits of fully allowed requests are shared
// ---------------------------------------------------------------------------------------------

describe('eventual tier hand-off', () => {
  it('committed() gets the eventual policies’ hits of allowed requests, at their wall time, and nothing of denied ones', () => {
    const { limiter, clocks } = setup([
      perUser('ev', 5, 1000, { mode: 'eventual', cost: 2 }),
      perUser('loc', 2, 1000),
    ]);
    const shared: { policy: string; key: string; at: number; cost: number }[] = [];
    const tier: EventualTier = {
      committed: (policy, key, at, cost) => shared.push({ policy: policy.id, key, at, cost }),
    };
    limiter.eventual = tier;
    expect(call(limiter).allowed).toBe(true);
    clocks.wall += 10;
    expect(call(limiter).allowed).toBe(true);
    expect(call(limiter).allowed).toBe(false); // the local policy denies: nothing shared
    expect(shared).toEqual([
      { policy: 'ev', key: 'alice', at: 1_700_000_000_000, cost: 2 },
      { policy: 'ev', key: 'alice', at: 1_700_000_000_010, cost: 2 },
    ]);
  });

  it('applyRemote: remote hits count at their origin time; stale, unknown and future hits are handled', () => {
    const { limiter, clocks } = setup([
      perUser('ev', 3, 1000, { mode: 'eventual' }),
      perUser('loc', 3, 1000),
    ]);
    const now = clocks.wall;
    expect(limiter.applyRemote('loc', 'user_id:alice', now, 1)).toBe('unknown');
    expect(limiter.applyRemote('nope', 'user_id:alice', now, 1)).toBe('unknown');
    expect(limiter.applyRemote('ev', 'user_id:alice', now - 1000, 1)).toBe('stale');
    expect(limiter.status('ev', 'alice')).toMatchObject({ remaining: 2 });
    expect(limiter.applyRemote('ev', 'user_id:alice', now - 400, 1)).toBe('applied');
    expect(limiter.applyRemote('ev', 'user_id:alice', now + 60_000, 1)).toBe('applied'); // clamped to now
    expect(limiter.status('ev', 'alice')).toMatchObject({ allowed: true, remaining: 0 });
    expect(call(limiter).allowed).toBe(true);
    expect(deniedDetails(call(limiter))).toMatchObject({ policy: 'ev', retry_after_ms: 600 });
    // The hit from 400 ms ago leaves first
    clocks.wall += 600;
    expect(call(limiter).allowed).toBe(true);
    expect(limiter.horizonOf('ev')).toBe(1000);
    expect(limiter.horizonOf('nope')).toBeNull();
  });

  it('applyRemote with a key budget (eventual.maxKeysPerOrigin): new keys beyond it are refused; expired, reset, evicted and dropped keys give it back', () => {
    const { limiter, clocks } = setup([perUser('ev', 3, 1000, { mode: 'eventual' })]);
    const budget = { keys: 0, maxKeys: 2 };
    const now = clocks.wall;
    expect(limiter.applyRemote('ev', 'user_id:a', now, 1, budget)).toBe('applied');
    expect(limiter.applyRemote('ev', 'user_id:b', now, 1, budget)).toBe('applied');
    expect(limiter.applyRemote('ev', 'user_id:c', now, 1, budget)).toBe('refused');
    // Keys already held still count, and a key made here is not charged to the origin.
    expect(limiter.applyRemote('ev', 'user_id:a', now, 1, budget)).toBe('applied');
    expect(call(limiter, { user_id: 'local-user' }).allowed).toBe(true);
    expect(budget.keys).toBe(2);
    expect(limiter.status('ev', 'a')).toMatchObject({ remaining: 0 });
    // A reset gives one back.
    limiter.reset('ev', 'a');
    expect(budget.keys).toBe(1);
    expect(limiter.applyRemote('ev', 'user_id:c', now, 1, budget)).toBe('applied');
    expect(budget.keys).toBe(2);
    // Expired and swept: all back.
    clocks.wall += 2000;
    clocks.mono += 2000;
    limiter.sweep();
    expect(budget.keys).toBe(0);
    // A removed policy's keys go back too.
    expect(limiter.applyRemote('ev', 'user_id:d', clocks.wall, 1, budget)).toBe('applied');
    expect(budget.keys).toBe(1);
    limiter.removePolicy('ev');
    expect(budget.keys).toBe(0);
    // The store's eviction (maxKeys) gives a key back as well.
    const store = new StateStore<number>({ maxKeys: 1 });
    const owner = { keys: 0 };
    store.ensure('x', () => 0, 0, owner);
    expect(owner.keys).toBe(1);
    store.ensure('y', () => 0, 0);
    expect(store.evicted).toBe(1);
    expect(owner.keys).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Validation and runtime changes
// ---------------------------------------------------------------------------------------------

describe('policy validation', () => {
  const base: PolicyConfig = { id: 'p', key: 'user_id', limit: 10, windowMs: 1000 };
  it.each([
    ['bad id (spaces)', { id: 'has space' }, /policy id must match/],
    ['bad id (empty)', { id: '' }, /policy id must match/],
    ['bad id (too long)', { id: 'x'.repeat(65) }, /policy id must match/],
    ['bad id (dot at the end)', { id: 'a.' }, /policy id must match/],
    ['limit 0', { limit: 0 }, /policy p: limit must be a positive integer, got 0/],
    ['limit fractional', { limit: 2.5 }, /limit must be a positive integer, got 2.5/],
    [
      'limit not a number',
      { limit: '10' as unknown as number },
      /limit must be a positive integer, got "10"/,
    ],
    ['window negative', { windowMs: -1 }, /policy p: windowMs must be a positive integer, got -1/],
    ['window fractional', { windowMs: 0.5 }, /windowMs must be a positive integer/],
    [
      'window infinite',
      { windowMs: Number.POSITIVE_INFINITY },
      /windowMs must be a positive integer/,
    ],
    ['burst 0', { algorithm: 'gcra', burst: 0 }, /burst must be a positive integer/],
    ['cost 0', { cost: 0 }, /cost must be a positive integer/],
    [
      'cost above the limit',
      { cost: 11 },
      /policy p: cost 11 can never fit \(it exceeds the limit\)/,
    ],
    [
      'cost above the GCRA burst',
      { algorithm: 'gcra', limit: 10, burst: 3, cost: 4 },
      /cost 4 can never fit \(it exceeds the burst\)/,
    ],
    [
      'unknown algorithm',
      { algorithm: 'leaky' as 'gcra' },
      /algorithm must be one of sliding_log, sliding_window, gcra, fixed_window/,
    ],
    ['unknown mode', { mode: 'global' as 'local' }, /mode must be one of local, eventual, strict/],
    [
      'unknown fallback',
      { mode: 'strict', fallback: 'retry' as 'open' },
      /fallback must be local, open or closed/,
    ],
    [
      'scope string',
      { scope: 'everything' as 'global' },
      /scope must be "global", "connect" or \{service, requestType\?\}/,
    ],
    ['scope without service', { scope: { service: '' } }, /scope must be/],
    [
      'scope with a non-string requestType',
      { scope: { service: 's', requestType: 5 as unknown as string } },
      /scope must be/,
    ],
    [
      'key unknown',
      { key: 'email' as 'ip' },
      /key must be user_id, device_id, ip, socket_id or \{arg: name\}/,
    ],
    ['key arg empty', { key: { arg: '' } }, /key must be/],
    ['connect scope keyed by user', { scope: 'connect' }, /connect policies are keyed by ip/],
  ] as [string, Partial<PolicyConfig>, RegExp][])('%s → PolicyError', (_label, change, message) => {
    const config = { ...base, ...change };
    expect(() => new RateLimiter({ policies: [config] }, silentLogger())).toThrow(PolicyError);
    expect(() => new RateLimiter({ policies: [config] }, silentLogger())).toThrow(message);
  });

  it('accepts the boundary cases (cost = capacity, dotted ids, connect + ip)', () => {
    const { limiter } = setup([
      { ...base, id: 'svc.fn.per-user_1', cost: 10 },
      { ...base, id: 'g', algorithm: 'gcra', burst: 3, cost: 3 },
      { ...base, id: 'c', scope: 'connect', key: 'ip' },
    ]);
    expect(limiter.policies().map((p) => p.id)).toEqual(['svc.fn.per-user_1', 'g', 'c']);
  });

  it('duplicate ids in the configuration are refused', () => {
    expect(() => new RateLimiter({ policies: [base, base] }, silentLogger())).toThrow(
      /duplicate rate-limit policy id "p"/,
    );
  });

  it('setPolicy with an invalid config throws and leaves the policies as they were', () => {
    const { limiter } = setup([base]);
    expect(() => limiter.setPolicy({ ...base, limit: -3 })).toThrow(PolicyError);
    expect(limiter.policy('p')!.config.limit).toBe(10);
  });
});

describe('runtime changes: setPolicy, removePolicy, setShadow, status, reset', () => {
  it('setPolicy adds a policy that applies at once; a compatible replacement keeps the counters under the new limit', () => {
    const { limiter } = setup([]);
    expect(countAllowed(limiter, 5)).toBe(5);
    expect(limiter.setPolicy(perUser('p', 2, 1000)).counters).toBe('new');
    expect(countAllowed(limiter, 5)).toBe(2);
    const replaced = limiter.setPolicy(perUser('p', 3, 1000));
    expect(replaced.counters).toBe('kept');
    expect(limiter.policy('p')).toBe(replaced.policy);
    expect(limiter.policies()).toHaveLength(1);
    // The 2 hits are still counted: one more fits under the new limit of 3.
    expect(countAllowed(limiter, 5)).toBe(1);
    // Per-policy stats are cumulative across the replacement.
    expect(replaced.policy.stats.checks).toBe(10);
  });

  it('compatible replacements (same algorithm, key and mode) apply the new limit and window to the existing state, per algorithm', () => {
    const { limiter, clocks } = setup([]);
    const used = (id: string, user: string) => {
      const status = limiter.status(id, user)!;
      return status.allowed ? status.limit - status.remaining - 1 : status.limit - status.remaining;
    };
    // Sliding log: 6 hits at t, t+100, …; a lower limit keeps the newest hits, a longer window keeps them longer.
    limiter.setPolicy(perUser('log', 10, 1000));
    for (let i = 0; i < 6; i++) {
      expect(call(limiter, { user_id: 'l' }).allowed).toBe(true);
      clocks.mono += 100;
    }
    expect(limiter.setPolicy(perUser('log', 4, 1000)).counters).toBe('kept');
    expect(limiter.status('log', 'l')).toMatchObject({ allowed: false, limit: 4, remaining: 0 });
    // The newest 4 hits were kept (t+200 … t+500): the first frees up at t+200+1000.
    expect(limiter.status('log', 'l')!.retryAfterMs).toBe(200 + 1000 - 600);
    expect(limiter.setPolicy(perUser('log', 4, 5000)).counters).toBe('kept');
    clocks.mono += 2000;
    expect(limiter.status('log', 'l')).toMatchObject({ allowed: false, remaining: 0 });
    // A longer window also keeps the keys longer: the sweep does not drop them at the old expiry.
    limiter.sweep();
    expect(limiter.policy('log')!.store.size).toBe(1);
    limiter.removePolicy('log');

    // GCRA: the TAT carries over; the new rate applies to what comes next.
    limiter.setPolicy(perUser('g', 10, 1000, { algorithm: 'gcra', burst: 2 }));
    expect(countAllowed(limiter, 3, { user_id: 'g' })).toBe(2);
    expect(
      limiter.setPolicy(perUser('g', 20, 1000, { algorithm: 'gcra', burst: 2 })).counters,
    ).toBe('kept');
    expect(call(limiter, { user_id: 'g' }).allowed).toBe(false);
    limiter.removePolicy('g');

    // Fixed window with the same window: the count carries over, the new limit decides.
    limiter.setPolicy(perUser('f', 5, 60_000, { algorithm: 'fixed_window' }));
    expect(countAllowed(limiter, 3, { user_id: 'f' })).toBe(3);
    expect(limiter.setPolicy(perUser('f', 4, 60_000, { algorithm: 'fixed_window' })).counters).toBe(
      'kept',
    );
    expect(countAllowed(limiter, 3, { user_id: 'f' })).toBe(1);
    expect(used('f', 'f')).toBe(4);
  });

  it('incompatible replacements start empty counters: another algorithm, key or mode, or a new window for window-aligned algorithms', () => {
    const { limiter } = setup([perUser('p', 3, 60_000)]);
    const fill = () => expect(countAllowed(limiter, 5)).toBe(3);
    fill();
    expect(limiter.setPolicy(perUser('p', 3, 60_000, { algorithm: 'gcra' })).counters).toBe(
      'reset',
    );
    fill();
    expect(
      limiter.setPolicy(perUser('p', 3, 60_000, { algorithm: 'gcra', key: 'device_id' })).counters,
    ).toBe('reset');
    fill();
    expect(
      limiter.setPolicy(
        perUser('p', 3, 60_000, { algorithm: 'gcra', key: 'device_id', mode: 'eventual' }),
      ).counters,
    ).toBe('reset');
    fill();
    expect(limiter.setPolicy(perUser('p', 3, 60_000, { algorithm: 'fixed_window' })).counters).toBe(
      'reset',
    );
    fill();
    expect(limiter.setPolicy(perUser('p', 3, 30_000, { algorithm: 'fixed_window' })).counters).toBe(
      'reset',
    );
    fill();
    expect(
      limiter.setPolicy(perUser('p', 3, 30_000, { algorithm: 'sliding_window' })).counters,
    ).toBe('reset');
    fill();
    expect(
      limiter.setPolicy(perUser('p', 3, 60_000, { algorithm: 'sliding_window' })).counters,
    ).toBe('reset');
    fill();
  });

  it('a strict policy keeps its store counters on replacement but cannot change its algorithm (the store states are per id)', () => {
    const { limiter } = strictSetup([perUser('s', 3, 1000, { mode: 'strict' })]);
    expect(limiter.setPolicy(perUser('s', 5, 1000, { mode: 'strict' })).counters).toBe('kept');
    expect(() =>
      limiter.setPolicy(perUser('s', 5, 1000, { mode: 'strict', algorithm: 'gcra' })),
    ).toThrow(/algorithm cannot change \(sliding_log → gcra\); add a policy with a new id/);
    expect(limiter.policy('s')!.config.limit).toBe(5);
    // Leaving strict mode is a fresh local count.
    expect(limiter.setPolicy(perUser('s', 5, 1000)).counters).toBe('reset');
  });

  it('setPolicy can narrow the scope; the per-function cache follows', () => {
    const { limiter } = setup([perUser('p', 1, 1000)]);
    expect(call(limiter, {}, fn('svc', 'a')).allowed).toBe(true);
    expect(call(limiter, {}, fn('svc', 'a')).allowed).toBe(false);
    limiter.setPolicy(perUser('p', 1, 1000, { scope: { service: 'svc', requestType: 'b' } }));
    expect(countAllowed(limiter, 3, {}, fn('svc', 'a'))).toBe(3);
    // Same algorithm and key: the user's counter carries over (the hit made on `a` still counts).
    expect(countAllowed(limiter, 3, {}, fn('svc', 'b'))).toBe(0);
    expect(countAllowed(limiter, 3, { user_id: 'bob' }, fn('svc', 'b'))).toBe(1);
  });

  it('removePolicy stops limiting; removing twice is false', () => {
    const { limiter } = setup([perUser('p', 1, 1000), perUser('q', 100, 1000)]);
    expect(countAllowed(limiter, 3)).toBe(1);
    expect(limiter.removePolicy('p')).toBe(true);
    expect(limiter.removePolicy('p')).toBe(false);
    expect(limiter.policy('p')).toBeUndefined();
    expect(countAllowed(limiter, 3)).toBe(3);
  });

  it('status peeks without consuming or creating keys; unknown policy → null', () => {
    const { limiter } = setup([perUser('p', 3, 1000)]);
    expect(limiter.status('nope', 'alice')).toBeNull();
    expect(limiter.status('p', 'nobody')).toMatchObject({
      allowed: true,
      limit: 3,
      windowMs: 1000,
      remaining: 2,
    });
    expect(limiter.keys).toBe(0);
    call(limiter);
    call(limiter);
    expect(limiter.status('p', 'alice')).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.status('p', 'alice')).toMatchObject({ allowed: true, remaining: 0 });
    call(limiter);
    expect(limiter.status('p', 'alice')).toMatchObject({
      allowed: false,
      remaining: 0,
      retryAfterMs: 1000,
    });
    expect(limiter.keys).toBe(1);
  });

  it('reset forgets one key (local state and deny cache) and reports whether there was one', async () => {
    const { limiter } = setup([perUser('p', 1, 1000)]);
    call(limiter);
    call(limiter, { user_id: 'bob' });
    expect(call(limiter).allowed).toBe(false);
    expect(limiter.reset('p', 'alice')).toBe(true);
    expect(limiter.reset('p', 'alice')).toBe(false);
    expect(limiter.reset('nope', 'alice')).toBe(false);
    expect(call(limiter).allowed).toBe(true);
    expect(call(limiter, { user_id: 'bob' }).allowed).toBe(false);

    const strict = strictSetup([perUser('s', 1, 1000, { mode: 'strict' })]);
    await strict.limiter.check(req(), fn(), ctx());
    await strict.limiter.check(req(), fn(), ctx());
    expect(strict.limiter.policy('s')!.denials.size).toBe(1);
    expect(strict.limiter.reset('s', 'alice')).toBe(true);
    expect(strict.limiter.policy('s')!.denials.size).toBe(0);
  });

  it('sweep drops expired keys and expired deny-cache entries', async () => {
    const { limiter, clocks } = setup([perUser('p', 1, 1000)]);
    limiter.sweep();
    call(limiter);
    call(limiter, { user_id: 'bob' });
    expect(limiter.keys).toBe(2);
    // Sliding log: a key expires one window after its last hit
    clocks.mono += 999;
    expect(limiter.sweep()).toBe(0);
    expect(limiter.keys).toBe(2);
    clocks.mono += 1;
    expect(limiter.sweep()).toBe(2);
    expect(limiter.keys).toBe(0);

    const strict = strictSetup([perUser('s', 1, 1000, { mode: 'strict' })]);
    await strict.limiter.check(req(), fn(), ctx());
    await strict.limiter.check(req(), fn(), ctx());
    expect(strict.limiter.policy('s')!.denials.size).toBe(1);
    strict.limiter.sweep();
    expect(strict.limiter.policy('s')!.denials.size).toBe(1);
    strict.clocks.wall += 1000;
    strict.limiter.sweep();
    expect(strict.limiter.policy('s')!.denials.size).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Strict tier: deny cache, fallbacks, refunds
// ---------------------------------------------------------------------------------------------

describe('strict policies', () => {
  it('are decided by the store, asynchronously, with source "strict"', async () => {
    const { limiter, tier } = strictSetup([perUser('s', 2, 1000, { mode: 'strict' })]);
    const first = limiter.check(req(), fn(), ctx());
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual({ allowed: true });
    expect(await limiter.check(req(), fn(), ctx())).toEqual({ allowed: true });
    const denied = deniedDetails(await limiter.check(req(), fn(), ctx()));
    expect(denied).toMatchObject({
      policy: 's',
      limit: 2,
      window_ms: 1000,
      remaining: 0,
      retry_after_ms: 1000,
      source: 'strict',
    });
    expect(tier.consumeCalls).toBe(3);
    // The store's admissions through this node are mirrored into its fallback share (no other local state).
    expect(limiter.policy('s')!.store.size).toBe(1);
  });

  it('the fallback never admits what the store last said it would deny (a slow store is not a free pass)', async () => {
    const { limiter, tier, clocks } = strictSetup([perUser('s', 4, 1000, { mode: 'strict' })]);
    const policy = limiter.policy('s')!;
    // The store confirmed a full key (another node's hits): 4 hits, 100 ms ago.
    const full = policy.algorithm.create();
    for (let i = 0; i < 4; i++) policy.algorithm.commit(full, clocks.wall - 100, 1);
    limiter.storeState(policy, 'alice', full);
    tier.up = false;
    const denied = deniedDetails(await limiter.check(req(), fn(), ctx()));
    expect(denied).toMatchObject({
      policy: 's',
      source: 'fallback',
      remaining: 0,
      retry_after_ms: 900,
    });
    // Another key the store said nothing about: the share decides (1 node: the whole limit).
    expect((await limiter.check(req({ user_id: 'bob' }), fn(), ctx())).allowed).toBe(true);
    // Room in the known state: the fallback's admissions are added to it (2 known + 2 admitted = 4).
    const half = policy.algorithm.create();
    for (let i = 0; i < 2; i++) policy.algorithm.commit(half, clocks.wall, 1);
    limiter.storeState(policy, 'carol', half);
    const carol = [];
    for (let i = 0; i < 4; i++)
      carol.push((await limiter.check(req({ user_id: 'carol' }), fn(), ctx())).allowed);
    expect(carol).toEqual([true, true, false, false]);
    // It expires with its hits, and an admin reset forgets it.
    expect(policy.known!.size).toBe(2);
    expect(limiter.reset('s', 'carol')).toBe(true);
    expect(policy.known!.size).toBe(1);
    clocks.wall += 1000;
    limiter.sweep();
    clocks.wall += 1000;
    limiter.sweep();
    expect(policy.known!.size).toBe(0);
  });

  it('a node’s store admissions count against its fallback share: an outage mid-window admits only the rest of the share', async () => {
    const { limiter, tier } = strictSetup([
      perUser('s', 10, 1000, { mode: 'strict' }),
      perUser('o', 10, 1000, { mode: 'strict', fallback: 'open', scope: { service: 'other' } }),
    ]);
    limiter.nodes = () => 2;
    for (let i = 0; i < 3; i++)
      expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(true);
    tier.up = false;
    // Share ceil(10 / 2) = 5, of which 3 were used through the store: 2 more.
    const outage = [];
    for (let i = 0; i < 4; i++) outage.push((await limiter.check(req(), fn(), ctx())).allowed);
    expect(outage).toEqual([true, true, false, false]);
    // fallback "open" keeps no local state at all.
    tier.up = true;
    expect((await limiter.check(req(), fn('other'), ctx())).allowed).toBe(true);
    expect(limiter.policy('o')!.store.size).toBe(0);
  });

  it('deny cache (spec 28): after a store denial, 0 store calls until retryAfter, remaining 0 and a shrinking retry_after', async () => {
    const { limiter, clocks, tier } = strictSetup([perUser('s', 3, 1000, { mode: 'strict' })]);
    for (let i = 0; i < 3; i++)
      expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(true);
    clocks.wall += 100;
    const first = deniedDetails(await limiter.check(req(), fn(), ctx()));
    expect(first).toMatchObject({ remaining: 0, retry_after_ms: 900, source: 'strict' });
    expect(tier.consumeCalls).toBe(4);
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      clocks.wall += 100;
      const cached = deniedDetails(await limiter.check(req(), fn(), ctx()));
      expect(cached).toMatchObject({
        policy: 's',
        limit: 3,
        window_ms: 1000,
        remaining: 0,
        source: 'strict',
      });
      expect(cached.reset_ms).toBe(cached.retry_after_ms);
      waits.push(cached.retry_after_ms);
    }
    expect(waits).toEqual([800, 700, 600, 500, 400, 300, 200, 100]);
    expect(tier.consumeCalls).toBe(4);
    expect(limiter.policy('s')!.stats.denyCacheHits).toBe(8);
    expect(limiter.stats.denyCacheHits).toBe(8);
    // Other keys still go to the store
    expect((await limiter.check(req({ user_id: 'bob' }), fn(), ctx())).allowed).toBe(true);
    expect(tier.consumeCalls).toBe(5);
    clocks.wall += 100; // retryAfter reached: the store decides again
    expect(await limiter.check(req(), fn(), ctx())).toEqual({ allowed: true });
    expect(tier.consumeCalls).toBe(6);
  });

  describe('fallbacks when the store cannot answer', () => {
    it('local (default): ceil(limit / nodes) on this node, source "fallback", counted; no store call while unavailable', async () => {
      const { limiter, tier } = strictSetup([perUser('s', 5, 60_000, { mode: 'strict' })]);
      limiter.nodes = () => 2;
      tier.up = false;
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await limiter.check(req(), fn(), ctx()));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
      expect(deniedDetails(results[3]!)).toMatchObject({
        policy: 's',
        limit: 3,
        remaining: 0,
        source: 'fallback',
      });
      expect(tier.consumeCalls).toBe(0);
      expect(limiter.policy('s')!.stats.fallback).toBe(5);
      expect(limiter.stats.fallback).toBe(5);
      // Another user has a share of their own
      expect((await limiter.check(req({ user_id: 'bob' }), fn(), ctx())).allowed).toBe(true);
    });

    it('local: a new node count gives a new share (and a new count)', async () => {
      const { limiter, tier } = strictSetup([perUser('s', 6, 60_000, { mode: 'strict' })]);
      tier.up = false;
      let nodes = 3;
      limiter.nodes = () => nodes;
      let allowed = 0;
      for (let i = 0; i < 6; i++) if ((await limiter.check(req(), fn(), ctx())).allowed) allowed++;
      expect(allowed).toBe(2);
      nodes = 1;
      allowed = 0;
      for (let i = 0; i < 8; i++) if ((await limiter.check(req(), fn(), ctx())).allowed) allowed++;
      expect(allowed).toBe(6);
      nodes = 0; // never below one node
      expect(deniedDetails(await limiter.check(req(), fn(), ctx())).limit).toBe(6);
    });

    it('local: a GCRA policy’s burst is shared too', async () => {
      const { limiter, tier } = strictSetup([
        perUser('g', 10, 1000, { mode: 'strict', algorithm: 'gcra', burst: 4 }),
      ]);
      tier.up = false;
      limiter.nodes = () => 2;
      let allowed = 0;
      for (let i = 0; i < 6; i++) if ((await limiter.check(req(), fn(), ctx())).allowed) allowed++;
      expect(allowed).toBe(2);
    });

    it('open: allows and counts failOpen', async () => {
      const { limiter, tier } = strictSetup([
        perUser('s', 1, 1000, { mode: 'strict', fallback: 'open' }),
      ]);
      tier.up = false;
      for (let i = 0; i < 5; i++)
        expect(await limiter.check(req(), fn(), ctx())).toEqual({ allowed: true });
      expect(limiter.policy('s')!.stats.failOpen).toBe(5);
      expect(limiter.stats.failOpen).toBe(5);
      expect(limiter.policy('s')!.stats.fallback).toBe(0);
    });

    it('closed: {allowed: false, unavailable: true} (not a rate-limit denial), counted as failClosed', async () => {
      const { limiter, tier } = strictSetup([
        perUser('s', 100, 1000, { mode: 'strict', fallback: 'closed' }),
      ]);
      tier.up = false;
      const result = await limiter.check(req(), fn(), ctx());
      expect(result).toEqual({
        allowed: false,
        unavailable: true,
        details: { reason: 'limiter_unavailable', policy: 's', source: 'fallback' },
      });
      expect('retryAfterMs' in result).toBe(false);
      expect(limiter.policy('s')!.stats.failClosed).toBe(1);
      expect(limiter.stats.denied).toBe(0);
    });

    it('a StoreError from consume goes to the fallback and counts storeErrors; the store is used again once it answers', async () => {
      const { limiter, tier } = strictSetup([perUser('s', 4, 60_000, { mode: 'strict' })]);
      limiter.nodes = () => 2;
      tier.failure = new StoreError('rate-limit store did not answer within 25 ms');
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await limiter.check(req(), fn(), ctx()));
      expect(results.map((r) => r.allowed)).toEqual([true, true, false]);
      expect(deniedDetails(results[2]!).source).toBe('fallback');
      expect(tier.consumeCalls).toBe(3);
      expect(limiter.policy('s')!.stats).toMatchObject({ storeErrors: 3, fallback: 3 });
      expect(limiter.stats.storeErrors).toBe(3);
      // Recovery: the store is authoritative again (fallback counts are not copied to it)
      tier.failure = null;
      for (let i = 0; i < 4; i++)
        expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(true);
      expect(deniedDetails(await limiter.check(req(), fn(), ctx())).source).toBe('strict');
    });

    it('fallback closed with an earlier strict policy consumed: that hit is refunded, local hits rolled back', async () => {
      const { limiter, clocks, tier } = strictSetup([
        perUser('local', 10, 60_000),
        perUser('first', 10, 60_000, { mode: 'strict' }),
        perUser('second', 10, 60_000, {
          mode: 'strict',
          fallback: 'closed',
          scope: { service: 'svc' },
        }),
      ]);
      expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(true);
      const localBefore = limiter.status('local', 'alice');
      const first = limiter.policy('first')!;
      const storeBefore = tier.peek(first, 'alice', clocks.wall);
      // The store fails for `second` only (e.g. its bucket is unavailable)
      tier.failFor.add('second');
      expect(await limiter.check(req(), fn(), ctx())).toMatchObject({
        allowed: false,
        unavailable: true,
        details: { reason: 'limiter_unavailable' },
      });
      expect(limiter.policy('second')!.stats).toMatchObject({ failClosed: 1, storeErrors: 1 });
      expect(tier.refunds).toEqual([{ policy: 'first', key: 'alice', at: clocks.wall, cost: 1 }]);
      expect(tier.peek(first, 'alice', clocks.wall)).toEqual(storeBefore);
      expect(limiter.status('local', 'alice')).toEqual(localBefore);
    });
  });

  it('spec 11 (strict half): a later strict policy denies → the earlier strict hit is refunded and local hits rolled back', async () => {
    const { limiter, clocks, tier } = strictSetup([
      perUser('global', 100, 60_000, { mode: 'strict' }),
      perUser('api', 10, 60_000, { mode: 'strict', scope: { service: 'svc', requestType: 'fn' } }),
      perUser('local', 1000, 60_000),
    ]);
    const global = limiter.policy('global')!;
    for (let i = 0; i < 10; i++) {
      expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(true);
      clocks.wall += 10;
      clocks.mono += 10;
    }
    const storeBefore = tier.peek(global, 'alice', clocks.wall);
    expect(storeBefore).toMatchObject({ remaining: 89 });
    const localBefore = limiter.status('local', 'alice');
    const denied = deniedDetails(await limiter.check(req(), fn(), ctx()));
    expect(denied).toMatchObject({ policy: 'api', remaining: 0, source: 'strict' });
    expect(tier.refunds).toEqual([{ policy: 'global', key: 'alice', at: clocks.wall, cost: 1 }]);
    expect(tier.peek(global, 'alice', clocks.wall)).toEqual(storeBefore);
    expect(limiter.status('local', 'alice')).toEqual(localBefore);
    // From the deny cache: still refunded, still nothing leaked
    const again = deniedDetails(await limiter.check(req(), fn(), ctx()));
    expect(again.policy).toBe('api');
    expect(tier.refunds).toHaveLength(2);
    expect(tier.peek(global, 'alice', clocks.wall)).toEqual(storeBefore);
    // Another function only spends the global quota
    expect((await limiter.check(req(), fn('svc', 'other'), ctx())).allowed).toBe(true);
    expect(tier.peek(global, 'alice', clocks.wall)).toMatchObject({ remaining: 88 });
  });

  it('a local denial is decided before any store call', async () => {
    const { limiter, tier } = strictSetup([
      perUser('local', 1, 1000),
      perUser('s', 100, 1000, { mode: 'strict' }),
    ]);
    expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(true);
    const result = limiter.check(req(), fn(), ctx());
    expect(result).not.toBeInstanceOf(Promise);
    expect(deniedDetails(sync(result)).policy).toBe('local');
    expect(tier.consumeCalls).toBe(1);
  });

  it('an eventual hit is shared only after the strict policies allowed the request', async () => {
    const { limiter, tier } = strictSetup([
      perUser('ev', 100, 1000, { mode: 'eventual' }),
      perUser('s', 1, 1000, { mode: 'strict' }),
    ]);
    const shared: string[] = [];
    limiter.eventual = { committed: (policy, key) => shared.push(`${policy.id}/${key}`) };
    expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(true);
    expect((await limiter.check(req(), fn(), ctx())).allowed).toBe(false);
    expect(shared).toEqual(['ev/alice']);
    expect(limiter.status('ev', 'alice')).toMatchObject({ remaining: 98 });
    expect(tier.consumeCalls).toBe(2);
  });
});

describe('full stores', () => {
  it('an IP policy that is full denies new IPs (remaining 0, a window to wait) instead of forgetting anyone', () => {
    const { limiter } = setup([{ id: 'ip', key: 'ip', limit: 5, windowMs: 1000 }], { maxKeys: 2 });
    expect(call(limiter, {}, fn(), ctx('10.0.0.1')).allowed).toBe(true);
    expect(call(limiter, {}, fn(), ctx('10.0.0.2')).allowed).toBe(true);
    expect(deniedDetails(call(limiter, {}, fn(), ctx('10.0.0.3')))).toEqual({
      policy: 'ip',
      limit: 5,
      window_ms: 1000,
      remaining: 0,
      reset_ms: 1000,
      retry_after_ms: 1000,
      source: 'local',
    });
    // Known IPs keep their state
    expect(limiter.status('ip', '10.0.0.1')).toMatchObject({ remaining: 3 });
    expect(limiter.policy('ip')!.store.refused).toBe(1);
  });

  it('a user policy that is full evicts the oldest key', () => {
    const { limiter } = setup([perUser('u', 1, 60_000)], { maxKeys: 2 });
    expect(call(limiter, { user_id: 'a' }).allowed).toBe(true);
    expect(call(limiter, { user_id: 'b' }).allowed).toBe(true);
    expect(call(limiter, { user_id: 'c' }).allowed).toBe(true);
    expect(limiter.policy('u')!.store.evicted).toBe(1);
    expect(limiter.policy('u')!.store.get('a')).toBeUndefined();
    expect(call(limiter, { user_id: 'b' }).allowed).toBe(false);
    expect(call(limiter, { user_id: 'c' }).allowed).toBe(false);
  });
});

// @vitest-environment node
/**
 * Memory hygiene of the cluster tiers (spec/rate-limiting.md §5 A case 15, beyond the local
 * sliding log of memory.test.ts), on fake wall clocks:
 * - keys received from eventual peers (1,000,000 through the limiter; 100,000 in batches over a
 *   real nats-server from 1,000 origins) are swept once stale, and the origins are forgotten;
 * - strict mode's per-key state: the deny cache, the fallback share, the store's last state per
 *   key, and the store's per-key compare-and-swap queues (200,000 keys through a strict tier in
 *   memory; 2,000 through the real JetStream KV store);
 * - an eventual node's retained batches stay under `retainHits` and are dropped once stale.
 * Each ends with nothing retained (and, with a GC available, the heap back within 10 %).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { FORGET_ORIGIN_MS } from '../../src/ratelimit/cluster/eventual.js';
import { RateLimiter, StoreError, type StrictTier } from '../../src/ratelimit/limiter.js';
import type { Policy } from '../../src/ratelimit/policy.js';
import { RateLimits } from '../../src/ratelimit/rate-limits.js';
import type { Decision, PolicyConfig } from '../../src/ratelimit/types.js';
import { Subjects } from '../../src/nats/subjects.js';
import type { GenApiRequest, ResolvedFunConfig } from '../../src/genapi/types.js';
import { NatsServer } from '../support/nats.js';
import { eventualPolicy, RlNode, Wire } from '../support/ratelimit-cluster.js';
import { check, settled, waitForJetStream } from '../support/kv.js';
import { expectHeapBack, settledHeap } from '../support/heap.js';
import { until } from '../support/wait.js';

const open: RateLimiter[] = [];
afterEach(() => {
  while (open.length > 0) open.pop()!.close();
});

const WINDOW = 1000;
const SWEEP = 1000;

/** Sweeps as the limiter's own timer would, every SWEEP ms of fake time up to `until`. */
function sweepUntil(limiter: RateLimiter, clock: { now: number }, until: number): void {
  while (clock.now < until) {
    clock.now = Math.min(until, clock.now + SWEEP);
    limiter.sweep();
  }
}

describe('keys received from eventual peers', () => {
  it('1,000,000 remote keys through applyRemote are swept within 2 windows + 1 sweep; heap back within 10 %', () => {
    const clock = { now: 1_800_000_000_000 };
    const limiter = new RateLimiter(
      { policies: [eventualPolicy('p', 5, WINDOW)], sweepMs: SWEEP },
      silentLogger(),
      () => clock.now,
      () => clock.now,
    );
    open.push(limiter);
    const policy = limiter.policy('p')!;
    // Warm-up, then the baseline.
    for (let i = 0; i < 20_000; i++) limiter.applyRemote('p', `user_id:warm${i}`, clock.now, 1);
    sweepUntil(limiter, clock, clock.now + 3 * WINDOW);
    expect(limiter.keys).toBe(0);
    const baseline = settledHeap();

    const start = clock.now;
    let applied = 0;
    for (let i = 0; i < 1_000_000; i++) {
      if (i % 1000 === 0) clock.now = start + (i * WINDOW) / 1_000_000;
      if (limiter.applyRemote('p', `user_id:peer-user-${i}`, clock.now, 1) === 'applied') applied++;
    }
    expect(applied).toBe(1_000_000);
    expect(policy.store.size).toBe(1_000_000);
    const peakHeap = process.memoryUsage().heapUsed;
    sweepUntil(limiter, clock, clock.now + 2 * WINDOW + SWEEP);
    expect(limiter.keys).toBe(0);
    expectHeapBack(baseline, peakHeap, 50 * 1024 * 1024);
  }, 60_000);

  describe('over a real nats-server', () => {
    let nats: NatsServer;
    beforeAll(async () => {
      nats = await NatsServer.start();
    });
    afterAll(async () => {
      await nats?.dispose();
    });

    it('100,000 keys in batches from 1,000 origins: applied, swept once stale; the origins are forgotten after the horizon + FORGET_ORIGIN_MS', async () => {
      const prefix = `mem${process.pid}`;
      const clock = { now: Date.now() };
      const node = await RlNode.start({
        servers: nats.url,
        prefix,
        options: {
          policies: [eventualPolicy('p', 5, WINDOW)],
          sweepMs: SWEEP,
          // 1000 origins at once: above the default (64), as many as this test sends.
          eventual: { maxOrigins: 1000 },
        },
        wall: () => clock.now,
      });
      const wire = await Wire.start(nats.url, prefix, []);
      try {
        for (let origin = 0; origin < 1000; origin++) {
          const hits = Array.from({ length: 100 }, (_, i) => [
            'p',
            `user_id:o${origin}-u${i}`,
            clock.now,
            1,
          ]);
          wire.publish(`${prefix}.rl.hits`, { o: `origin-${origin}`, s: 1, h: hits });
        }
        await wire.flush();
        await until(
          () => node.stats.appliedHits === 100_000,
          '100,000 remote hits applied',
          20_000,
        );
        const cluster = node.rl.linked!;
        expect(node.rl.limiter.keys).toBe(100_000);
        expect(cluster.eventual.originCount).toBe(1000);
        // Stale after the window: swept.
        sweepUntil(node.rl.limiter, clock, clock.now + 2 * WINDOW + SWEEP);
        expect(node.rl.limiter.keys).toBe(0);
        // Silent origins are kept while their hits could be replayed (horizon + 10 min), then dropped.
        cluster.eventual.forgetSilent();
        expect(cluster.eventual.originCount).toBe(1000);
        clock.now += WINDOW + FORGET_ORIGIN_MS + 1;
        cluster.eventual.forgetSilent();
        expect(cluster.eventual.originCount).toBe(0);
      } finally {
        await wire.close();
        await node.close();
      }
    }, 60_000);

    it('retained batches: 300,000 hits published stay under retainHits (200,000); once stale, none is kept', async () => {
      const prefix = `ret${process.pid}`;
      const clock = { now: Date.now() };
      const node = await RlNode.start({
        servers: nats.url,
        prefix,
        options: { policies: [eventualPolicy('p', 5, WINDOW)] },
        wall: () => clock.now,
      });
      try {
        const eventual = node.rl.linked!.eventual;
        for (let round = 0; round < 300; round++) {
          for (let i = 0; i < 1000; i++) expect(node.check(`r${round}-${i}`)).toBe(true);
          eventual.flush();
          // Let the connection write out what it has (a round trip to the server).
          if (round % 50 === 0) await node.nc.flush();
        }
        expect(node.stats.publishedHits).toBe(300_000);
        const retained = eventual.retainedSize;
        expect(retained.hits).toBeLessThanOrEqual(200_000);
        expect(retained.hits).toBeGreaterThan(190_000);
        // Past the horizon every batch is stale: the next trim drops them all.
        clock.now += WINDOW + 1;
        eventual.forgetSilent();
        expect(eventual.retainedSize).toEqual({ batches: 0, hits: 0 });
      } finally {
        await node.close();
      }
    }, 60_000);
  });
});

// ---- strict ------------------------------------------------------------------------------------

/** A strict store in memory (the policy's own algorithm on JSON states); it can be switched off. */
class MemoryTier implements StrictTier {
  up = true;
  private readonly data = new Map<string, string>();
  constructor(private readonly observed: (policy: Policy, key: string, state: unknown) => void) {}
  available(): boolean {
    return this.up;
  }
  async consume(
    policy: Policy,
    key: string,
    at: number,
    cost: number,
    out: Decision,
  ): Promise<boolean> {
    await Promise.resolve();
    if (!this.up) throw new StoreError('down');
    const raw = this.data.get(key);
    const state =
      (raw === undefined ? null : policy.algorithm.decode(JSON.parse(raw))) ??
      policy.algorithm.create();
    policy.algorithm.peek(state, at, cost, out);
    if (out.allowed) {
      policy.algorithm.commit(state, at, cost);
      this.data.set(key, JSON.stringify(policy.algorithm.encode(state)));
    }
    this.observed(policy, key, state);
    return out.allowed;
  }
  async refund(): Promise<void> {}
  clear(): void {
    this.data.clear();
  }
}

const fn = { service: 'svc', requestType: 'fn' } as ResolvedFunConfig;
const request = (user: string): GenApiRequest => ({
  request_id: 'r',
  service: 'svc',
  request_type: 'fn',
  version: null,
  args: {},
  user_id: user,
  device_id: null,
  user_roles: null,
});
const strictPolicy: PolicyConfig = {
  id: 's',
  key: 'user_id',
  limit: 1,
  windowMs: WINDOW,
  mode: 'strict',
};

describe('strict mode: deny cache, fallback share, store view, per-key queues', () => {
  it('200,000 keys, each allowed then denied (deny cache, share, store view), then the store down (fallback): every cache empties after the window', async () => {
    const clock = { now: 1_800_000_000_000 };
    const limiter = new RateLimiter(
      { policies: [strictPolicy], sweepMs: SWEEP },
      silentLogger(),
      () => clock.now,
      () => clock.now,
    );
    open.push(limiter);
    const tier = new MemoryTier((policy, key, state) => limiter.storeState(policy, key, state));
    limiter.strict = tier;
    const policy = limiter.policy('s')!;
    const KEYS = 200_000;
    const baseline = settledHeap();
    for (let i = 0; i < KEYS; i++) {
      expect(
        (await limiter.check(request(`k${i}`), fn, { ip: null, socketId: null })).allowed,
      ).toBe(true);
      expect(
        (await limiter.check(request(`k${i}`), fn, { ip: null, socketId: null })).allowed,
      ).toBe(false);
    }
    expect(policy.denials.size).toBe(KEYS);
    expect(policy.known!.size).toBe(KEYS);
    expect(policy.store.size).toBe(KEYS);
    // The store goes down for other keys: the fallback's local state grows too.
    tier.up = false;
    for (let i = 0; i < 10_000; i++)
      await limiter.check(request(`down${i}`), fn, { ip: null, socketId: null });
    expect(policy.store.size).toBe(KEYS + 10_000);
    const peakHeap = process.memoryUsage().heapUsed;
    sweepUntil(limiter, clock, clock.now + 2 * WINDOW + SWEEP);
    expect(policy.denials.size).toBe(0);
    expect(policy.known!.size).toBe(0);
    expect(policy.store.size).toBe(0);
    tier.clear();
    expectHeapBack(baseline, peakHeap, 20 * 1024 * 1024);
  }, 60_000);

  describe('the JetStream KV store', () => {
    let server: NatsServer;
    let nc: NatsConnection;
    beforeAll(async () => {
      server = await NatsServer.start({ jetstream: true });
      nc = await connect({ servers: server.url });
      await waitForJetStream(nc);
    });
    afterAll(async () => {
      await nc?.close();
      await server?.dispose();
    });

    it('2,000 keys at once, allowed then denied: no compare-and-swap queue is left; deny cache, share and store view empty after the window', async () => {
      const clock = { now: Date.now() };
      // The KV entries expire on the server in real time (the bucket's TTL is the window + 1 s),
      // so a window far longer than the rounds take: on a loaded machine 2,000 compare-and-swaps
      // can outlast a 1 s window, and the second round would find its keys gone.
      const windowMs = 60_000;
      const limits = new RateLimits(
        {
          policies: [{ ...strictPolicy, windowMs }],
          sweepMs: SWEEP,
          strict: { timeoutMs: 20_000 },
        },
        silentLogger(),
        { wall: () => clock.now },
      );
      try {
        await limits.attach({
          nc,
          connected: () => !nc.isClosed(),
          subjects: new Subjects(`mst${process.pid}`),
        });
        const strict = limits.linked!.strict;
        const users = Array.from({ length: 2000 }, (_, i) => `kv${i}`);
        const first = await Promise.all(users.map((user) => check(limits, user)));
        expect(first.every((decision) => decision.allowed)).toBe(true);
        const second = await Promise.all(users.map((user) => check(limits, user)));
        expect(second.every((decision) => !decision.allowed)).toBe(true);
        await settled(() => strict.stats.operations);
        expect(strict.pendingKeys).toBe(0);
        expect(limits.health().stats.storeErrors).toBe(0);
        const policy = limits.limiter.policy('s')!;
        expect(policy.denials.size).toBe(2000);
        expect(policy.known!.size).toBe(2000);
        expect(policy.store.size).toBe(2000);
        sweepUntil(limits.limiter, clock, clock.now + 2 * windowMs + SWEEP);
        expect(policy.denials.size).toBe(0);
        expect(policy.known!.size).toBe(0);
        expect(policy.store.size).toBe(0);
        // Timeouts leave no queue behind either: 500 keys with a 1 ms store timeout.
        const hurried = new RateLimits(
          { policies: [strictPolicy], sweepMs: SWEEP, strict: { timeoutMs: 1 } },
          silentLogger(),
        );
        await hurried.attach({
          nc,
          connected: () => !nc.isClosed(),
          subjects: new Subjects(`msh${process.pid}`),
        });
        await Promise.all(Array.from({ length: 500 }, (_, i) => check(hurried, `h${i}`)));
        await settled(() => hurried.linked!.strict.stats.operations);
        expect(hurried.linked!.strict.pendingKeys).toBe(0);
        await hurried.close();
      } finally {
        await limits.close();
      }
    }, 60_000);
  });
});

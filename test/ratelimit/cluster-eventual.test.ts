/**
 * `eventual` rate limits across real gateway processes on a real NATS cluster
 * (../shared/spec/rate-limiting.md §3.2, §4.3, §5 B cases 20–24 and 26).
 *
 * Gateways are the real CLI (`gen-gateway --config <json> --nats <url>`) in demo mode, each
 * connected to a different nats-server of a routed cluster; the demo service comes from the demo
 * worker process. Each case has its own policy (one per demo function, keyed by user_id) or its
 * own users, so cases do not interfere:
 *   - `burst`  on demo.echo:    10 per 5 s    (spec 20)
 *   - `demo.limited` (replaced) 60 per 1 s    (spec 21)
 *   - `count`  on demo.whoami:  10 per 30 s   (specs 22, 23 and the 3-gateway bound)
 * A call's outcome is what the limiter decided: `denied` (the rate-limit push), `allowed` (the call
 * ran). Each node's view of a key comes from the admin API (GET /admin/rate-limits/policies/:id/keys/:value).
 *
 * Clock skew (spec 26) is shown in-process: RateLimits instances on the same cluster, one with a
 * wall clock 500 ms ahead, driven through `limiter.check` at a steady rate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import { NatsCluster } from '../support/nats.js';
import {
  call,
  callAsync,
  count,
  DemoWorker,
  eventualPolicy,
  RlGateway,
  RlNode,
  type KeyStatus,
  type Outcome,
} from '../support/ratelimit-cluster.js';
import { realTime, until } from '../support/wait.js';

const fnPolicy = (
  id: string,
  requestType: string,
  limit: number,
  windowMs: number,
): PolicyConfig => ({
  id,
  scope: { service: 'demo', requestType },
  key: 'user_id',
  algorithm: 'sliding_log',
  limit,
  windowMs,
  mode: 'eventual',
});

// The window is 5 s rather than 1 s so that a slow run cannot slide early hits out of the window
// mid-case (which would legitimately admit more); the overshoot bound does not depend on it.
const BURST = fnPolicy('burst', 'echo', 10, 5_000);
const STEADY = fnPolicy('demo.limited', 'limited', 60, 1_000);
const COUNT = fnPolicy('count', 'whoami', 10, 30_000);
// Spec 24's short window, which the split outlasts (real processes: a real-time wait).
const SHORT = fnPolicy('short', 'echo_async', 10, 1_500);
const POLICIES = [BURST, STEADY, COUNT, SHORT];

/** Everything started by a describe block, stopped in its afterAll. */
class Resources {
  gateways: RlGateway[] = [];
  workers: DemoWorker[] = [];
  nodes: RlNode[] = [];
  cluster: NatsCluster | null = null;

  async gateway(
    name: string,
    nats: string,
    extra: { eventual?: { warmup?: boolean; heartbeatMs?: number } } = {},
  ): Promise<RlGateway> {
    const gateway = await RlGateway.start(name, {
      nats,
      policies: POLICIES,
      ...(extra.eventual ? { eventual: extra.eventual } : {}),
    });
    this.gateways.push(gateway);
    return gateway;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.gateways.map((gateway) => gateway.stop().catch(() => undefined)));
    await Promise.all(this.nodes.map((node) => node.close().catch(() => undefined)));
    await Promise.all(this.workers.map((worker) => worker.stop().catch(() => undefined)));
    await this.cluster?.dispose();
  }
}

async function calls(
  client: Awaited<ReturnType<RlGateway['client']>>,
  fn: string,
  n: number,
  args?: Record<string, unknown>,
): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (let i = 0; i < n; i++) out.push((await call(client, fn, args)).outcome);
  return out;
}

const WHOAMI: Record<string, unknown> = {};

/** The part of a key status that must be equal on converged nodes (reset/retry move with time). */
const view = (status: KeyStatus) => ({
  remaining: status.remaining,
  allowed: status.allowed,
  limit: status.limit,
});

describe('3-server NATS cluster with routes, gateway processes on different servers', () => {
  const res = new Resources();
  let cluster: NatsCluster;
  let a: RlGateway;

  beforeAll(async () => {
    cluster = res.cluster = await NatsCluster.start({ size: 3 });
    // Workers and gateways start side by side: a gateway pulls a worker's config when it discovers it.
    // (Each is in `res` as soon as it is up, so a failed start still stops the others.)
    const worker = DemoWorker.start(cluster.urls[0]!).then((started) => res.workers.push(started));
    a = await res.gateway('a', cluster.urls[0]!);
    await worker;
  }, 60_000);
  afterAll(async () => {
    await res.dispose();
  }, 30_000);

  it('spec 22, one node: allowed equals the limit exactly (its own batches are not counted again)', async () => {
    const client = await a.client('one22');
    const outcomes = await calls(client, 'whoami', 15, WHOAMI);
    expect(outcomes).toEqual([
      ...Array<Outcome>(10).fill('allowed'),
      ...Array<Outcome>(5).fill('denied'),
    ]);
    // The 10 hits are published in batches after the calls: wait for the last one.
    await until(
      async () => (await a.health()).cluster?.eventual.publishedHits === 10,
      'the 10 hits published',
    );
    const status = await a.status('count', 'one22');
    expect(status).toMatchObject({ remaining: 0, allowed: false, limit: 10 });
    const health = await a.health();
    expect(health.cluster?.nodes).toBe(1);
    expect(health.cluster?.eventual.publishedHits).toBe(10);
    expect(health.cluster?.eventual.received).toBe(0);
    expect(health.cluster?.eventual.appliedHits).toBe(0);
  });

  describe('with gateways b and c on the other servers', () => {
    let b: RlGateway;
    let c: RlGateway;

    beforeAll(async () => {
      [b, c] = await Promise.all([
        res.gateway('b', cluster.urls[1]!),
        res.gateway('c', cluster.urls[2]!),
      ]);
      await until(
        async () =>
          (await Promise.all([a, b, c].map((g) => g.health()))).every(
            (h) => h.cluster?.nodes === 3,
          ),
        'three nodes in every membership',
      );
    }, 60_000);

    it('spec 20, burst: 20 requests in flight at once, 10 per node, limit 10 → each node ≤ 10 (k ≤ the other node’s in-flight requests), then every node denies', async () => {
      const [ca, cb] = await Promise.all([a.client('burst20'), b.client('burst20')]);
      const outcomes = await Promise.all([
        ...Array.from({ length: 10 }, () => callAsync(ca, 'echo')),
        ...Array.from({ length: 10 }, () => callAsync(cb, 'echo')),
      ]);
      const onA = count(outcomes.slice(0, 10));
      const onB = count(outcomes.slice(10));
      const total = onA.allowed + onB.allowed;
      console.info(
        `spec 20 burst: allowed ${onA.allowed} on a + ${onB.allowed} on b = ${total} (k = ${total - 10})`,
      );
      // All 10 requests of a node are decided before a batch from the other can arrive, so the
      // stated bound is 10 + k with k ≤ 10 (the other node's requests in flight): each node alone
      // never passes the limit.
      expect(onA.failed + onB.failed).toBe(0);
      expect(onA.allowed).toBeLessThanOrEqual(10);
      expect(onB.allowed).toBeLessThanOrEqual(10);
      expect(total).toBeGreaterThanOrEqual(10);
      // Once the batches crossed, every node counts every allowed hit: no further admits in the window.
      await until(
        async () =>
          (await Promise.all([a, b, c].map((g) => g.status('burst', 'burst20')))).every(
            (s) => s.remaining === 0 && !s.allowed,
          ),
        'all nodes full',
      );
      const after = await Promise.all([callAsync(ca, 'echo'), callAsync(cb, 'echo')]);
      expect(after).toEqual(['denied', 'denied']);
    });

    it('spec 20, burst spread over 200 ms: both nodes get a request every 20 ms (20 in all), limit 10 → allowed ≤ 10 + k with k ≤ 3', async () => {
      const [ca, cb] = await Promise.all([a.client('spread20'), b.client('spread20')]);
      const pending: Promise<Outcome>[] = [];
      const t0 = Date.now();
      for (let i = 0; i < 10; i++) {
        const wait = t0 + i * 20 - Date.now();
        if (wait > 0) await realTime(wait, 'pacing: requests 20 ms apart race real propagation');
        pending.push(callAsync(ca, 'echo'), callAsync(cb, 'echo'));
      }
      const tally = count(await Promise.all(pending));
      console.info(`spec 20 spread: ${JSON.stringify(tally)}`);
      // Hits arrive in pairs; while a batch crosses in < 20 ms each tick sees every earlier tick
      // (exactly 10 allowed); in < 40 ms, one tick late (12). The spec's LAN target, k ≤ 3 (the
      // other node's requests in flight during one propagation delay), leaves room for one slow batch.
      const k = tally.allowed - 10;
      expect(tally.failed).toBe(0);
      expect(k).toBeGreaterThanOrEqual(0);
      expect(k).toBeLessThanOrEqual(3);
    });

    it('spec 20, spaced: 20 requests 20 ms apart alternating over 2 nodes, limit 10 → allowed ≤ 11', async () => {
      const [ca, cb] = await Promise.all([a.client('spaced20'), b.client('spaced20')]);
      const outcomes: Outcome[] = [];
      for (let i = 0; i < 20; i++) {
        outcomes.push((await call(i % 2 === 0 ? ca : cb, 'echo')).outcome);
        await realTime(20, 'pacing: requests 20 ms apart race real propagation');
      }
      const tally = count(outcomes);
      console.info(
        `spec 20 spaced: ${JSON.stringify(tally)} ${outcomes.map((o) => o[0]).join('')}`,
      );
      expect(tally.failed).toBe(0);
      expect(tally.allowed).toBeGreaterThanOrEqual(10);
      expect(tally.allowed).toBeLessThanOrEqual(11);
    });

    it('spec 21, steady state: 2 nodes each offered 50 req/s for 10 s against 60/s → total between 570 and 660 (−5 %/+10 % of 600)', async () => {
      const [ca, cb] = await Promise.all([a.client('steady21'), b.client('steady21')]);
      const durationMs = 10_000;
      const periodMs = 20;
      const start = Date.now() + 50;
      const drive = async (client: typeof ca): Promise<Outcome[]> => {
        const pending: Promise<Outcome>[] = [];
        for (let i = 0; i * periodMs < durationMs; i++) {
          const due = start + i * periodMs;
          const wait = due - Date.now();
          if (wait > 0) await realTime(wait, 'pacing: a steady 50 req/s per node in real time');
          pending.push(callAsync(client, 'limited'));
        }
        return Promise.all(pending);
      };
      const [onA, onB] = await Promise.all([drive(ca), drive(cb)]);
      const tally = count([...onA, ...onB]);
      const expected = (STEADY.limit * durationMs) / 1_000;
      console.info(
        `spec 21 steady: ${JSON.stringify(tally)}, a ${count(onA).allowed}, b ${count(onB).allowed}; expected ${expected} (${Date.now() - start} ms)`,
      );
      expect(tally.failed).toBe(0);
      expect(tally.allowed + tally.denied).toBe(1000);
      expect(tally.allowed).toBeGreaterThanOrEqual(expected * 0.95);
      expect(tally.allowed).toBeLessThanOrEqual(expected * 1.1);
    }, 30_000);

    it('spec 22, two nodes: each node counts the cluster-wide hits once (admin status on every node), never twice', async () => {
      const [ca, cb] = await Promise.all([a.client('two22'), b.client('two22')]);
      expect(await calls(ca, 'whoami', 3, WHOAMI)).toEqual(Array(3).fill('allowed'));
      expect(await calls(cb, 'whoami', 4, WHOAMI)).toEqual(Array(4).fill('allowed'));
      // 7 hits: the status counts one more request, so remaining is 10 − 7 − 1 = 2 on every node.
      const expected = { remaining: 2, allowed: true, limit: 10 };
      await until(
        async () =>
          (await Promise.all([a, b, c].map((g) => g.status('count', 'two22')))).every(
            (s) => s.remaining === 2,
          ),
        '7 hits everywhere',
      );
      // Never twice: a later hit from a and from b (a marker, published after their batches)
      // reaches every node, and the views still count 7.
      const markers = await Promise.all([a.client('two22-marker'), b.client('two22-marker')]);
      for (const marker of markers)
        expect((await call(marker, 'whoami', WHOAMI)).outcome).toBe('allowed');
      await until(
        async () =>
          (await Promise.all([a, b, c].map((g) => g.status('count', 'two22-marker')))).every(
            (s) => s.remaining === 10 - 2 - 1,
          ),
        'the markers everywhere',
      );
      for (const g of [a, b, c]) expect(view(await g.status('count', 'two22'))).toEqual(expected);
      // Further hits keep the views equal: 3 on c fill the window everywhere.
      const cc = await c.client('two22');
      expect(await calls(cc, 'whoami', 3, WHOAMI)).toEqual(Array(3).fill('allowed'));
      await until(
        async () =>
          (await Promise.all([a, b, c].map((g) => g.status('count', 'two22')))).every(
            (s) => s.remaining === 0 && !s.allowed,
          ),
        'full everywhere',
      );
      expect((await call(ca, 'whoami', WHOAMI)).outcome).toBe('denied');
    });

    it('3 gateways: 30 requests round-robin 20 ms apart, limit 10 → cluster-wide allowed between 10 and 11, all views full', async () => {
      const clients = await Promise.all([a, b, c].map((g) => g.client('tri')));
      const outcomes: Outcome[] = [];
      for (let i = 0; i < 30; i++) {
        outcomes.push((await call(clients[i % 3]!, 'whoami', WHOAMI)).outcome);
        await realTime(20, 'pacing: requests 20 ms apart race real propagation');
      }
      const tally = count(outcomes);
      console.info(`3 gateways: ${JSON.stringify(tally)} ${outcomes.map((o) => o[0]).join('')}`);
      expect(tally.failed).toBe(0);
      expect(tally.allowed).toBeGreaterThanOrEqual(10);
      expect(tally.allowed).toBeLessThanOrEqual(11);
      for (const g of [a, b, c])
        expect(view(await g.status('count', 'tri'))).toEqual({
          remaining: 0,
          allowed: false,
          limit: 10,
        });
    });

    it('3 gateways, concurrent: 30 requests at once (10 per node), limit 10 → each node ≤ 10, all views full afterwards', async () => {
      const clients = await Promise.all([a, b, c].map((g) => g.client('tri-burst')));
      const outcomes = await Promise.all(
        clients.flatMap((client) =>
          Array.from({ length: 10 }, () => callAsync(client, 'whoami', WHOAMI)),
        ),
      );
      const perNode = [0, 1, 2].map((i) => count(outcomes.slice(i * 10, i * 10 + 10)));
      console.info(`3 gateways concurrent: allowed ${perNode.map((t) => t.allowed).join(' + ')}`);
      for (const tally of perNode) {
        expect(tally.failed).toBe(0);
        expect(tally.allowed).toBeLessThanOrEqual(10);
      }
      expect(perNode.reduce((sum, t) => sum + t.allowed, 0)).toBeGreaterThanOrEqual(10);
      await until(
        async () =>
          (await Promise.all([a, b, c].map((g) => g.status('count', 'tri-burst')))).every(
            (s) => s.remaining === 0 && !s.allowed,
          ),
        'full everywhere',
      );
    });

    it('spec 23, node join with warm-up (default): the new node matches a through its warm-up sync and denies after the remaining 2', async () => {
      const [ca, cb] = await Promise.all([a.client('join23'), b.client('join23')]);
      expect(await calls(ca, 'whoami', 4, WHOAMI)).toEqual(Array(4).fill('allowed'));
      expect(await calls(cb, 'whoami', 4, WHOAMI)).toEqual(Array(4).fill('allowed'));
      await until(
        async () =>
          (await a.status('count', 'join23')).remaining === 1 &&
          (await b.status('count', 'join23')).remaining === 1,
        '8 hits on a and b',
      );

      const d = await res.gateway('d', cluster.urls[2]!);
      // d matches a because it warmed up (one sync, replayed batches), asserted below: without
      // warm-up it would not see the 8 earlier hits at all (next case).
      const matched = await until(async () => {
        const [onA, onD] = await Promise.all([
          a.status('count', 'join23'),
          d.status('count', 'join23'),
        ]);
        return onD.remaining === onA.remaining && onD.allowed === onA.allowed ? onD : null;
      }, "d's view equal to a's");
      expect(view(matched)).toEqual({ remaining: 1, allowed: true, limit: 10 });
      const health = await d.health();
      expect(health.cluster?.eventual).toMatchObject({ syncs: 1, coldStart: false });
      expect(health.cluster?.eventual.replayedBatches).toBeGreaterThan(0);
      expect(
        d.logs(
          'eventual rate limits start without warm-up: counts are empty until peers publish (overshoot up to one limit per window)',
        ),
      ).toEqual([]);

      const cd = await d.client('join23');
      expect(await calls(cd, 'whoami', 3, WHOAMI)).toEqual(['allowed', 'allowed', 'denied']);
      await until(async () => (await a.health()).cluster?.nodes === 4, 'd counted on a');
      // A stopping gateway says bye: a drops it on the bye ("peer left"), not after 3 missed
      // heartbeats ("peer silent").
      const left = a.logs('rate-limit peer left').length;
      const silent = a.logs('rate-limit peer silent; no longer counted').length;
      await d.stop();
      await until(async () => (await a.health()).cluster?.nodes === 3, 'd no longer counted on a');
      expect(a.logs('rate-limit peer left')).toHaveLength(left + 1);
      expect(a.logs('rate-limit peer silent; no longer counted')).toHaveLength(silent);
    });

    it('spec 23, node join without warm-up: the new node starts empty (overshoot ≤ 1 × limit) and logs the cold start', async () => {
      const [ca, cb] = await Promise.all([a.client('cold23'), b.client('cold23')]);
      expect(await calls(ca, 'whoami', 4, WHOAMI)).toEqual(Array(4).fill('allowed'));
      expect(await calls(cb, 'whoami', 4, WHOAMI)).toEqual(Array(4).fill('allowed'));
      await until(
        async () =>
          (await a.status('count', 'cold23')).remaining === 1 &&
          (await b.status('count', 'cold23')).remaining === 1,
        '8 hits on a and b',
      );

      const e = await res.gateway('e', cluster.urls[1]!, { eventual: { warmup: false } });
      // Marker hits on a, published after e listened, reach e: nothing of the 8 earlier hits did.
      // (Another marker until one arrives: e's subscription may reach a's server a moment later.)
      const marker = await a.client('cold23-marker');
      await until(
        async () => {
          expect((await call(marker, 'whoami', WHOAMI)).outcome).toBe('allowed');
          return (await e.status('count', 'cold23-marker')).remaining < 9;
        },
        'a marker hit on e',
        { intervalMs: 100 },
      );
      expect(view(await e.status('count', 'cold23'))).toEqual({
        remaining: 9,
        allowed: true,
        limit: 10,
      });
      const warnings = e.logs(
        'eventual rate limits start without warm-up: counts are empty until peers publish (overshoot up to one limit per window)',
      );
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.level).toBe(40);
      const health = await e.health();
      expect(health.cluster?.eventual).toMatchObject({ syncs: 0, coldStart: true });

      const ce = await e.client('cold23');
      const outcomes = await calls(ce, 'whoami', 12, WHOAMI);
      const allowedOnE = outcomes.filter((o) => o === 'allowed').length;
      // The overshoot of the cold node is at most one limit: 8 (before) + 10 (e) ≤ 2 × limit.
      expect(allowedOnE).toBe(10);
      expect(outcomes.slice(10)).toEqual(['denied', 'denied']);
      expect(8 + allowedOnE).toBeLessThanOrEqual(2 * COUNT.limit);
      // e's hits reached the others (their 10-hit logs are full). On failure, say what each node saw.
      await until(
        async () => (await a.status('count', 'cold23')).remaining === 0,
        "e's hits on a",
      ).catch(async (err: Error) => {
        const [ha, he, sa, sb, se] = await Promise.all([
          a.health(),
          e.health(),
          a.status('count', 'cold23'),
          b.status('count', 'cold23'),
          e.status('count', 'cold23'),
        ]);
        throw new Error(
          `${err.message}: a ${JSON.stringify(ha.cluster)} e ${JSON.stringify(he.cluster)} status a ${JSON.stringify(sa)} b ${JSON.stringify(sb)} e ${JSON.stringify(se)}`,
        );
      });
      await e.stop();
    });

    it('spec 26, clock skew: a node 500 ms ahead changes the allowed total of case 21 (2 × 50/s for 10 s, 60/s) by ≤ 5 % (in-process nodes on the cluster)', async () => {
      const policy = eventualPolicy('steady', 60, 1_000);
      const start = (prefix: string, server: number, wall?: () => number) =>
        RlNode.start({
          servers: cluster.urls[server]!,
          prefix,
          options: { policies: [policy] },
          ...(wall ? { wall } : {}),
        }).then((node) => {
          res.nodes.push(node);
          return node;
        });
      const base = [await start('skew-base', 0), await start('skew-base', 1)];
      const skewed = [
        await start('skew-ahead', 0),
        await start('skew-ahead', 1, () => Date.now() + 500),
      ];
      await until(
        () => [...base, ...skewed].every((node) => node.nodes() === 2),
        'each pair counting both nodes',
      );
      // Both pairs get the same schedule: every node offered 50/s (one check every 20 ms) for 10 s.
      const durationMs = 10_000;
      const t0 = Date.now();
      const allowed = { base: 0, skewed: 0 };
      const perNode = [0, 0, 0, 0];
      for (let i = 0; i * 20 < durationMs; i++) {
        const wait = t0 + i * 20 - Date.now();
        if (wait > 0) await realTime(wait, 'pacing: 50 checks/s per node in real time');
        for (const [j, node] of [...base, ...skewed].entries()) {
          if (!node.check('u')) continue;
          perNode[j]!++;
          if (j < 2) allowed.base++;
          else allowed.skewed++;
        }
      }
      const expected = (60 * durationMs) / 1_000;
      console.info(
        `spec 26: allowed without skew ${allowed.base}, with +500 ms skew ${allowed.skewed} (expected ≈ ${expected}); per node ${perNode.join(', ')}`,
      );
      expect(Math.abs(allowed.skewed - allowed.base)).toBeLessThanOrEqual(allowed.base * 0.05);
      for (const total of [allowed.base, allowed.skewed]) {
        expect(total).toBeGreaterThanOrEqual(expected * 0.95);
        expect(total).toBeLessThanOrEqual(expected * 1.1);
      }
    });
  });
});

describe('2-server NATS cluster with proxied routes: net split and heal, server kill and restart', () => {
  const res = new Resources();
  let cluster: NatsCluster;
  let a: RlGateway;
  let b: RlGateway;

  beforeAll(async () => {
    cluster = res.cluster = await NatsCluster.start({ size: 2, proxiedRoutes: true });
    // One demo worker per side, so each side can still run calls while split.
    // Workers and gateways start side by side: a gateway pulls a worker's config when it discovers it.
    // (Each is in `res` as soon as it is up, so a failed start still stops the others.)
    const workers = Promise.all(
      cluster.urls.map((url) => DemoWorker.start(url).then((started) => res.workers.push(started))),
    );
    [a, b] = await Promise.all([
      res.gateway('a', cluster.urls[0]!),
      res.gateway('b', cluster.urls[1]!),
    ]);
    await workers;
    await until(
      async () =>
        (await Promise.all([a, b].map((g) => g.health()))).every((h) => h.cluster?.nodes === 2),
      'two nodes',
    );
  }, 60_000);
  afterAll(async () => {
    await res.dispose();
  }, 30_000);

  /** Route connections closed so far, as the server logged them. */
  const routesClosed = (i: number): number =>
    cluster.servers[i]!.log.match(/Router? connection closed/g)?.length ?? 0;

  it('spec 24: split, each side enforces alone (≤ limit each); heal: replay converges both views, stale hits cause no denials', async () => {
    const clients = {
      a: await Promise.all(['sp-full', 'sp-part', 'sp-short'].map((user) => a.client(user))),
      b: await Promise.all(['sp-full', 'sp-part', 'sp-short'].map((user) => b.client(user))),
    };
    const closedBefore = [routesClosed(0), routesClosed(1)];
    cluster.isolate(0);
    cluster.isolate(1);
    await until(
      () => routesClosed(0) > closedBefore[0]! && routesClosed(1) > closedBefore[1]!,
      'routes closed on both servers',
    );

    // (While split, what matters is the limiter's decision: a call it let through could still fail
    // to reach a worker, so "admitted" = not denied.)
    const admitted = (outcomes: Outcome[]) => outcomes.filter((o) => o !== 'denied').length;
    // Each side enforces the limit alone: 15 requests per side, 10 admitted per side (total ≤ 2 × limit).
    const fullA = await calls(clients.a[0]!, 'whoami', 15, WHOAMI);
    const fullB = await calls(clients.b[0]!, 'whoami', 15, WHOAMI);
    expect([admitted(fullA), admitted(fullB)]).toEqual([10, 10]);
    expect(fullA.slice(10)).toEqual(Array(5).fill('denied'));
    expect(fullB.slice(10)).toEqual(Array(5).fill('denied'));
    // Partly used: 6 on a, 3 on b; each side sees only its own hits.
    expect(admitted(await calls(clients.a[1]!, 'whoami', 6, WHOAMI))).toBe(6);
    expect(admitted(await calls(clients.b[1]!, 'whoami', 3, WHOAMI))).toBe(3);
    await realTime(300, "a span in which the other side's hits must not arrive (split)");
    expect((await a.status('count', 'sp-part')).remaining).toBe(10 - 6 - 1);
    expect((await b.status('count', 'sp-part')).remaining).toBe(10 - 3 - 1);
    // Short window (echo_async: 10 per 1.5 s): both sides exhaust it, then the split lasts past
    // the window.
    expect(admitted(await calls(clients.a[2]!, 'echo_async', 10))).toBe(10);
    expect(admitted(await calls(clients.b[2]!, 'echo_async', 10))).toBe(10);
    const shortDone = performance.now();
    const healthBefore = await Promise.all([a.health(), b.health()]);
    await realTime(
      Math.max(0, shortDone + SHORT.windowMs + 200 - performance.now()),
      "the gateways' real clocks must pass the short window",
    );

    cluster.heal();
    await cluster.waitForRoutes();
    // Converged: each node now counts 9 hits for sp-part (remaining 0 after one more), equal on both.
    await until(async () => {
      const [onA, onB] = await Promise.all([
        a.status('count', 'sp-part'),
        b.status('count', 'sp-part'),
      ]);
      return onA.remaining === 0 && onB.remaining === 0 && onA.allowed && onB.allowed;
    }, 'both views at 9 hits');
    await until(
      async () =>
        (await Promise.all([a.health(), b.health()])).every((h) => h.cluster?.nodes === 2),
      'both nodes counting each other again',
    );
    // Converged by replay (noticed at the next heartbeat, then one replay round trip), not by
    // anything slower: both nodes asked for and got replayed batches.
    expect(view(await a.status('count', 'sp-full'))).toEqual(
      view(await b.status('count', 'sp-full')),
    );
    expect((await a.status('count', 'sp-full')).allowed).toBe(false);
    const healthAfter = await Promise.all([a.health(), b.health()]);
    for (const [i, after] of healthAfter.entries()) {
      const before = healthBefore[i]!.cluster!.eventual;
      expect(after.cluster!.eventual.replayRequests).toBeGreaterThan(before.replayRequests);
      expect(after.cluster!.eventual.replayedBatches).toBeGreaterThan(before.replayedBatches);
    }
    console.info(
      `spec 24: stale hits dropped a=${healthAfter[0].cluster!.eventual.staleHits} b=${healthAfter[1].cluster!.eventual.staleHits}`,
    );

    // No burst of denials from replayed old hits: the short window's hits are older than its window.
    expect((await call(clients.a[2]!, 'echo_async')).outcome).toBe('allowed');
    expect((await call(clients.b[2]!, 'echo_async')).outcome).toBe('allowed');
    // Each node counts exactly the two fresh hits, none of the 20 replayed old ones.
    await until(
      async () =>
        (await Promise.all([a.status('short', 'sp-short'), b.status('short', 'sp-short')])).every(
          (s) => s.remaining === 10 - 2 - 1,
        ),
      'two short hits on both',
    );
    // And a fresh user is served normally on both sides.
    const fresh = await Promise.all([a.client('sp-fresh'), b.client('sp-fresh')]);
    expect((await call(fresh[0], 'whoami', WHOAMI)).outcome).toBe('allowed');
    expect((await call(fresh[1], 'whoami', WHOAMI)).outcome).toBe('allowed');
  }, 60_000);

  it("spec 24, server kill: b's nats-server is SIGKILLed, b keeps deciding with its local counts, the server restarts and the counts converge", async () => {
    const [ca, cb] = await Promise.all([a.client('kill'), b.client('kill')]);
    expect(await calls(ca, 'whoami', 2, WHOAMI)).toEqual(['allowed', 'allowed']);
    expect(await calls(cb, 'whoami', 2, WHOAMI)).toEqual(['allowed', 'allowed']);
    await until(
      async () =>
        (await a.status('count', 'kill')).remaining === 5 &&
        (await b.status('count', 'kill')).remaining === 5,
      '4 hits on both',
    );

    // The gateway logs one line per NATS status change (src/bus/nats/link.ts).
    const DOWN = 'NATS status: disconnected; requests fail fast until it is back';
    const UP = 'NATS status: connected';
    const disconnectsBefore = b.logs(DOWN).length;
    const upBefore = b.logs(UP).length;
    await cluster.servers[1]!.kill();
    // b still decides (its limiter needs no NATS): 2 more hits, counted locally at once.
    const duringB = await calls(cb, 'whoami', 2, WHOAMI);
    console.info(`spec 24 kill: b's calls right after the kill: ${duringB.join(', ')}`);
    expect(duringB).not.toContain('denied');
    expect((await b.status('count', 'kill')).remaining).toBe(10 - 6 - 1);
    expect(await calls(ca, 'whoami', 2, WHOAMI)).toEqual(['allowed', 'allowed']);

    await cluster.servers[1]!.restart();
    await cluster.waitForRoutes();
    await until(
      () => b.logs(DOWN).length > disconnectsBefore && b.logs(UP).length > upBefore,
      'b reconnected',
    );
    await until(async () => {
      const [onA, onB] = await Promise.all([a.status('count', 'kill'), b.status('count', 'kill')]);
      return onA.remaining === 1 && onB.remaining === 1;
    }, 'both views at 8 hits');
    console.info(
      `spec 24 kill: b reconnected to ${JSON.stringify(
        b
          .logs(UP)
          .slice(upBefore)
          .map((line) => line.server),
      )} (servers ${cluster.urls.join(', ')})`,
    );
    // Both still work together: 2 more hits fill the window everywhere.
    expect(await calls(cb, 'whoami', 2, WHOAMI)).toEqual(['allowed', 'allowed']);
    await until(async () => !(await a.status('count', 'kill')).allowed, 'a full');
    expect((await call(ca, 'whoami', WHOAMI)).outcome).toBe('denied');
  }, 60_000);
});

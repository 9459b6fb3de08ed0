/**
 * `eventual` mode over time (../shared/spec/rate-limiting.md §5 cases 22–24, 26), RateLimits
 * instances on a real nats-server:
 * - a peer silent for longer than FORGET_ORIGIN_MS (10 min) that then speaks again must not have
 *   its old batches counted twice (one node behind a TcpProxy, both on one fake wall clock that
 *   the test moves by minutes);
 * - a cold start (no warm-up) is counted: the cold node's admissions in its first window, and the
 *   peers' hits over the limit; the end of the window is logged;
 * - a peer's clock skew above eventual.maxSkewMs is logged once per episode.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FORGET_ORIGIN_MS } from '../../src/ratelimit/cluster/eventual.js';
import { NatsServer } from '../support/nats.js';
import { eventualPolicy, RlNode } from '../support/ratelimit-cluster.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { realTime, until } from '../support/wait.js';

let nats: NatsServer;
const nodes: RlNode[] = [];
const proxies: TcpProxy[] = [];
let prefixes = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.close().catch(() => undefined)));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close().catch(() => undefined)));
});
afterAll(async () => {
  await nats?.dispose();
});

const HOUR = 3_600_000;
const MINUTE = 60_000;

describe('a peer silent for longer than FORGET_ORIGIN_MS', () => {
  it('is remembered while any hit applied from it can still count: no replay of counted batches, no double counting (1 h window)', async () => {
    const prefix = `rlh${process.pid}n${++prefixes}`;
    const clock = { now: Date.now() };
    const wall = () => clock.now;
    const options = { policies: [eventualPolicy('p', 100, HOUR)], eventual: { heartbeatMs: 100 } };
    const proxy = await TcpProxy.start(nats.port);
    proxies.push(proxy);
    const a = await RlNode.start({ servers: proxy.url, prefix, options, wall });
    const b = await RlNode.start({ servers: nats.url, prefix, options, wall });
    nodes.push(a, b);
    await until(() => a.nodes() === 2 && b.nodes() === 2, 'two nodes');

    for (let i = 0; i < 3; i++) expect(a.check('u')).toBe(true);
    await until(() => b.used('p', 'u') === 3, 'b counting a’s 3 hits');
    const eventualOf = (node: RlNode) => node.rl.linked!.eventual;
    expect(eventualOf(b).originCount).toBe(1);

    // a is cut off, and stays silent for 11 minutes (more than FORGET_ORIGIN_MS, less than the window).
    proxy.cut();
    await until(() => a.nc.isClosed() || proxy.connections === 0, 'a cut off');
    clock.now += FORGET_ORIGIN_MS + MINUTE;
    eventualOf(b).forgetSilent();
    // a's hits are still inside b's 1 h window: a must not be forgotten yet.
    expect(eventualOf(b).originCount).toBe(1);
    // While cut off, a allows one more hit (its batch 2; b misses it live).
    expect(a.check('u')).toBe(true);
    await until(() => a.lastSeq === 2, 'a publishing batch 2');
    const before = { ...b.stats };

    proxy.restore();
    // a's heartbeat names batch 2: b asks for what it lacks (2..2), never batch 1 again.
    await until(() => b.used('p', 'u') === 4, 'b counting the missed hit');
    await realTime(300, 'a span (3 heartbeats) in which batch 1 must not be replayed again');
    expect(b.used('p', 'u')).toBe(4);
    expect(b.stats.appliedHits - before.appliedHits).toBe(1);
    // Batch 2 reaches b either replayed (2..2) or live: the NATS client keeps a publish made while
    // reconnecting and sends it once back. Either way batch 1 is not replayed again (at most one
    // replayed batch, one applied hit).
    expect(b.stats.replayedBatches - before.replayedBatches).toBeLessThanOrEqual(1);
    expect(a.used('p', 'u')).toBe(4);

    // Silent beyond the longest horizon + FORGET_ORIGIN_MS: now a is forgotten (memory is bounded)…
    proxy.cut();
    await until(() => proxy.connections === 0, 'a cut off again');
    clock.now += HOUR + FORGET_ORIGIN_MS + MINUTE;
    eventualOf(b).forgetSilent();
    expect(eventualOf(b).originCount).toBe(0);
    expect(b.used('p', 'u')).toBe(0);
    // …and when it speaks again, only its fresh hit counts: its old batches are expired at the
    // origin (not replayed) and would be stale here anyway.
    expect(a.check('u')).toBe(true);
    await until(() => a.lastSeq === 3, 'a publishing batch 3');
    const staleBefore = b.stats.staleHits;
    proxy.restore();
    await until(() => b.used('p', 'u') === 1, 'b counting the fresh hit');
    await realTime(300, 'a span (3 heartbeats) in which no old batch may be counted');
    expect(b.used('p', 'u')).toBe(1);
    expect(b.stats.staleHits).toBeGreaterThanOrEqual(staleBefore);
    expect(eventualOf(b).originCount).toBe(1);
  }, 30_000);
});

describe('cold start and clock skew are counted and logged', () => {
  it('spec 23 without warm-up: the cold node counts what it admitted in its first window, peers count the hits that arrived over the limit, and the end of the window is logged', async () => {
    const prefix = `rlc${process.pid}n${++prefixes}`;
    const clock = { now: Date.now() };
    const wall = () => clock.now;
    const policies = [eventualPolicy('p', 5, 60_000)];
    const a = await RlNode.start({
      servers: nats.url,
      prefix,
      options: { policies, eventual: { heartbeatMs: 100 } },
      wall,
    });
    nodes.push(a);
    for (let i = 0; i < 5; i++) expect(a.check('u')).toBe(true);
    expect(a.check('u')).toBe(false);
    // a's batch is out before the cold node subscribes (it never sees it: no warm-up).
    await until(() => a.lastSeq === 1, 'a publishing its batch');
    // The server has delivered it once this round trip is back.
    await a.nc.flush();
    const cold = await RlNode.start({
      servers: nats.url,
      prefix,
      options: { policies, eventual: { heartbeatMs: 100, warmup: false } },
      wall,
    });
    nodes.push(cold);
    await until(() => a.nodes() === 2 && cold.nodes() === 2, 'two nodes');
    // The cold node does not know a's 5 hits: it admits a whole limit again (the documented overshoot).
    const admitted = Array.from({ length: 7 }, () => cold.check('u')).filter(Boolean).length;
    expect(admitted).toBe(5);
    expect(cold.stats).toMatchObject({ coldStart: true, coldAdmissions: 5 });
    // a sees each of them arrive for a key already at its limit: 5 hits of overshoot, counted.
    await until(() => a.stats.overLimitHits === 5, 'a counting 5 hits over the limit');
    expect(a.stats.appliedHits).toBe(5);
    expect(a.rl.health().cluster!.eventual.overLimitHits).toBe(5);
    // A warm node never counts cold admissions.
    expect(a.stats).toMatchObject({ coldStart: false, coldAdmissions: 0 });
    // One window later the cold node's counts are complete; its next admission logs the summary.
    clock.now += 60_001;
    expect(cold.check('v')).toBe(true);
    const summary = cold.logs.find((line) =>
      line.msg.startsWith('eventual rate limits: cold-start window over'),
    );
    expect(summary).toMatchObject({ level: 40, coldAdmissions: 5 });
    expect(cold.stats.coldAdmissions).toBe(5);
  });

  it('a peer whose clock is off by more than eventual.maxSkewMs is logged once (and again when it is back under); maxPeerSkewMs reports it', async () => {
    const prefix = `rlk${process.pid}n${++prefixes}`;
    let ahead = 800;
    const policies = [eventualPolicy('p', 5, 60_000)];
    const a = await RlNode.start({
      servers: nats.url,
      prefix,
      options: { policies, eventual: { heartbeatMs: 100 } },
    });
    const b = await RlNode.start({
      servers: nats.url,
      prefix,
      options: { policies, eventual: { heartbeatMs: 100 } },
      wall: () => Date.now() + ahead,
    });
    nodes.push(a, b);
    const warnings = () =>
      a.logs.filter((line) => line.msg === 'rate-limit peer clock skew above maxSkewMs');
    await until(() => warnings().length === 1, 'the skew warning');
    expect(warnings()[0]).toMatchObject({ level: 40, peer: b.origin, maxSkewMs: 500 });
    expect(Math.abs((warnings()[0]!.skewMs as number) - 800)).toBeLessThanOrEqual(100);
    expect(Math.abs(a.rl.health().cluster!.maxPeerSkewMs - 800)).toBeLessThanOrEqual(100);
    // b (whose own clock is the skewed one) sees a 800 ms behind: it warns too.
    await until(
      () =>
        b.logs.some(
          (line) =>
            line.msg === 'rate-limit peer clock skew above maxSkewMs' && line.peer === a.origin,
        ),
      'b warning about a',
    );
    // Several more heartbeats: still one warning (per episode, not per heartbeat).
    await realTime(400, 'several heartbeats (100 ms) in which no second warning may come');
    expect(warnings()).toHaveLength(1);
    // Fixed: back under, logged at info; a later drift would warn again.
    ahead = 0;
    await until(
      () =>
        a.logs.some(
          (line) =>
            line.msg === 'rate-limit peer clock skew back under maxSkewMs' &&
            line.peer === b.origin,
        ),
      'back under',
    );
    ahead = 900;
    await until(() => warnings().length === 2, 'the second episode');
  });
});

/**
 * `eventual` mode over long silences (../shared/spec/rate-limiting.md §5 cases 22 and 24): a peer
 * that is silent for longer than FORGET_ORIGIN_MS (10 min) and then speaks again must not have its
 * old batches counted twice. Two RateLimits instances on a real nats-server, one of them behind a
 * TcpProxy (the partition), both on one fake wall clock that the test moves by minutes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FORGET_ORIGIN_MS } from '../../src/ratelimit/cluster/eventual.js';
import { NatsServer } from '../support/nats.js';
import { waitFor } from '../support/phoenix-client.js';
import { eventualPolicy, RlNode, sleep } from '../support/ratelimit-cluster.js';
import { TcpProxy } from '../support/tcp-proxy.js';

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
    await waitFor(() => a.nodes() === 2 && b.nodes() === 2, 'two nodes', 3_000);

    for (let i = 0; i < 3; i++) expect(a.check('u')).toBe(true);
    await waitFor(() => b.used('p', 'u') === 3, 'b counting a’s 3 hits');
    const eventualOf = (node: RlNode) => node.rl.linked!.eventual;
    expect(eventualOf(b).originCount).toBe(1);

    // a is cut off, and stays silent for 11 minutes (more than FORGET_ORIGIN_MS, less than the window).
    proxy.cut();
    await waitFor(() => a.nc.isClosed() || proxy.connections === 0, 'a cut off', 2_000);
    clock.now += FORGET_ORIGIN_MS + MINUTE;
    eventualOf(b).forgetSilent();
    // a's hits are still inside b's 1 h window: a must not be forgotten yet.
    expect(eventualOf(b).originCount).toBe(1);
    // While cut off, a allows one more hit (its batch 2; b misses it live).
    expect(a.check('u')).toBe(true);
    await waitFor(() => a.lastSeq === 2, 'a publishing batch 2');
    const before = { ...b.stats };

    proxy.restore();
    // a's heartbeat names batch 2: b asks for what it lacks (2..2), never batch 1 again.
    await waitFor(() => b.used('p', 'u') === 4, 'b counting the missed hit', 5_000);
    await sleep(300);
    expect(b.used('p', 'u')).toBe(4);
    expect(b.stats.appliedHits - before.appliedHits).toBe(1);
    expect(b.stats.replayedBatches - before.replayedBatches).toBe(1);
    expect(a.used('p', 'u')).toBe(4);

    // Silent beyond the longest horizon + FORGET_ORIGIN_MS: now a is forgotten (memory is bounded)…
    proxy.cut();
    await waitFor(() => proxy.connections === 0, 'a cut off again', 2_000);
    clock.now += HOUR + FORGET_ORIGIN_MS + MINUTE;
    eventualOf(b).forgetSilent();
    expect(eventualOf(b).originCount).toBe(0);
    expect(b.used('p', 'u')).toBe(0);
    // …and when it speaks again, only its fresh hit counts: its old batches are expired at the
    // origin (not replayed) and would be stale here anyway.
    expect(a.check('u')).toBe(true);
    await waitFor(() => a.lastSeq === 3, 'a publishing batch 3');
    const staleBefore = b.stats.staleHits;
    proxy.restore();
    await waitFor(() => b.used('p', 'u') === 1, 'b counting the fresh hit', 5_000);
    await sleep(300);
    expect(b.used('p', 'u')).toBe(1);
    expect(b.stats.staleHits).toBeGreaterThanOrEqual(staleBefore);
    expect(eventualOf(b).originCount).toBe(1);
  }, 30_000);
});

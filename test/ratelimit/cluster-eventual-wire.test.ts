/**
 * The `eventual` mode on the wire (../shared/spec/rate-limiting.md §4.3, §5 cases 22–24): several
 * RateLimits instances (different origins) linked to one real nats-server, driven through
 * `limiter.check`, and a raw NATS client that watches `<prefix>.rl.hits` / `<prefix>.rl.node`
 * (and the replay and sync subjects) and forges messages. Every test uses its own subject prefix.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HitBatch, Heartbeat } from '../../src/ratelimit/cluster/messages.js';
import { NatsServer } from '../support/nats.js';
import { eventualPolicy, RlNode, Wire } from '../support/ratelimit-cluster.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import type { RateLimitsOptions } from '../../src/ratelimit/rate-limits.js';
import { realTime, until } from '../support/wait.js';

let nats: NatsServer;
let nodes: RlNode[] = [];
let wires: Wire[] = [];
let proxies: TcpProxy[] = [];
let prefixCounter = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterEach(async () => {
  await Promise.all(nodes.map((node) => node.close().catch(() => undefined)));
  await Promise.all(wires.map((wire) => wire.close().catch(() => undefined)));
  await Promise.all(proxies.map((proxy) => proxy.close().catch(() => undefined)));
  nodes = [];
  wires = [];
  proxies = [];
});
afterAll(async () => {
  await nats?.dispose();
});

/** A fresh subject prefix and a raw client watching its rate-limit subjects. */
async function setup(): Promise<{ prefix: string; wire: Wire }> {
  const prefix = `rlw${++prefixCounter}`;
  const wire = await Wire.start(nats.url, prefix);
  wires.push(wire);
  return { prefix, wire };
}

async function node(
  prefix: string,
  options: RateLimitsOptions,
  extra: { servers?: string; wall?: () => number } = {},
): Promise<RlNode> {
  const started = await RlNode.start({
    servers: extra.servers ?? nats.url,
    prefix,
    options,
    ...(extra.wall ? { wall: extra.wall } : {}),
  });
  nodes.push(started);
  return started;
}

const P = 'p';
const policies = (
  limit = 100,
  windowMs = 60_000,
  more: PolicyConfig[] = [],
): RateLimitsOptions => ({ policies: [eventualPolicy(P, limit, windowMs), ...more] });
const batches = (wire: Wire, prefix: string): HitBatch[] => wire.on<HitBatch>(`${prefix}.rl.hits`);
const hitCount = (list: HitBatch[]): number => list.reduce((sum, batch) => sum + batch.h.length, 0);

describe('hit batches on <prefix>.rl.hits', () => {
  it('carry the origin id, a per-origin sequence from 1, and the hits with the origin wall-clock time and cost', async () => {
    const { prefix, wire } = await setup();
    // The node's wall clock runs 123 s ahead: the batch must carry the origin's clock, not the receiver's.
    const offset = 123_456;
    const a = await node(prefix, policies(), { wall: () => Date.now() + offset });
    const before = Date.now() + offset;
    expect(a.check('u1')).toBe(true);
    const after = Date.now() + offset;
    await until(() => batches(wire, prefix).length === 1, 'the first batch');
    const [first] = batches(wire, prefix);
    expect(first!.o).toBe(a.origin);
    expect(first!.s).toBe(1);
    expect(first!.h).toHaveLength(1);
    const [policy, key, at, cost] = first!.h[0]!;
    expect([policy, key, cost]).toEqual([P, 'user_id:u1', 1]);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);

    // Two hits in the same tick travel together in batch 2.
    expect(a.check('u1')).toBe(true);
    expect(a.check('u2')).toBe(true);
    await until(() => batches(wire, prefix).length === 2, 'the second batch');
    const second = batches(wire, prefix)[1]!;
    expect(second.o).toBe(a.origin);
    expect(second.s).toBe(2);
    expect(second.h.map(([p, k]) => `${p}/${k}`)).toEqual([`${P}/user_id:u1`, `${P}/user_id:u2`]);
    expect(a.stats).toMatchObject({ published: 2, publishedHits: 3 });

    // Heartbeats on rl.node carry the origin, its last batch and its wall clock.
    const beat = await until(
      () => wire.on<Heartbeat>(`${prefix}.rl.node`).find((h) => h.o === a.origin && h.s === 2),
      'a heartbeat naming batch 2',
    );
    expect(Math.abs(beat.t - (Date.now() + offset))).toBeLessThan(3_000);
    expect(beat.bye).toBeUndefined();
  });

  it('never carry denied hits: limit 3, 8 requests → 3 hits published and counted by the peer', async () => {
    const { prefix, wire } = await setup();
    const a = await node(prefix, policies(3));
    const b = await node(prefix, policies(3));
    const allowed = Array.from({ length: 8 }, () => a.check('u1')).filter(Boolean).length;
    expect(allowed).toBe(3);
    await until(() => hitCount(batches(wire, prefix)) === 3, '3 published hits');
    await until(() => b.used(P, 'u1') === 3, 'the peer counting 3');
    // Markers: a later hit from each node, published after everything before it, reaches the other.
    expect(b.check('u1')).toBe(false);
    expect(a.check('marker-a')).toBe(true);
    expect(b.check('marker-b')).toBe(true);
    await until(
      () => b.used(P, 'marker-a') === 1 && a.used(P, 'marker-b') === 1,
      'the markers on both nodes',
    );
    // Only the 3 allowed hits (and the markers) were published: not a's 5 denials, not b's one.
    const keys = batches(wire, prefix).flatMap((batch) => batch.h.map(([, key]) => key));
    expect(keys.filter((key) => key === 'user_id:u1')).toHaveLength(3);
    expect(a.stats.publishedHits).toBe(3 + 1);
    expect(b.stats.publishedHits).toBe(1);
    expect(b.used(P, 'u1')).toBe(3);
  });
});

describe('counting', () => {
  it('one node ignores its own batches (no self-echo): exactly `limit` allowed', async () => {
    const { prefix, wire } = await setup();
    const a = await node(prefix, policies(5));
    const results: boolean[] = [];
    for (let i = 0; i < 12; i++) {
      results.push(a.check('u1'));
      // Let each batch come back on a's own subscription before the next request: it is
      // published, and a round trip later the server has delivered it.
      const published = results.filter(Boolean).length;
      await until(() => a.lastSeq === published, 'the batch published');
      await a.nc.flush();
    }
    expect(results.filter(Boolean)).toHaveLength(5);
    expect(results.slice(0, 5).every(Boolean)).toBe(true);
    expect(hitCount(batches(wire, prefix))).toBe(5);
    expect(a.used(P, 'u1')).toBe(5);
    expect(a.stats).toMatchObject({ received: 0, appliedHits: 0, duplicates: 0 });
  });

  it('two nodes: each node counts the cluster-wide hits once, never twice', async () => {
    const { prefix } = await setup();
    const a = await node(prefix, policies(20));
    const b = await node(prefix, policies(20));
    for (let i = 0; i < 3; i++) expect(a.check('u1')).toBe(true);
    for (let i = 0; i < 4; i++) expect(b.check('u1')).toBe(true);
    await until(() => a.used(P, 'u1') === 7 && b.used(P, 'u1') === 7, 'both nodes counting 7');
    // Markers, published after those hits, reach the other node: nothing was applied twice.
    expect(a.check('marker')).toBe(true);
    expect(b.check('marker')).toBe(true);
    await until(
      () => a.used(P, 'marker') === 2 && b.used(P, 'marker') === 2,
      'the markers on both nodes',
    );
    expect([a.used(P, 'u1'), b.used(P, 'u1')]).toEqual([7, 7]);
    expect(a.stats.appliedHits).toBe(4 + 1);
    expect(b.stats.appliedHits).toBe(3 + 1);
  });

  it('a duplicated batch (re-published by a raw client) is not applied twice', async () => {
    const { prefix, wire } = await setup();
    const a = await node(prefix, policies());
    const b = await node(prefix, policies());
    expect(a.check('u1')).toBe(true);
    await until(() => a.lastSeq === 1, 'the first batch published');
    expect(a.check('u1')).toBe(true);
    await until(
      () => wire.raw(`${prefix}.rl.hits`).length === 2 && b.used(P, 'u1') === 2,
      'two batches applied',
    );
    // (b may already have seen a batch twice: live, and in a's answer to its start-up sync.)
    const before = { ...b.stats };
    for (const data of wire.raw(`${prefix}.rl.hits`)) {
      wire.publish(`${prefix}.rl.hits`, data);
      wire.publish(`${prefix}.rl.hits`, data);
    }
    await wire.flush();
    await until(() => b.stats.duplicates === before.duplicates + 4, '4 more duplicates seen');
    expect(b.used(P, 'u1')).toBe(2);
    expect(b.stats).toMatchObject({ received: 2, appliedHits: 2 });
    // A marker published after the copies: once b has it, no further copy is counted.
    wire.publish(`${prefix}.rl.hits`, {
      o: 'marker-node',
      s: 1,
      h: [[P, 'user_id:m', Date.now(), 1]],
    });
    await wire.flush();
    await until(() => b.used(P, 'm') === 1, 'the marker batch at b');
    expect(b.stats.duplicates).toBe(before.duplicates + 4);
  });

  it('malformed messages on every rate-limit subject are ignored and the node keeps working', async () => {
    const { prefix, wire } = await setup();
    const a = await node(prefix, policies());
    const b = await node(prefix, policies());
    await until(() => a.nodes() === 2 && b.nodes() === 2, 'both nodes counting each other');
    const junk: (string | object | Uint8Array)[] = [
      'not json',
      '[]',
      'null',
      '42',
      new Uint8Array([0xff, 0x00, 0xfe]),
      {},
      { o: '' },
      { o: 'x'.repeat(65), s: 1, h: [] },
      { o: 'forger', s: 0, h: [] },
      { o: 'forger', s: -1, h: [] },
      { o: 'forger', s: 1.5, h: [] },
      { o: 'forger', s: 'one', h: [] },
      { o: 'forger', s: 1, h: 'hits' },
      { o: 'forger', done: true },
      { o: 'forger', done: true, to: -3 },
    ];
    for (const suffix of [
      'rl.hits',
      'rl.node',
      'rl.sync',
      `rl.replay.${a.origin}`,
      `rl.replay.${b.origin}`,
      'rl.policy',
    ]) {
      for (const message of junk) wire.publish(`${prefix}.${suffix}`, message);
    }
    wire.publish(`${prefix}.rl.replay.${a.origin}`, { from: 5, to: 1 });
    wire.publish(`${prefix}.rl.node`, { o: 'forger', s: 1 }); // no t
    wire.publish(`${prefix}.rl.policy`, {
      o: 'forger',
      op: 'put',
      policy: { id: 'bad id!', limit: 0 },
    }); // invalid: refused
    wire.publish(`${prefix}.rl.policy`, { o: 'forger', op: 'explode' });
    // A batch with one good hit among bad ones: the good one is applied, the others dropped.
    const now = Date.now();
    wire.publish(`${prefix}.rl.hits`, {
      o: 'forger',
      s: 1,
      h: [
        [P, 'user_id:m', now, 1],
        [P, 5, now, 1],
        [P, 'user_id:m', 'soon', 1],
        [P, 'user_id:m', now, 0],
        [P, 'user_id:m', now],
        'junk',
        null,
      ],
    });
    await wire.flush();
    await until(
      () => b.used(P, 'm') === 1 && a.used(P, 'm') === 1,
      'the one good hit applied on both',
    );
    // Both nodes still work together: policies unchanged, peers counted, hits shared.
    for (const n of [a, b]) expect(n.rl.limiter.policies().map((p) => p.id)).toEqual([P]);
    expect(a.check('u1')).toBe(true);
    await until(() => b.used(P, 'u1') === 1, 'a later hit reaching the peer');
    expect(a.nodes()).toBe(2);
    expect(b.nodes()).toBe(2);
    expect(b.used(P, 'm')).toBe(1);
    expect(b.stats.unknownPolicyHits).toBe(0);
    // Without rateLimits.clusterSecret policy messages are not even read (cluster-policy-sync.test.ts
    // covers signed and forged ones).
    expect(
      b.logs.some((line) => line.msg === 'rate-limit policy change from the cluster refused'),
    ).toBe(false);
    expect(b.rl.linked!.policies.stats).toMatchObject({ applied: 0, rejected: 0 });
  });
});

describe('replay, staleness, unknown policies', () => {
  it('a gap (batches missed while cut off) triggers a replay from the origin that fills it', async () => {
    const { prefix, wire } = await setup();
    const eventual = { heartbeatMs: 200 };
    const a = await node(prefix, { ...policies(), eventual });
    const proxy = await TcpProxy.start(nats.port);
    proxies.push(proxy);
    const b = await node(prefix, { ...policies(), eventual }, { servers: proxy.url });
    expect(a.check('u1')).toBe(true);
    await until(() => b.used(P, 'u1') === 1, 'the first hit at b');

    // b is cut off from NATS while a publishes batches 2..4 (b never receives them live).
    proxy.cut();
    for (let i = 0; i < 3; i++) {
      expect(a.check('u1')).toBe(true);
      await until(() => a.lastSeq === 2 + i, `batch ${2 + i} published`);
    }
    await until(
      () => batches(wire, prefix).filter((batch) => batch.o === a.origin).length === 4,
      'a publishing 4 batches',
    );
    expect(b.used(P, 'u1')).toBe(1);
    proxy.restore();
    // a's next heartbeat names batch 4: b asks a for 2..4 on rl.replay.<a> and applies them.
    await until(() => b.used(P, 'u1') === 4, 'b counting the missed hits');
    expect(b.stats.replayRequests).toBeGreaterThanOrEqual(1);
    expect(b.stats.gaps).toBeGreaterThanOrEqual(1);
    expect(b.stats.replayedBatches).toBe(3);
    const requests = wire.on<{ from: number; to: number }>(`${prefix}.rl.replay.${a.origin}`);
    expect(requests[0]).toMatchObject({ from: 2, to: 4 });

    // A gap seen on a live batch: b misses 5 and 6, then receives 7 live and asks for 5..6.
    proxy.cut();
    for (let i = 0; i < 2; i++) {
      expect(a.check('u1')).toBe(true);
      await until(() => a.lastSeq === 5 + i, `batch ${5 + i} published`);
    }
    proxy.restore();
    await until(() => !b.nc.isClosed() && proxy.connections > 0, 'b reconnected');
    // b's subscriptions are back on the server once a round trip after the reconnect is back.
    await b.nc.flush();
    expect(a.check('u1')).toBe(true);
    await until(() => b.used(P, 'u1') === 7, 'b counting all 7 hits');
    expect(b.stats.replayedBatches).toBe(5);
    expect(b.stats.appliedHits).toBe(7);
    expect(a.used(P, 'u1')).toBe(7);
  });

  it('stale hits (origin time older than the window) are dropped and counted, live and replayed', async () => {
    const { prefix, wire } = await setup();
    const short = eventualPolicy('short', 100, 300);
    const a = await node(prefix, policies(100, 60_000, [short]));
    const proxy = await TcpProxy.start(nats.port);
    proxies.push(proxy);
    const b = await node(
      prefix,
      { ...policies(100, 60_000, [short]), eventual: { heartbeatMs: 200 } },
      { servers: proxy.url },
    );

    // Forged live batch: one hit 61 s old (stale for the 60 s window), one 1 s old (counts).
    const now = Date.now();
    wire.publish(`${prefix}.rl.hits`, {
      o: 'old-node',
      s: 1,
      h: [
        [P, 'user_id:s', now - 61_000, 1],
        [P, 'user_id:s', now - 1_000, 1],
      ],
    });
    await wire.flush();
    await until(
      () => b.stats.staleHits === 1 && b.used(P, 's') === 1,
      'one stale, one applied',
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: b ${JSON.stringify(b.stats)} used ${b.used(P, 's')}; a ${JSON.stringify(a.stats)} used ${a.used(P, 's')}`,
      );
    });
    expect(a.stats.staleHits).toBe(1);
    expect(a.used(P, 's')).toBe(1);

    // Replayed: b misses a batch holding a `short` hit and a `p` hit; by the time the replay
    // arrives the short one is older than its 300 ms window and is dropped.
    proxy.cut();
    expect(a.check('r')).toBe(true); // one request, one hit in each policy, one batch
    await until(() => batches(wire, prefix).some((batch) => batch.o === a.origin), "a's batch");
    await realTime(450, "b's real wall clock must pass the short policy's 300 ms window");
    const staleBefore = b.stats.staleHits;
    proxy.restore();
    await until(() => b.used(P, 'r') === 1, 'the replayed p hit');
    expect(b.stats.replayedBatches).toBe(1);
    expect(b.stats.staleHits).toBe(staleBefore + 1);
    expect(b.used('short', 'r')).toBe(0);
    expect(b.check('r')).toBe(true);
  });

  it('hits for policies the node does not have (or does not run eventual) are counted as unknownPolicyHits', async () => {
    const { prefix, wire } = await setup();
    const onlyA = eventualPolicy('only-a', 10, 60_000);
    const localHere: PolicyConfig = {
      id: 'loc',
      scope: { service: 'other' },
      key: 'user_id',
      limit: 10,
      windowMs: 60_000,
      mode: 'local',
    };
    const a = await node(prefix, policies(100, 60_000, [onlyA]));
    const b = await node(prefix, policies(100, 60_000, [localHere]));
    expect(a.check('u1')).toBe(true); // one hit for p, one for only-a
    await until(
      () => b.stats.appliedHits === 1 && b.stats.unknownPolicyHits === 1,
      'one applied, one unknown',
    );
    // A forged hit for b's local policy is not applied to its local counter.
    wire.publish(`${prefix}.rl.hits`, {
      o: 'forger',
      s: 1,
      h: [
        ['loc', 'user_id:u1', Date.now(), 1],
        ['nope', 'user_id:u1', Date.now(), 1],
      ],
    });
    await wire.flush();
    await until(() => b.stats.unknownPolicyHits === 3, 'three unknown');
    expect(b.rl.limiter.status('loc', 'u1')!.remaining).toBe(9);
    expect(b.used(P, 'u1')).toBe(1);
  });

  it('a node that starts asks its peers on rl.sync and starts with their recent hits (warm-up); without warm-up it starts empty and says so', async () => {
    const { prefix, wire } = await setup();
    const a = await node(prefix, policies(10));
    for (let i = 0; i < 6; i++) expect(a.check('u1')).toBe(true);
    await until(() => hitCount(batches(wire, prefix)) === 6, '6 hits published');
    const c = await node(prefix, policies(10));
    await until(() => c.used(P, 'u1') === 6, 'c warmed up');
    // The recorder is one more subscriber of rl.sync: it may see c's request after a answered it.
    await until(
      () =>
        wire
          .on<{ o: string; t: number }>(`${prefix}.rl.sync`)
          .some((request) => request.o === c.origin),
      "the recorder saw c's sync request",
    );
    expect(c.stats).toMatchObject({ syncs: 1, coldStart: false });
    expect(c.stats.replayedBatches).toBeGreaterThanOrEqual(1);
    expect(a.stats.duplicates).toBe(0);

    const cold = await node(prefix, { ...policies(10), eventual: { warmup: false } });
    // Empty now, and (below) the next hit makes it 1, not 7: no replay ever came.
    expect(cold.used(P, 'u1')).toBe(0);
    expect(cold.stats).toMatchObject({ syncs: 0, coldStart: true });
    const warn = cold.logs.find((line) =>
      line.msg.startsWith('eventual rate limits start without warm-up'),
    );
    expect(warn?.level).toBe(40);
    // From now on it counts what peers publish.
    expect(a.check('u1')).toBe(true);
    await until(() => cold.used(P, 'u1') === 1 && c.used(P, 'u1') === 7, 'the next hit everywhere');
  });
});

describe('membership heartbeats on <prefix>.rl.node', () => {
  it('nodes() counts live peers; a closed node sends bye and stops counting at once', async () => {
    const { prefix, wire } = await setup();
    const a = await node(prefix, policies());
    const b = await node(prefix, policies());
    const c = await node(prefix, policies());
    await until(() => [a, b, c].every((n) => n.nodes() === 3), 'three nodes everywhere');
    const origins = new Set(wire.on<Heartbeat>(`${prefix}.rl.node`).map((h) => h.o));
    expect(origins).toEqual(new Set([a.origin, b.origin, c.origin]));

    const cOrigin = c.origin;
    await c.close();
    nodes = nodes.filter((n) => n !== c);
    await until(() => a.nodes() === 2 && b.nodes() === 2, 'c gone');
    // Dropped on its bye (default heartbeats: 500 ms; a silent peer would go after 3 missed).
    for (const n of [a, b]) {
      expect(n.logs.filter((line) => line.msg === 'rate-limit peer left')).toHaveLength(1);
      expect(n.logs.filter((line) => line.msg.startsWith('rate-limit peer silent'))).toEqual([]);
    }
    expect(
      wire.on<Heartbeat>(`${prefix}.rl.node`).find((h) => h.o === cOrigin && h.bye === true),
    ).toBeDefined();
    await realTime(600, 'a heartbeat period in which c must not come back');
    expect([a.nodes(), b.nodes()]).toEqual([2, 2]);
  });

  it('a node that goes silent without bye is dropped after missedHeartbeats periods', async () => {
    const { prefix } = await setup();
    const eventual = { heartbeatMs: 150, missedHeartbeats: 3 };
    const a = await node(prefix, { ...policies(), eventual });
    const b = await node(prefix, { ...policies(), eventual });
    await until(() => a.nodes() === 2 && b.nodes() === 2, 'two nodes');
    // b's connection dies (no bye is sent): a stops counting it after ~3 × 150 ms.
    await b.nc.close();
    await until(() => a.nodes() === 1, 'b dropped');
    await until(
      () =>
        a.logs.some(
          (line) =>
            line.msg === 'rate-limit peer silent; no longer counted' && line.peer === b.origin,
        ),
      'the silent-peer warning',
    );
  });
});

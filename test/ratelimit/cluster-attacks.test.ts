// @vitest-environment node
/**
 * Forged and replayed rate-limit cluster messages (issue 12: "a single forged `rl.hits` message
 * locked a user out for 60 s on every gateway; 1 M forged keys added ~600 MB per gateway").
 * Two eventual nodes (RateLimits linked like a gateway links them) with a cluster secret on a real
 * nats-server, and a raw NATS client that forges, signs with the wrong or the right key, and
 * replays what it captured (protocol/ratelimit.md §5.4, §7):
 * - (a) one forged batch (unsigned, or signed with another key) locks nobody out on either node;
 * - (b) 1 M forged keys: unsigned, all dropped (no key held); signed from a fake origin, held
 *   keys stay within eventual.maxKeysPerOrigin; the other bounds (maxOrigins, maxBatchHits,
 *   maxReceivedBatchBytes, maxKeyLength) drop what is beyond them, counted and logged;
 * - (c) a real second node's hits still count (positive control), also right after the flood;
 * - replays: a captured batch is a duplicate, a captured heartbeat or bye changes no membership,
 *   a captured sync request is answered once;
 * - without a secret nothing changes: unsigned messages are accepted.
 */
import { connect, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WARNING_INTERVAL_MS } from '../../src/cluster/throttled-warning.js';
import { Signer } from '../../src/ratelimit/cluster/signing.js';
import type { ClusterHealth } from '../../src/ratelimit/cluster/index.js';
import type { Hit, HitBatch } from '../../src/ratelimit/cluster/messages.js';
import type { RateLimitsOptions } from '../../src/ratelimit/rate-limits.js';
import { gc, settledHeap } from '../support/heap.js';
import { NatsServer } from '../support/nats.js';
import { eventualPolicy, RlNode, type LogRecord } from '../support/ratelimit-cluster.js';
import { until } from '../support/wait.js';

const SECRET = 'cluster-attack-tests-shared-secret';
const P = 'p';
/** The policy under attack: 5 calls per minute per user. */
const LIMIT = 5;
const REFUSED =
  'rate-limit cluster message refused: missing or wrong signature (not a gateway, or rateLimits.clusterSecret differs)';

let nats: NatsServer;
let raw: NatsConnection;
let nodes: RlNode[] = [];
let prefixCounter = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
  raw = await connect({ servers: nats.url });
});
afterEach(async () => {
  await Promise.all(nodes.map((node) => node.close().catch(() => undefined)));
  nodes = [];
});
afterAll(async () => {
  await raw?.close();
  await nats?.dispose();
});

const encoder = new TextEncoder();
const bytes = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

function options(extra: Partial<RateLimitsOptions> = {}): RateLimitsOptions {
  return {
    policies: [eventualPolicy(P, LIMIT, 60_000)],
    clusterSecret: SECRET,
    ...extra,
    eventual: { heartbeatMs: 100, ...extra.eventual },
  };
}

async function node(prefix: string, extra: Partial<RateLimitsOptions> = {}): Promise<RlNode> {
  const started = await RlNode.start({ servers: nats.url, prefix, options: options(extra) });
  nodes.push(started);
  return started;
}

/** Two linked nodes on a fresh prefix, each counting the other. */
async function pair(
  extra: Partial<RateLimitsOptions> = {},
): Promise<{ prefix: string; a: RlNode; b: RlNode }> {
  const prefix = `rlx${++prefixCounter}`;
  const a = await node(prefix, extra);
  const b = await node(prefix, extra);
  await until(() => a.nodes() === 2 && b.nodes() === 2, 'a and b see each other');
  return { prefix, a, b };
}

const health = (node: RlNode): ClusterHealth => node.rl.linked!.health();
const auth = (node: RlNode) => health(node).auth;
const warnings = (node: RlNode, msg: string): LogRecord[] =>
  node.logs.filter((line) => line.level === 40 && line.msg === msg);

/** Publishes on the raw connection, signed with `secret` (null: unsigned). */
function publish(
  subject: string,
  data: Uint8Array,
  secret: string | null,
  reply?: string,
  headers?: MsgHdrs,
): void {
  const signed =
    headers ?? (secret === null ? undefined : new Signer(secret).headers(subject, data, reply));
  raw.publish(subject, data, {
    ...(signed ? { headers: signed } : {}),
    ...(reply === undefined ? {} : { reply }),
  });
}

/** Messages the raw connection captures on `subject`, headers and reply included. */
function capture(subject: string): Msg[] {
  const seen: Msg[] = [];
  raw.subscribe(subject, { callback: (err, msg) => void (err ? undefined : seen.push(msg)) });
  return seen;
}

/** `count` distinct forged keys, `perBatch` per batch, one hit each (cost: the whole limit). */
function* forgedBatches(origin: string, count: number, perBatch: number): Generator<HitBatch> {
  const now = Date.now();
  for (let s = 1; (s - 1) * perBatch < count; s++) {
    const h: Hit[] = [];
    for (let i = (s - 1) * perBatch; i < Math.min(count, s * perBatch); i++)
      h.push([P, `user_id:forged-${i}`, now, LIMIT]);
    yield { o: origin, s, h };
  }
}

/**
 * Publishes 1 M forged keys on `<prefix>.rl.hits` (200 batches of 5000), 20 batches at a time,
 * each round waiting until `handled()` (batches the slower node refused or received) caught up:
 * the nodes keep up, so the server drops nothing as a slow consumer. Returns the batches sent.
 */
async function flood(
  prefix: string,
  origin: string,
  secret: string | null,
  handled: () => number,
): Promise<number> {
  let sent = 0;
  let round = 0;
  for (const batch of forgedBatches(origin, 1_000_000, 5000)) {
    publish(`${prefix}.rl.hits`, bytes(batch), secret);
    sent++;
    if (++round < 20) continue;
    round = 0;
    await raw.flush();
    await until(
      () => handled() >= sent,
      () => `${sent} batches handled (${handled()})`,
    );
  }
  await raw.flush();
  await until(
    () => handled() >= sent,
    () => `${sent} batches handled (${handled()})`,
  );
  return sent;
}

describe('forged hit batches with a cluster secret', () => {
  it('(a) one forged batch, unsigned or signed with another key, locks the victim out on neither node; refused, counted and logged once', async () => {
    const { prefix, a, b } = await pair();
    // The whole limit in one hit: accepted, it would lock "victim" out for 60 s.
    const forged = bytes({ o: 'forger', s: 1, h: [[P, 'user_id:victim', Date.now(), LIMIT]] });
    publish(`${prefix}.rl.hits`, forged, null);
    publish(`${prefix}.rl.hits`, forged, 'another-secret-of-enough-length');
    // A forged heartbeat does not make a third node either (fewer fallback shares).
    publish(`${prefix}.rl.node`, bytes({ o: 'forger', s: 1, t: Date.now(), n: 1 }), null);
    await raw.flush();
    await until(() => auth(a).rejected >= 3 && auth(b).rejected >= 3, 'the forgeries refused');
    for (const n of [a, b]) {
      expect(n.used(P, 'victim')).toBe(0);
      expect(n.check('victim')).toBe(true);
      expect(n.nodes()).toBe(2);
      expect(n.stats.received).toBe(0);
      expect(warnings(n, REFUSED)).toHaveLength(1);
      expect(warnings(n, REFUSED)[0]).toMatchObject({ subject: `${prefix}.rl.hits` });
    }
  });

  it('(b) 1 M forged keys, unsigned: all dropped, no key held, the heap does not grow with them', async () => {
    const { prefix, a, b } = await pair();
    const before = settledHeap();
    const sent = await flood(prefix, 'forger', null, () =>
      Math.min(auth(a).rejected, auth(b).rejected),
    );
    expect(sent).toBe(200);
    const after = settledHeap();
    for (const n of [a, b]) {
      expect(n.rl.limiter.keys).toBe(0);
      expect(n.stats.appliedHits).toBe(0);
      expect(warnings(n, REFUSED)).toHaveLength(1);
    }
    // 1 M keys held would be hundreds of MB (the issue measured ~600 MB); none is (measured:
    // < 1 MB). Only with a GC to settle the heap (test/support/heap.ts).
    if (gc) expect(after - before).toBeLessThan(16 * 1024 * 1024);
  }, 120_000);

  it('(b) 1 M forged keys signed with the right key from a fake origin: held keys stay within maxKeysPerOrigin; (c) a real peer’s hits still count', async () => {
    const { prefix, a, b } = await pair();
    const budget = 100_000; // the default
    const before = settledHeap();
    const floodStarted = performance.now();
    const sent = await flood(prefix, 'fake-gateway', SECRET, () =>
      Math.min(a.stats.received, b.stats.received),
    );
    const floodMs = performance.now() - floodStarted;
    expect(sent).toBe(200);
    const after = settledHeap();
    for (const n of [a, b]) {
      expect(n.rl.limiter.keys).toBe(budget);
      expect(n.stats.appliedHits).toBe(budget);
      expect(n.stats.overBudgetHits).toBe(1_000_000 - budget);
      const logged = warnings(
        n,
        'rate-limit hits from a peer dropped: new keys beyond eventual.maxKeysPerOrigin, or keys longer than eventual.maxKeyLength',
      );
      // Throttled (one line per WARNING_INTERVAL_MS): a flood that outlasts the interval on a
      // busy machine logs a line per interval, each with the same figures.
      expect(logged.length).toBeGreaterThanOrEqual(1);
      expect(logged.length).toBeLessThanOrEqual(1 + Math.floor(floodMs / WARNING_INTERVAL_MS));
      for (const line of logged)
        expect(line).toMatchObject({
          origin: 'fake-gateway',
          keys: budget,
          maxKeysPerOrigin: budget,
        });
    }
    // Bounded by the budget, not by what was sent: measured ≈ 425 bytes per held key, so ≈ 85 MB
    // for the two nodes here against ≈ 850 MB had all 1 M keys been kept.
    if (gc) expect(after - before).toBeLessThan(2 * budget * 1024);
    // (c) The fake origin's budget is its own: a's real hits still reach b, new keys included.
    for (let i = 0; i < LIMIT; i++) expect(a.check('alice')).toBe(true);
    await until(() => b.used(P, 'alice') === LIMIT, 'a’s hits counted on b');
    expect(b.check('alice')).toBe(false);
    // Hits for keys b already holds still count, whoever made them.
    publish(
      `${prefix}.rl.hits`,
      bytes({ o: 'fake-gateway', s: 201, h: [[P, 'user_id:forged-0', Date.now(), 1]] }),
      SECRET,
    );
    await raw.flush();
    await until(() => b.stats.overLimitHits === 1, 'the hit on forged-0, over its limit');
    expect(b.stats.overBudgetHits).toBe(1_000_000 - budget);
  }, 180_000);

  it('(c) positive control: hits of a real second node count on the first, both ways', async () => {
    const { a, b } = await pair();
    for (let i = 0; i < 3; i++) expect(a.check('bob')).toBe(true);
    for (let i = 0; i < 2; i++) expect(b.check('bob')).toBe(true);
    await until(() => a.used(P, 'bob') === 5 && b.used(P, 'bob') === 5, 'both see 5 hits');
    expect(a.check('bob')).toBe(false);
    expect(b.check('bob')).toBe(false);
    expect(auth(a)).toMatchObject({ signed: true, rejected: 0, replays: 0 });
    expect(auth(b)).toMatchObject({ signed: true, rejected: 0, replays: 0 });
  });

  it('the other bounds: new origins beyond maxOrigins, batches over maxBatchHits or maxReceivedBatchBytes, keys over maxKeyLength are dropped, counted and logged', async () => {
    const { prefix, a, b } = await pair({
      eventual: {
        maxOrigins: 3,
        maxBatchHits: 100,
        maxReceivedBatchBytes: 131_072,
        maxKeyLength: 64,
      },
    });
    for (let i = 0; i < LIMIT; i++) expect(a.check('carol')).toBe(true);
    await until(() => b.used(P, 'carol') === LIMIT, 'a counted on b');
    const now = Date.now();
    // b knows a: two more origins fit, the other three are ignored.
    for (let o = 0; o < 5; o++)
      publish(
        `${prefix}.rl.hits`,
        bytes({ o: `extra-${o}`, s: 1, h: [[P, `user_id:extra-${o}`, now, 1]] }),
        SECRET,
      );
    // 101 hits > maxBatchHits; ~140 KB > maxReceivedBatchBytes; a 65-character key > maxKeyLength.
    const many = Array.from({ length: 101 }, (_, i): Hit => [P, `user_id:many-${i}`, now, 1]);
    publish(`${prefix}.rl.hits`, bytes({ o: 'extra-0', s: 2, h: many }), SECRET);
    const big = Array.from({ length: 50 }, (_, i): Hit => [
      P,
      `user_id:big-${i}-${'x'.repeat(2800)}`,
      now,
      1,
    ]);
    publish(`${prefix}.rl.hits`, bytes({ o: 'extra-0', s: 3, h: big }), SECRET);
    publish(
      `${prefix}.rl.hits`,
      bytes({ o: 'extra-1', s: 2, h: [[P, `user_id:${'k'.repeat(57)}`, now, 1]] }),
      SECRET,
    );
    await raw.flush();
    await until(
      () =>
        b.stats.oversizedBatches === 2 && b.stats.longKeyHits === 1 && b.stats.ignoredOrigins === 3,
      () => `bounds applied: ${JSON.stringify(b.stats)}`,
    );
    expect(b.rl.linked!.eventual.originCount).toBe(3);
    expect(b.rl.limiter.keys).toBe(3); // carol, extra-0, extra-1
    expect(b.used(P, 'extra-2')).toBe(0);
    for (const msg of [
      'rate-limit message from a new origin ignored: eventual.maxOrigins origins already known',
      'rate-limit hit batch dropped: over eventual.maxBatchHits',
      'rate-limit hit batch dropped: over eventual.maxReceivedBatchBytes',
      'rate-limit hits from a peer dropped: new keys beyond eventual.maxKeysPerOrigin, or keys longer than eventual.maxKeyLength',
    ])
      expect(warnings(b, msg), msg).toHaveLength(1);
    // Membership too: signed heartbeats of new peers beyond maxOrigins do not count as nodes.
    for (let o = 0; o < 3; o++)
      publish(`${prefix}.rl.node`, bytes({ o: `peer-${o}`, s: 0, t: Date.now(), n: 1 }), SECRET);
    await raw.flush();
    // a and two of them fill b's 3 places; the third is ignored.
    await until(() => auth(b).ignoredPeers === 1, 'a peer ignored');
    // A's own hits with a key over maxKeyLength stay on a (b would drop them).
    expect(a.check('d'.repeat(64))).toBe(true);
    expect(a.stats.unsharedHits).toBe(1);
  });
});

describe('replayed signed messages', () => {
  it('a captured batch replayed is a duplicate: counted once', async () => {
    const { prefix, a, b } = await pair();
    const captured = capture(`${prefix}.rl.hits`);
    await raw.flush();
    expect(a.check('dave')).toBe(true);
    await until(() => captured.length === 1 && b.used(P, 'dave') === 1, 'the batch, applied on b');
    const [batch] = captured;
    for (let i = 0; i < 3; i++)
      publish(batch!.subject, batch!.data, null, undefined, batch!.headers);
    await raw.flush();
    await until(() => b.stats.duplicates === 3, 'three duplicates');
    expect(b.used(P, 'dave')).toBe(1);
    expect(auth(b).rejected).toBe(0);
  });

  it('a captured heartbeat or bye replayed changes no membership', async () => {
    const { prefix, a, b } = await pair();
    const beats = capture(`${prefix}.rl.node`);
    await raw.flush();
    await until(
      () => beats.filter((m) => m.json<{ o: string }>().o === a.origin).length >= 2,
      'two heartbeats of a',
    );
    const old = beats.find((m) => m.json<{ o: string }>().o === a.origin)!;
    // a is alive: its older heartbeat is refused (not newer than the last taken).
    const replays = auth(b).replays;
    publish(old.subject, old.data, null, undefined, old.headers);
    await raw.flush();
    await until(() => auth(b).replays > replays, 'the old heartbeat refused');
    expect(b.nodes()).toBe(2);
    // a leaves (bye): neither its old heartbeat nor its bye, replayed, brings it back or changes anything.
    const aOrigin = a.origin;
    await a.close();
    nodes = nodes.filter((n) => n !== a);
    await until(() => b.nodes() === 1, 'a gone');
    const bye = beats.find((m) => {
      const beat = m.json<{ o: string; bye?: boolean }>();
      return beat.o === aOrigin && beat.bye === true;
    })!;
    const before = auth(b).replays;
    publish(old.subject, old.data, null, undefined, old.headers);
    publish(bye.subject, bye.data, null, undefined, bye.headers);
    await raw.flush();
    await until(() => auth(b).replays >= before + 2, 'both refused');
    expect(b.nodes()).toBe(1);
    expect(
      warnings(b, 'rate-limit cluster message refused as a replay').length,
    ).toBeGreaterThanOrEqual(1);
  });

  it('a captured sync request replayed is not answered again; a stale one not at all', async () => {
    const prefix = `rlx${++prefixCounter}`;
    const a = await node(prefix);
    expect(a.check('erin')).toBe(true);
    const syncs = capture(`${prefix}.rl.sync`);
    await raw.flush();
    const c = await node(prefix);
    await until(() => c.used(P, 'erin') === 1, 'c warmed up from a');
    // The capture is another connection: the request may reach it after a's answer reached c.
    const fromC = () => syncs.find((m) => m.json<{ o: string }>().o === c.origin);
    await until(() => fromC() !== undefined, "c's sync request captured");
    const request = fromC()!;
    expect(request.reply).toBeTruthy();
    // Whatever a sends to that inbox from now on is an answer to the replay.
    const answers = capture(request.reply!);
    await raw.flush();
    publish(request.subject, request.data, null, request.reply, request.headers);
    await raw.flush();
    await until(() => auth(a).replays === 1, 'the replayed request refused');
    await a.nc.flush();
    await raw.flush();
    expect(answers).toHaveLength(0);
    // Re-aimed at another inbox: the signature covers the reply subject.
    publish(request.subject, request.data, null, `${request.reply!}.other`, request.headers);
    await raw.flush();
    await until(() => auth(a).rejected === 1, 'the re-aimed request refused');
    // Signed right but stamped two minutes ago (beyond signedMaxAgeMs): a replay.
    publish(
      `${prefix}.rl.sync`,
      bytes({ o: 'someone', t: Date.now() - 120_000 }),
      SECRET,
      '_INBOX.stale',
    );
    await raw.flush();
    await until(() => auth(a).replays === 2, 'the stale request refused');
  });
});

describe('without a cluster secret', () => {
  it('nothing changes: unsigned batches count (NATS permissions are the only guard)', async () => {
    const { prefix, b } = await pair({ clusterSecret: undefined });
    publish(
      `${prefix}.rl.hits`,
      bytes({ o: 'anyone', s: 1, h: [[P, 'user_id:frank', Date.now(), 2]] }),
      null,
    );
    await raw.flush();
    await until(() => b.used(P, 'frank') === 2, 'the unsigned hits counted');
    expect(auth(b)).toMatchObject({ signed: false, rejected: 0, replays: 0 });
  });
});

/**
 * The `strict` rate-limit mode against real JetStream KV (../shared/spec/rate-limiting.md §2.10,
 * §4.3–4.4, §5 cases 11 (strict half), 17, 19, 25, 27, 28): RateLimits instances linked to a real
 * nats-server with JetStream (R1) and to a 3-server JetStream cluster (R3), the bucket the store
 * creates read back with @nats-io/kv.
 *
 * How a decision's source is told apart: denials carry `details.source` ("strict" or
 * "fallback"); allowed answers carry nothing, so the fallback's allowances are
 * `stats.fallback − fallback denials` (fallback "local": every fallback decision is either an
 * allowance or a denial marked "fallback") and the store's allowances are the rest.
 *
 * nats-server < 2.9.21 (Debian bookworm ships 2.9.10) does not serialise compare-and-swap on
 * replicated streams (nats-server#4320): the R3 cases that depend on it are skipped there (and
 * run on a cluster with an R1 bucket instead); the stale-revision check runs on every version.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import pino, { type Logger } from 'pino';
import { NatsCluster, NatsServer, stopUntilPlacementRefused } from '../support/nats.js';
import {
  bucketName,
  capturedLogger,
  check,
  detailsOf,
  NATS_SERVER_VERSION,
  openBucket,
  R3_CAS_SERIALIZABLE,
  settled,
  storedEntry,
  storedHits,
  tallyDecisions,
  waitForJetStream,
} from '../support/kv.js';
import { until } from '../support/wait.js';
import { RateLimits, type RateLimitsOptions } from '../../src/ratelimit/rate-limits.js';
import type { LimiterDecision } from '../../src/ratelimit/limiter.js';
import type { PolicyConfig } from '../../src/ratelimit/types.js';
import { Subjects } from '../../src/nats/subjects.js';

const quiet: Logger = pino({ level: 'silent' });

let prefixes = 0;
/** A fresh subject prefix (and so fresh buckets and no membership cross-talk) per test. */
const freshPrefix = () => `st${process.pid}n${++prefixes}`;

const nodes: RateLimits[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((limits) => limits.close()));
});

interface NodeOptions {
  /**
   * Default: a 5 s store timeout. The cases here are about the store's answers; on two loaded
   * cores a 25 ms timeout would send some of them to the fallback (case 31 covers timeouts).
   */
  strict?: RateLimitsOptions['strict'];
  wall?: () => number;
  logger?: Logger;
}

/** A gateway's rate limits linked to NATS on `nc` (closed after the test). */
async function node(
  nc: NatsConnection,
  prefix: string,
  policies: PolicyConfig[],
  options: NodeOptions = {},
): Promise<RateLimits> {
  const limits = new RateLimits(
    { policies, eventual: { heartbeatMs: 200 }, strict: options.strict ?? { timeoutMs: 5_000 } },
    options.logger ?? quiet,
    options.wall ? { wall: options.wall } : {},
  );
  nodes.push(limits);
  await limits.attach({
    nc,
    connected: () => !nc.isClosed() && !nc.isDraining(),
    subjects: new Subjects(prefix),
  });
  return limits;
}

const strictPolicy = (fields: Partial<PolicyConfig> = {}): PolicyConfig => ({
  id: 'p',
  key: 'user_id',
  algorithm: 'sliding_log',
  limit: 100,
  windowMs: 60_000,
  mode: 'strict',
  ...fields,
});

const strictStats = (limits: RateLimits) => limits.health().cluster!.strict;

/**
 * Splits a node's decisions into the store's and the fallback's (see the header) and checks the
 * bookkeeping every strict request must satisfy: one outcome each, every store failure surfaced
 * as a store error and handled by the fallback, nothing else.
 */
function account(limits: RateLimits, decisions: readonly LimiterDecision[]) {
  const tally = tallyDecisions(decisions);
  const stats = limits.health().stats;
  expect(stats.checks).toBe(decisions.length);
  expect(tally.otherDenied + tally.unavailable).toBe(0);
  // fallback "local": a store error is handled by the fallback, and only a store error is.
  expect(stats.fallback).toBe(stats.storeErrors);
  expect(tally.fallbackDenied).toBeLessThanOrEqual(stats.fallback);
  const fallbackAllowed = stats.fallback - tally.fallbackDenied;
  const storeAllowed = tally.allowed - fallbackAllowed;
  expect(storeAllowed).toBeGreaterThanOrEqual(0);
  // Every request: allowed by the store, denied by the store (or its deny cache), or a store error.
  expect(storeAllowed + tally.strictDenied + stats.storeErrors).toBe(decisions.length);
  return {
    ...tally,
    storeAllowed,
    fallbackAllowed,
    storeErrors: stats.storeErrors,
    nodes: limits.health().cluster!.nodes,
  };
}

describe('strict mode on one JetStream server (R1)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let nc2: NatsConnection;

  beforeAll(async () => {
    server = await NatsServer.start({ jetstream: true });
    nc = await connect({ servers: server.url });
    nc2 = await connect({ servers: server.url });
    await waitForJetStream(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await nc2?.close();
    await server?.dispose();
  });

  it('a bucket JetStream refuses for good (3 replicas on one server) is not retried: the store is off for 5 s, the fallback decides, the error is logged', async () => {
    const { logger, lines } = capturedLogger('info');
    const limits = await node(nc, freshPrefix(), [strictPolicy()], {
      strict: { timeoutMs: 5_000, replicas: 3 },
      logger,
    });
    expect(
      lines().filter((line) => line.msg === 'rate-limit KV bucket not created yet; retrying'),
    ).toEqual([]);
    const failures = lines().filter((line) =>
      String(line.msg).startsWith('rate-limit KV bucket unavailable'),
    );
    expect(failures).toHaveLength(1);
    expect(String(failures[0]!.err)).toMatch(/replicas > 1 not supported in non-clustered mode/);
    expect(limits.linked!.strict.available()).toBe(false);
    expect(detailsOf(await check(limits, 'alice'))).toBeNull();
    expect(limits.health().stats.fallback).toBe(1);
    expect(strictStats(limits).operations).toBe(0);
  });

  it('case 17: 1,000 concurrent consumes on one key, limit 100, decided by the store → exactly 100 allowed (no fallback)', async () => {
    const prefix = freshPrefix();
    // Enough time and CAS attempts for 1,000 contenders on one key to all be decided by the store
    // (a CAS loop on one hot key serialises, §2.10); the defaults are the next test.
    const limits = await node(nc, prefix, [strictPolicy()], {
      strict: { timeoutMs: 60_000, casAttempts: 1_000_000 },
    });
    const decisions = await Promise.all(Array.from({ length: 1000 }, () => check(limits, 'alice')));
    const result = account(limits, decisions);
    expect(result.allowed).toBe(100);
    expect(result.storeErrors).toBe(0);
    expect(result.fallbackAllowed).toBe(0);
    expect(result.strictDenied).toBe(900);
    const strict = strictStats(limits);
    expect(strict).toMatchObject({ casExhausted: 0, timeouts: 0, errors: 0 });
    // One node runs one compare-and-swap per key at a time and decides the requests that queued
    // meanwhile together: far fewer KV operations than requests, and no conflicts with itself.
    expect(strict.casConflicts).toBe(0);
    expect(strict.operations).toBeLessThan(200);
    for (const decision of decisions) {
      const details = detailsOf(decision);
      if (!details) continue;
      expect(details).toMatchObject({
        policy: 'p',
        source: 'strict',
        limit: 100,
        window_ms: 60_000,
        remaining: 0,
      });
      expect(details.retry_after_ms).toBeGreaterThan(0);
      expect(details.retry_after_ms).toBeLessThanOrEqual(60_000);
    }
    // The store holds exactly the 100 allowed hits, and the admin view reads them from the store.
    const kv = await openBucket(nc, bucketName(prefix, 60_000));
    expect(await storedHits(kv, 'p', 'user_id:alice')).toBe(100);
    const status = await limits.status('p', 'alice');
    expect(status?.source).toBe('strict');
    expect(status?.decision).toMatchObject({ allowed: false, remaining: 0 });
  }, 60_000);

  it('case 17 with the default 25 ms timeout and 5 CAS attempts: contention beyond them is surfaced as store errors; store ≤ 100, fallback ≤ ceil(100/nodes)', async () => {
    const prefix = freshPrefix();
    const limits = await node(nc, prefix, [strictPolicy()], { strict: {} });
    const decisions = await Promise.all(Array.from({ length: 1000 }, () => check(limits, 'alice')));
    const result = account(limits, decisions);
    expect(result.nodes).toBe(1);
    // The bound: the store admits at most the limit; each store error goes to the local fallback,
    // which admits at most this node's share. Nothing else can admit.
    expect(result.storeAllowed).toBeLessThanOrEqual(100);
    expect(result.fallbackAllowed).toBeLessThanOrEqual(Math.ceil(100 / result.nodes));
    expect(result.allowed).toBeLessThanOrEqual(100 + Math.ceil(100 / result.nodes));
    // Every store error has a cause the store counted (a late call may count twice: its timeout,
    // then its CAS exhaustion in the background; the breaker's rejections are counted as circuitOpen).
    const strict = strictStats(limits);
    expect(
      strict.casExhausted + strict.timeouts + strict.errors + strict.circuitOpen,
    ).toBeGreaterThanOrEqual(result.storeErrors);
    // What the store holds once background work has settled: the hits of the requests it answered
    // (storeAllowed) plus those of requests that timed out while their write was in flight
    // (lateWrites: answered by the fallback, yet counted in the store: the safe side). Nothing else.
    await settled(() => strictStats(limits).operations);
    const { lateWrites } = strictStats(limits);
    const kv = await openBucket(nc, bucketName(prefix, 60_000));
    const hits = await storedHits(kv, 'p', 'user_id:alice');
    expect(hits).toBe(result.storeAllowed + lateWrites);
    expect(hits).toBeLessThanOrEqual(100);
    // A store denial means the store was full when it denied (hits never leave a 60 s window here):
    // the store holds exactly the limit, though some of those hits may be late writes whose
    // callers saw a timeout (under CPU load, most of them), so `storeAllowed` alone can be lower.
    if (result.strictDenied > 0) expect(hits).toBe(100);
  }, 60_000);

  it('case 19: three nodes, 300 concurrent requests, limit 100 → the store admits ≤ 100, CAS conflicts > 0, every CAS exhaustion surfaced and handled by the fallback', async () => {
    const prefix = freshPrefix();
    // A long store timeout: this case is about CAS exhaustion (5 attempts, the default), not timeouts.
    const strict = { timeoutMs: 10_000 };
    const group = [
      await node(nc, prefix, [strictPolicy()], { strict }),
      await node(nc2, prefix, [strictPolicy()], { strict }),
      await node(nc, prefix, [strictPolicy()], { strict }),
    ];
    await until(
      () => group.every((limits) => limits.health().cluster!.nodes === 3),
      'three rate-limit nodes',
      10_000,
    );
    const perNode = await Promise.all(
      group.map((limits) => Promise.all(Array.from({ length: 100 }, () => check(limits, 'alice')))),
    );
    const results = group.map((limits, i) => account(limits, perNode[i]!));
    const sum = (pick: (r: (typeof results)[number]) => number) =>
      results.reduce((total, r) => total + pick(r), 0);
    const stats = group.map(strictStats);
    expect(stats.reduce((total, s) => total + s.timeouts + s.errors, 0)).toBe(0);
    // Each node's store errors are exactly its CAS exhaustions (no timeouts, no other errors).
    for (let i = 0; i < group.length; i++)
      expect(results[i]!.storeErrors).toBe(stats[i]!.casExhausted);
    expect(stats.reduce((total, s) => total + s.casConflicts, 0)).toBeGreaterThan(0);
    expect(sum((r) => r.storeAllowed)).toBeLessThanOrEqual(100);
    for (const r of results)
      expect(r.fallbackAllowed).toBeLessThanOrEqual(Math.ceil(100 / r.nodes));
    expect(sum((r) => r.allowed)).toBe(sum((r) => r.storeAllowed) + sum((r) => r.fallbackAllowed));
    // No hit lost or invented: the store holds exactly the hits it allowed (exhausted CAS writes nothing).
    const kv = await openBucket(nc, bucketName(prefix, 60_000));
    const hits = await storedHits(kv, 'p', 'user_id:alice');
    expect(hits).toBe(sum((r) => r.storeAllowed));
    if (sum((r) => r.strictDenied) > 0) expect(hits).toBe(100);
  }, 60_000);

  it('case 27 (R1): a stale revision is rejected; concurrent updates with one revision → exactly one succeeds', async () => {
    const prefix = freshPrefix();
    await node(nc, prefix, [strictPolicy()]);
    // The bucket the store created (history 1, TTL = horizon + 1 s), from two connections.
    const kv = await openBucket(nc, bucketName(prefix, 60_000));
    const kv2 = await openBucket(nc2, bucketName(prefix, 60_000));
    expect((await kv.status()).history).toBe(1);
    await casChecks(kv, kv2, true);
  });

  it('case 27 (R1): the store under contention from two connections → exactly the limit, conflicts retried', async () => {
    await storeContention(nc, nc2, freshPrefix());
  });

  it('case 28: after a denial, checks until retryAfter make 0 KV operations yet answer remaining 0 and a shrinking retry_after_ms; then the store is asked again', async () => {
    const prefix = freshPrefix();
    let now = Date.now();
    const t0 = now;
    const limits = await node(nc, prefix, [strictPolicy({ limit: 5, windowMs: 1000 })], {
      wall: () => now,
    });
    for (let i = 0; i < 5; i++) {
      now = t0 + i * 10;
      expect((await check(limits, 'alice')).allowed).toBe(true);
    }
    now = t0 + 100;
    const first = detailsOf(await check(limits, 'alice'));
    // Denied by the store: the oldest hit (t0) leaves the window at t0 + 1000.
    expect(first).toEqual({
      policy: 'p',
      limit: 5,
      window_ms: 1000,
      remaining: 0,
      reset_ms: 900,
      retry_after_ms: 900,
      source: 'strict',
    });
    const operations = strictStats(limits).operations;
    const hits = limits.health().stats.denyCacheHits;
    let previous = first!.retry_after_ms;
    for (const at of [100, 101, 350, 600, 999]) {
      now = t0 + at;
      const details = detailsOf(await check(limits, 'alice'));
      expect(details).toMatchObject({
        policy: 'p',
        limit: 5,
        window_ms: 1000,
        remaining: 0,
        source: 'strict',
      });
      expect(details!.retry_after_ms).toBe(1000 - at);
      expect(details!.retry_after_ms).toBeLessThanOrEqual(previous);
      previous = details!.retry_after_ms;
    }
    expect(strictStats(limits).operations).toBe(operations);
    expect(limits.health().stats.denyCacheHits).toBe(hits + 5);
    expect(limits.health().policies[0]!.stats.denyCacheHits).toBe(hits + 5);
    // Other keys are not affected by the cached denial.
    expect((await check(limits, 'bob')).allowed).toBe(true);
    const afterBob = strictStats(limits).operations;
    expect(afterBob).toBeGreaterThan(operations);
    // At retryAfter the cache lets go: the store decides again (the t0 hit has left the window).
    now = t0 + 1000;
    expect((await check(limits, 'alice')).allowed).toBe(true);
    expect(strictStats(limits).operations).toBeGreaterThan(afterBob);
    expect(limits.health().stats.denyCacheHits).toBe(hits + 5);
  });

  it('case 11 (strict half): two strict policies, the second denies → the first is refunded in the store (and a local one locally)', async () => {
    const prefix = freshPrefix();
    const limits = await node(nc, prefix, [
      strictPolicy({ id: 'global', scope: 'global', limit: 100 }),
      strictPolicy({ id: 'api', scope: { service: 'svc', requestType: 'fn' }, limit: 3 }),
      {
        id: 'local',
        scope: { service: 'svc', requestType: 'fn' },
        key: 'user_id',
        limit: 100,
        windowMs: 60_000,
      },
    ]);
    for (let i = 0; i < 3; i++) expect((await check(limits, 'alice')).allowed).toBe(true);
    const kv = await openBucket(nc, bucketName(prefix, 60_000));
    expect(await storedHits(kv, 'global', 'user_id:alice')).toBe(3);
    const denied = detailsOf(await check(limits, 'alice'));
    expect(denied).toMatchObject({ policy: 'api', remaining: 0, source: 'strict' });
    // The global policy was consumed in the store before `api` denied, then refunded.
    expect(strictStats(limits)).toMatchObject({ refunds: 1, refundFailures: 0 });
    expect(await storedHits(kv, 'global', 'user_id:alice')).toBe(3);
    expect(await storedHits(kv, 'api', 'user_id:alice')).toBe(3);
    const global = await limits.status('global', 'alice');
    expect(global).toEqual({
      source: 'strict',
      decision: expect.objectContaining({ allowed: true, limit: 100, remaining: 96 }) as unknown,
    });
    // The local policy was committed first and rolled back.
    expect(limits.limiter.status('local', 'alice')).toMatchObject({ allowed: true, remaining: 96 });
    // Further denials come from the deny cache: nothing consumed, nothing to refund.
    expect(detailsOf(await check(limits, 'alice'))).toMatchObject({ policy: 'api' });
    expect(await storedHits(kv, 'global', 'user_id:alice')).toBe(3);
    // Another function under the global policy only still consumes it.
    expect((await check(limits, 'alice', 'svc', 'other')).allowed).toBe(true);
    expect(await storedHits(kv, 'global', 'user_id:alice')).toBe(4);
  });

  it('admin status and reset on a strict key read and purge the store (and the deny cache)', async () => {
    const prefix = freshPrefix();
    const { logger, lines } = capturedLogger();
    const limits = await node(nc, prefix, [strictPolicy({ limit: 2 })], { logger });
    const other = await node(nc2, prefix, [strictPolicy({ limit: 2 })]);
    expect(await limits.status('p', 'alice')).toEqual({
      source: 'strict',
      decision: expect.objectContaining({ allowed: true, remaining: 1 }) as unknown,
    });
    expect((await check(limits, 'alice')).allowed).toBe(true);
    expect((await check(other, 'alice')).allowed).toBe(true);
    expect(detailsOf(await check(limits, 'alice'))).toMatchObject({
      source: 'strict',
      remaining: 0,
    });
    // Both nodes read the shared state from the store.
    for (const n of [limits, other])
      expect(await n.status('p', 'alice')).toEqual({
        source: 'strict',
        decision: expect.objectContaining({ allowed: false, remaining: 0 }) as unknown,
      });
    expect(await limits.status('missing', 'alice')).toBeNull();
    const kv = await openBucket(nc, bucketName(prefix, 60_000));
    expect(await storedHits(kv, 'p', 'user_id:alice')).toBe(2);

    expect(await limits.reset('p', 'alice', { via: 'admin', who: 'test' })).toBe('reset');
    expect((await storedEntry(kv, 'p', 'user_id:alice'))?.operation).toBe('PURGE');
    expect(await other.status('p', 'alice')).toEqual({
      source: 'strict',
      decision: expect.objectContaining({ allowed: true, remaining: 1 }) as unknown,
    });
    expect(
      lines().some(
        (line) =>
          line.msg === 'rate-limit key reset' &&
          line.level === 40 &&
          (line.actor as { who?: string }).who === 'test',
      ),
    ).toBe(true);
    // The deny cache was cleared with it: the next request goes to the store and is allowed there.
    expect((await check(limits, 'alice')).allowed).toBe(true);
    expect(await storedHits(kv, 'p', 'user_id:alice')).toBe(1);
    expect(await limits.reset('missing', 'alice', { via: 'admin' })).toBe('unknown');
  });

  it('case 25: a node 200 ms ahead over-admits ≤ 2 per window (GCRA 10/s) versus the same traffic without skew', async () => {
    const policy = strictPolicy({ id: 'g', algorithm: 'gcra', limit: 10, windowMs: 1000 });
    const run = async (skewMs: number, key: string): Promise<number[]> => {
      const prefix = freshPrefix();
      let now = Date.now();
      const t0 = now;
      const a = await node(nc, prefix, [policy], { wall: () => now });
      const b = await node(nc2, prefix, [policy], { wall: () => now + skewMs });
      // 4 s of traffic offered at 80/s (A then B every 25 ms) against 10/s: allowed per 1 s window.
      const perWindow = [0, 0, 0, 0];
      for (let step = 0; step < 160; step++) {
        now = t0 + step * 25;
        const window = Math.floor((step * 25) / 1000);
        for (const limits of [a, b]) if ((await check(limits, key)).allowed) perWindow[window]!++;
      }
      for (const limits of [a, b]) expect(limits.health().stats.storeErrors).toBe(0);
      return perWindow;
    };
    const plain = await run(0, 'plain');
    const skewed = await run(200, 'skewed');
    // Without skew (fake clocks, sequential requests: exact): the burst of 10, then one per 100 ms.
    expect(plain).toEqual([19, 10, 10, 10]);
    for (let w = 0; w < plain.length; w++) {
      expect(skewed[w]! - plain[w]!).toBeLessThanOrEqual(2);
      expect(skewed[w]! - plain[w]!).toBeGreaterThanOrEqual(-2);
    }
    // δ/T = 200/100 = 2 tokens at most over the whole run (the skewed node's head start).
    const extra = skewed.reduce((a, b) => a + b, 0) - plain.reduce((a, b) => a + b, 0);
    expect(extra).toBeGreaterThanOrEqual(0);
    expect(extra).toBeLessThanOrEqual(2);
  }, 30_000);

  it('case 25: the skew probe measures each node against the KV server clock and warns above maxSkewMs', async () => {
    const prefix = freshPrefix();
    const logs = [capturedLogger(), capturedLogger(), capturedLogger()];
    let ahead = 200;
    const exact = await node(nc, prefix, [strictPolicy()], { logger: logs[0]!.logger });
    const skewed = await node(nc, prefix, [strictPolicy()], {
      logger: logs[1]!.logger,
      wall: () => Date.now() + ahead,
      strict: { skewProbeMs: 100 },
    });
    const far = await node(nc2, prefix, [strictPolicy()], {
      logger: logs[2]!.logger,
      wall: () => Date.now() + 1500,
    });
    // skewMs = server − node: a node ahead measures negative. Loopback round trips are small;
    // 100 ms of slack covers a loaded machine while still telling 0, 200 and 1500 apart.
    expect(Math.abs(strictStats(exact).skewMs!)).toBeLessThanOrEqual(100);
    expect(Math.abs(strictStats(skewed).skewMs! + 200)).toBeLessThanOrEqual(100);
    expect(Math.abs(strictStats(far).skewMs! + 1500)).toBeLessThanOrEqual(100);
    const warnings = (i: number) =>
      logs[i]!.lines().filter(
        (line) => line.msg === 'clock skew to the rate-limit store is above maxSkewMs',
      );
    expect(warnings(0)).toEqual([]);
    expect(warnings(1)).toEqual([]);
    expect(warnings(2)).toHaveLength(1);
    expect(warnings(2)[0]).toMatchObject({ level: 40, maxSkewMs: 500 });
    expect(Math.abs((warnings(2)[0]!.skewMs as number) + 1500)).toBeLessThanOrEqual(100);
    // The probe repeats (skewProbeMs): a clock that drifts past maxSkewMs is noticed and reported.
    ahead = 800;
    await until(() => warnings(1).length > 0, 'the drifted node warns');
    expect(Math.abs(strictStats(skewed).skewMs! + 800)).toBeLessThanOrEqual(100);
  });
});

/** Case 27 on a bucket seen from two connections. */
async function casChecks(kv: KV, kv2: KV, concurrent: boolean): Promise<void> {
  const key = `cas.${Math.random().toString(36).slice(2)}`;
  const rev1 = await kv.create(key, 'v1');
  const rev2 = await kv.update(key, 'v2', rev1);
  expect(rev2).toBeGreaterThan(rev1);
  const conflict = (err: unknown) =>
    err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
  // A stale revision is rejected, from either connection, and the value stays.
  const stale = await kv.update(key, 'stale', rev1).then(
    () => null,
    (err: unknown) => err,
  );
  expect(conflict(stale)).toBe(true);
  const stale2 = await kv2.update(key, 'stale', rev1).then(
    () => null,
    (err: unknown) => err,
  );
  expect(conflict(stale2)).toBe(true);
  // create on an existing key is rejected too (the store's path for a new key).
  expect(
    await kv2.create(key, 'again').then(
      () => 'created',
      () => 'rejected',
    ),
  ).toBe('rejected');
  expect(new TextDecoder().decode((await kv.get(key))!.value)).toBe('v2');
  if (!concurrent) return;
  let revision = rev2;
  for (let round = 0; round < 20; round++) {
    const outcomes = await Promise.allSettled([
      kv.update(key, `a${round}`, revision),
      kv2.update(key, `b${round}`, revision),
      kv.update(key, `c${round}`, revision),
    ]);
    const won = outcomes.filter(
      (o): o is PromiseFulfilledResult<number> => o.status === 'fulfilled',
    );
    expect(won, `round ${round}: exactly one update at revision ${revision} succeeds`).toHaveLength(
      1,
    );
    for (const lost of outcomes)
      if (lost.status === 'rejected') expect(conflict(lost.reason)).toBe(true);
    const entry = (await kv.get(key))!;
    expect(entry.revision).toBe(won[0]!.value);
    revision = entry.revision;
  }
}

/** The store's own CAS loop under contention from two nodes on two connections. */
async function storeContention(
  ncA: NatsConnection,
  ncB: NatsConnection,
  prefix: string,
  replicas = 1,
): Promise<void> {
  const strict = { timeoutMs: 30_000, casAttempts: 10_000, replicas };
  const policy = strictPolicy({ limit: 30 });
  const a = await node(ncA, prefix, [policy], { strict });
  const b = await node(ncB, prefix, [policy], { strict });
  const decisions = await Promise.all([
    ...Array.from({ length: 50 }, () => check(a, 'alice')),
    ...Array.from({ length: 50 }, () => check(b, 'alice')),
  ]);
  expect(decisions.filter((d) => d.allowed)).toHaveLength(30);
  for (const limits of [a, b]) expect(limits.health().stats.storeErrors).toBe(0);
  // Each node batches its own requests; conflicts (if the two batches overlap) are retried.
  expect(strictStats(a).casExhausted + strictStats(b).casExhausted).toBe(0);
  expect(strictStats(a).operations + strictStats(b).operations).toBeLessThan(100);
  const kv = await openBucket(ncA, bucketName(prefix, 60_000));
  expect(await storedHits(kv, 'p', 'user_id:alice')).toBe(30);
}

describe(`strict mode on a 3-server JetStream cluster (nats-server ${NATS_SERVER_VERSION})`, () => {
  let cluster: NatsCluster;
  let ncs: NatsConnection[] = [];

  beforeAll(async () => {
    cluster = await NatsCluster.start({ size: 3, jetstream: true });
    ncs = await Promise.all(cluster.urls.map((url) => connect({ servers: url })));
    await waitForJetStream(ncs[0]!, 25_000, 3, cluster.servers);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(ncs.map((c) => c.close()));
    await cluster?.dispose();
  });

  /** A node on each server, all sharing a prefix (and so buckets). */
  async function three(
    prefix: string,
    strict: RateLimitsOptions['strict'],
    policy = strictPolicy(),
  ): Promise<RateLimits[]> {
    const group: RateLimits[] = [];
    for (const c of ncs) group.push(await node(c, prefix, [policy], { strict }));
    await until(
      () => group.every((limits) => limits.health().cluster!.nodes === 3),
      'three rate-limit nodes',
      10_000,
    );
    return group;
  }

  it('case 27 (R3): a stale revision is rejected (connections on different servers)', async () => {
    const prefix = freshPrefix();
    await three(prefix, { replicas: 3 });
    const kv = await openBucket(ncs[0]!, bucketName(prefix, 60_000));
    expect((await kv.status()).replicas).toBe(3);
    await casChecks(kv, await openBucket(ncs[2]!, bucketName(prefix, 60_000)), false);
  }, 30_000);

  it.skipIf(!R3_CAS_SERIALIZABLE)(
    'case 27 (R3): concurrent updates with one revision → exactly one succeeds (needs nats-server ≥ 2.9.21, nats-server#4320)',
    async () => {
      const prefix = freshPrefix();
      await three(prefix, { replicas: 3 });
      await casChecks(
        await openBucket(ncs[0]!, bucketName(prefix, 60_000)),
        await openBucket(ncs[1]!, bucketName(prefix, 60_000)),
        true,
      );
    },
    30_000,
  );

  it.skipIf(!R3_CAS_SERIALIZABLE)(
    'case 27 (R3): the store under contention from two servers → exactly the limit',
    async () => {
      await storeContention(ncs[0]!, ncs[1]!, freshPrefix(), 3);
    },
    30_000,
  );

  const variants = [
    { name: 'R3 bucket', replicas: 3, run: R3_CAS_SERIALIZABLE },
    // Where R3 CAS is not serialisable, the cluster still runs the case with an R1 bucket (its
    // leader on one server, the nodes on all three).
    { name: 'R1 bucket', replicas: 1, run: !R3_CAS_SERIALIZABLE },
  ];
  for (const variant of variants) {
    it.skipIf(!variant.run)(
      `case 19 (${variant.name}): a node on each server, 300 concurrent requests, limit 100 → the store admits ≤ 100, CAS conflicts > 0, exhaustion surfaced`,
      async () => {
        const prefix = freshPrefix();
        const group = await three(prefix, { timeoutMs: 10_000, replicas: variant.replicas });
        const perNode = await Promise.all(
          group.map((limits) =>
            Promise.all(Array.from({ length: 100 }, () => check(limits, 'alice'))),
          ),
        );
        const results = group.map((limits, i) => account(limits, perNode[i]!));
        const stats = group.map(strictStats);
        const storeAllowed = results.reduce((total, r) => total + r.storeAllowed, 0);
        expect(stats.reduce((total, s) => total + s.timeouts + s.errors, 0)).toBe(0);
        for (let i = 0; i < group.length; i++)
          expect(results[i]!.storeErrors).toBe(stats[i]!.casExhausted);
        expect(stats.reduce((total, s) => total + s.casConflicts, 0)).toBeGreaterThan(0);
        expect(storeAllowed).toBeLessThanOrEqual(100);
        for (const r of results)
          expect(r.fallbackAllowed).toBeLessThanOrEqual(Math.ceil(100 / r.nodes));
        const kv = await openBucket(ncs[0]!, bucketName(prefix, 60_000));
        expect((await kv.status()).replicas).toBe(variant.replicas);
        // Read from the stream leader's view until it has caught up (direct gets may come from a follower).
        await until(
          async () => (await storedHits(kv, 'p', 'user_id:alice')) === storeAllowed,
          () => `the stored hits to reach ${storeAllowed}`,
        );
        expect(await storedHits(kv, 'p', 'user_id:alice')).toBe(storeAllowed);
      },
      60_000,
    );
  }

  // Under the load of a full run, a 3-server JetStream cluster whose server rejoins can take
  // tens of seconds to place R3 streams again (see NatsCluster.start), so the gateway gets a long
  // bucketRetryMs: the case is that the retries happen and succeed, not how fast.
  it(
    'the bucket made while a replica\'s server is down: "no suitable peers for placement" is retried (not 5 s of fallback), and the store decides once the server is back',
    { timeout: 150_000 },
    async () => {
      // Start from a cluster that can place R3 streams.
      await waitForJetStream(ncs[0]!, 20_000, 3, cluster.servers);
      const prefix = freshPrefix();
      const { logger, lines } = capturedLogger('info');
      // Until the meta leader marks the stopped server offline, an R3 bucket may still be placed
      // on it (no retry to see); from then on, placement is refused until it is back.
      await stopUntilPlacementRefused(cluster.servers[2]!, ncs[0]!, 3);
      try {
        // The server comes back while the gateway is still linking: once its bucket creation has
        // logged a retry (the event, not a fixed delay).
        const [limits] = await Promise.all([
          node(ncs[0]!, prefix, [strictPolicy()], {
            // Placement on a restarted server can take longer than the default 5 s of retries
            // on a loaded machine; the point here is that the retries happen and succeed.
            strict: { timeoutMs: 5_000, replicas: 3, bucketRetryMs: 60_000 },
            logger,
          }),
          until(
            () =>
              lines().some((line) => line.msg === 'rate-limit KV bucket not created yet; retrying'),
            'a retried bucket creation',
          ).then(() => cluster.servers[2]!.restart()),
        ]);
        const retries = lines().filter(
          (line) => line.msg === 'rate-limit KV bucket not created yet; retrying',
        );
        expect(retries.length).toBeGreaterThan(0);
        expect(String(retries[0]!.err)).toMatch(/no suitable peers for placement/);
        expect(lines().filter((line) => line.msg === 'rate-limit KV bucket ready')).toHaveLength(1);
        expect(lines().filter((line) => String(line.msg).includes('bucket unavailable'))).toEqual(
          [],
        );
        expect(limits.linked!.strict.available()).toBe(true);
        expect(
          (await (await openBucket(ncs[0]!, bucketName(prefix, 60_000))).status()).replicas,
        ).toBe(3);
        // The first request is the store's.
        expect(await check(limits, 'alice')).toMatchObject({ allowed: true });
        expect(strictStats(limits).operations).toBeGreaterThan(0);
        expect(limits.health().stats.fallback).toBe(0);
      } finally {
        if (!cluster.servers[2]!.running) await cluster.servers[2]!.restart();
        await cluster.waitForRoutes(20_000);
        await waitForJetStream(ncs[2]!, 20_000, 3, cluster.servers);
      }
    },
  );
});

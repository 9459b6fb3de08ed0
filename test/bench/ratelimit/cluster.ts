/**
 * The cluster modes against `local`, in one run on one real nats-server with JetStream: two
 * RateLimits nodes (A decides, B is its peer), per-decision latency of `limiter.check` in each
 * mode, eventual propagation A → B, sustained throughput, and the baselines (raw NATS
 * request/reply, raw JetStream KV get+update) on the same server.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { GenApiRequest } from '../../../src/genapi/types.js';
import { Subjects } from '../../../src/nats/subjects.js';
import type { LimiterDecision } from '../../../src/ratelimit/limiter.js';
import { RateLimits } from '../../../src/ratelimit/rate-limits.js';
import type { NatsServer } from '../../support/nats.js';
import { natsEchoResponder, natsRoundTrip, RawKv } from '../lib/baselines.js';
import { realTime, until } from '../../support/wait.js';
import { now, type Scope, yieldToLoop } from '../lib/runtime.js';
import { Samples, summarize, type Summary } from '../lib/stats.js';
import { CONTEXT, funConfig, policy, requests, silentLogger } from './fixtures.js';

export const CLUSTER_POLICY = { algorithm: 'gcra', limit: 10_000, windowMs: 1_000 } as const;
const MODES = ['local', 'eventual', 'strict'] as const;
type ModeName = (typeof MODES)[number];

export interface ClusterOptions {
  users: number;
  rounds: number;
  /** Per round: individually timed sync decisions (local, eventual). */
  syncPerRound: number;
  /** Per round: sequential async operations (strict, raw NATS, raw KV). */
  asyncPerRound: number;
  probes: number;
  throughputMs: number;
  concurrency: number;
  /** Warm-up: sync decisions per mode, then sequential strict + NATS + KV triples. */
  syncWarmup: number;
  asyncWarmup: number;
}

export interface ClusterResult {
  natsVersion: string;
  latency: Record<ModeName | 'natsRtt' | 'kvGetUpdate' | 'kvGet', Summary>;
  /** A hit allowed on A until B has applied it (ms). */
  propagation: Summary;
  propagationConfirmed: number;
  throughput: {
    local: number;
    eventual: number;
    eventualAlone: number;
    strict: number;
    kvGetUpdate: number;
  };
  concurrentStrict: Summary;
  strictStats: {
    operations: number;
    casConflicts: number;
    timeouts: number;
    fallbacks: number;
    storeErrors: number;
    denied: number;
  };
  eventualStats: { published: number; publishedHits: number; appliedOnPeer: number };
}

async function natsVersion(): Promise<string> {
  const { execFileSync } = await import('node:child_process');
  try {
    return execFileSync('nats-server', ['--version'], { encoding: 'utf8' })
      .trim()
      .replace(/^nats-server:\s*/, '');
  } catch {
    return 'unknown';
  }
}

function allowed(decision: LimiterDecision): boolean {
  return decision.allowed;
}

export async function benchCluster(
  nats: NatsServer,
  options: ClusterOptions,
  scope: Scope,
  log: (message: string) => void,
): Promise<ClusterResult> {
  const connections: NatsConnection[] = [];
  const open = async (name: string) => {
    const nc = await connect({
      servers: nats.url,
      name,
      maxReconnectAttempts: 5,
      reconnectTimeWait: 100,
    });
    connections.push(nc);
    return nc;
  };
  scope.add(() => Promise.all(connections.map((nc) => nc.close().catch(() => undefined))));
  const ncA = await open('bench node A');
  const ncB = await open('bench node B');
  const ncRaw = await open('bench raw client');
  const ncEcho = await open('bench raw responder');

  const { algorithm, limit, windowMs } = CLUSTER_POLICY;
  const policies = MODES.map((mode) =>
    policy(`bench.${mode}`, mode, algorithm, limit, windowMs, mode),
  );
  const nodeA = new RateLimits({ policies }, silentLogger);
  const nodeB = new RateLimits({ policies }, silentLogger);
  scope.add(() => nodeA.close());
  scope.add(() => nodeB.close());
  const subjects = new Subjects('genapi');
  await nodeA.attach({ nc: ncA, connected: () => !ncA.isClosed(), subjects });
  await nodeB.attach({ nc: ncB, connected: () => !ncB.isClosed(), subjects });
  const clusterA = nodeA.linked!;
  const clusterB = nodeB.linked!;
  await until(
    () => clusterA.membership.nodes() === 2 && clusterB.membership.nodes() === 2,
    'both nodes to see each other',
  );
  log(`nats-server ${nats.url} (JetStream), nodes A=${clusterA.origin} B=${clusterB.origin}`);

  const limiter = nodeA.limiter;
  const fns = {
    local: funConfig('local'),
    eventual: funConfig('eventual'),
    strict: funConfig('strict'),
  };
  const users = {
    local: requests(options.users, 'local'),
    eventual: requests(options.users, 'eventual'),
    strict: requests(options.users, 'strict'),
  };
  const cursor = { local: 0, eventual: 0, strict: 0 };
  const nextRequest = (mode: ModeName): GenApiRequest => {
    const list = users[mode];
    const request = list[cursor[mode]]!;
    cursor[mode] = (cursor[mode] + 1) % list.length;
    return request;
  };
  let denied = 0;
  const checkSync = (mode: 'local' | 'eventual'): void => {
    const result = limiter.check(nextRequest(mode), fns[mode], CONTEXT);
    if (result instanceof Promise) throw new Error(`${mode} check returned a promise`);
    if (!result.allowed) denied++;
  };
  const checkStrict = async (): Promise<void> => {
    const result = await limiter.check(nextRequest('strict'), fns.strict, CONTEXT);
    if (!allowed(result)) denied++;
  };

  // Baselines on the same server.
  const echoSubject = 'bench.echo';
  natsEchoResponder(ncEcho, echoSubject);
  await ncEcho.flush();
  const payload = new TextEncoder().encode(JSON.stringify(Date.now() + 0.5));
  const rawKv = await RawKv.create(ncRaw, 'bench_raw_kv', options.users, payload);
  scope.add(() => rawKv.destroy());

  // Warm-up: JIT, KV buckets, first keys.
  for (let i = 0; i < options.syncWarmup; i++) {
    checkSync('local');
    checkSync('eventual');
    if (i % 1000 === 0) await yieldToLoop();
  }
  for (let i = 0; i < options.asyncWarmup; i++) {
    await checkStrict();
    await natsRoundTrip(ncRaw, echoSubject, payload);
    await rawKv.getUpdate();
  }
  // The warm-up's last eventual hits are published and applied on B before anything is timed.
  clusterA.eventual.flush();
  await until(() => {
    const b = clusterB.eventual.stats;
    return (
      b.appliedHits + b.staleHits + b.unknownPolicyHits >= clusterA.eventual.stats.publishedHits
    );
  }, 'B to take in the warm-up hits');

  const strictBefore = { ...clusterA.strict.stats };
  const limiterBefore = { ...limiter.stats };
  denied = 0;

  // Per-decision latency, the modes and baselines interleaved round by round (drift hits all alike).
  const samples = {
    local: new Samples(),
    eventual: new Samples(),
    strict: new Samples(),
    natsRtt: new Samples(),
    kvGetUpdate: new Samples(),
    kvGet: new Samples(),
  };
  for (let round = 0; round < options.rounds; round++) {
    for (const mode of ['local', 'eventual'] as const) {
      for (let i = 0; i < options.syncPerRound; i++) {
        const t0 = now();
        checkSync(mode);
        samples[mode].add(now() - t0);
        // A server serves other sockets between requests: timers (the eventual flush) run there.
        if (i % 100 === 99) await yieldToLoop();
      }
    }
    for (let i = 0; i < options.asyncPerRound; i++) {
      const t0 = now();
      await checkStrict();
      samples.strict.add(now() - t0);
    }
    for (let i = 0; i < options.asyncPerRound; i++)
      samples.natsRtt.add(await natsRoundTrip(ncRaw, echoSubject, payload));
    for (let i = 0; i < options.asyncPerRound; i++)
      samples.kvGetUpdate.add(await rawKv.getUpdate());
    for (let i = 0; i < options.asyncPerRound >> 1; i++) samples.kvGet.add(await rawKv.get());
  }
  log(`latency: ${options.rounds} rounds done`);

  // Eventual propagation: a hit allowed on A until node B has applied it (B's applyRemote, wrapped).
  const probeKey = (i: number) => `user_id:probe${i}`;
  let waiting: { key: string; resolve: (at: number) => void } | null = null;
  const original = nodeB.limiter.applyRemote.bind(nodeB.limiter);
  nodeB.limiter.applyRemote = (policyId, key, at, cost) => {
    const outcome = original(policyId, key, at, cost);
    if (waiting && key === waiting.key) waiting.resolve(now());
    return outcome;
  };
  scope.add(() => {
    nodeB.limiter.applyRemote = original;
  });
  const propagation = new Samples();
  let confirmed = 0;
  const probeRequests = requests(options.probes, 'eventual', 'probe');
  for (let i = 0; i < options.probes; i++) {
    const key = probeKey(i);
    const applied = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`probe ${i} not applied on B within 2 s`)),
        2_000,
      );
      waiting = {
        key,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
    const t0 = now();
    const result = limiter.check(probeRequests[i]!, fns.eventual, CONTEXT);
    if (result instanceof Promise || !result.allowed) throw new Error('probe denied');
    propagation.add((await applied) - t0);
    waiting = null;
    // B's own view of the key now includes A's hit (one used: remaining after one more = limit - 2).
    const status = nodeB.limiter.status('bench.eventual', `probe${i}`);
    if (status && status.remaining === limit - 2) confirmed++;
    // Pacing: probes 1–4 ms apart meet the 5 ms batch timer at different points of its period.
    await realTime(1 + (i % 4), 'probe pacing');
  }
  log(`propagation: ${options.probes} probes`);

  // Sustained throughput on one core.
  const syncThroughput = async (mode: 'local' | 'eventual', withPeer = true): Promise<number> => {
    const eventual = clusterA.eventual.stats;
    const appliedBefore = clusterB.eventual.stats.appliedHits;
    const publishedBefore = eventual.publishedHits;
    let calls = 0;
    const start = now();
    const stopAt = start + options.throughputMs;
    while (now() < stopAt) {
      for (let i = 0; i < 1000; i++) checkSync(mode);
      calls += 1000;
      await yieldToLoop();
    }
    if (mode === 'eventual') {
      clusterA.eventual.flush();
      // Until the peer has applied every hit: its work runs on this core too.
      if (withPeer)
        await until(
          () =>
            clusterB.eventual.stats.appliedHits - appliedBefore >=
            eventual.publishedHits - publishedBefore,
          'B to apply every hit',
          { timeoutMs: 30_000, intervalMs: 1 },
        );
    }
    return (calls / (now() - start)) * 1000;
  };
  const asyncThroughput = async (
    op: () => Promise<unknown>,
    latency: Samples | null,
  ): Promise<number> => {
    let calls = 0;
    const start = now();
    const stopAt = start + options.throughputMs;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (now() < stopAt) {
          const t0 = now();
          await op();
          latency?.add(now() - t0);
          calls++;
        }
      }),
    );
    return (calls / (now() - start)) * 1000;
  };
  const local = await syncThroughput('local');
  const eventual = await syncThroughput('eventual');
  const concurrentStrict = new Samples();
  const strict = await asyncThroughput(checkStrict, concurrentStrict);
  const kvGetUpdate = await asyncThroughput(() => rawKv.getUpdate(), null);
  const strictAfter = { ...clusterA.strict.stats };
  const eventualStats = {
    published: clusterA.eventual.stats.published,
    publishedHits: clusterA.eventual.stats.publishedHits,
    appliedOnPeer: clusterB.eventual.stats.appliedHits,
  };
  // The publishing side alone: B leaves, A keeps batching and publishing (to no one).
  await nodeB.close();
  await until(() => clusterA.membership.nodes() === 1, 'A to see B leave');
  const eventualAlone = await syncThroughput('eventual', false);
  log('throughput done');

  return {
    natsVersion: await natsVersion(),
    latency: {
      local: summarize(samples.local.values()),
      eventual: summarize(samples.eventual.values()),
      strict: summarize(samples.strict.values()),
      natsRtt: summarize(samples.natsRtt.values()),
      kvGetUpdate: summarize(samples.kvGetUpdate.values()),
      kvGet: summarize(samples.kvGet.values()),
    },
    propagation: propagation.summary(),
    propagationConfirmed: confirmed,
    throughput: { local, eventual, eventualAlone, strict, kvGetUpdate },
    concurrentStrict: concurrentStrict.summary(),
    strictStats: {
      operations: strictAfter.operations - strictBefore.operations,
      casConflicts: strictAfter.casConflicts - strictBefore.casConflicts,
      timeouts: strictAfter.timeouts - strictBefore.timeouts,
      fallbacks: limiter.stats.fallback - limiterBefore.fallback,
      storeErrors: limiter.stats.storeErrors - limiterBefore.storeErrors,
      denied,
    },
    eventualStats,
  };
}

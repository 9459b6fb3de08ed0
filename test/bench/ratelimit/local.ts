/**
 * Local decisions per second on one core: `RateLimiter.check` (the executor's call) for one
 * local policy keyed by user_id, with `keys` distinct users taken round-robin.
 */
import { RateLimiter } from '../../../src/ratelimit/limiter.js';
import type { AlgorithmName } from '../../../src/ratelimit/types.js';
import { Samples, summarize, type Summary } from '../lib/stats.js';
import { gc, now, retainedBytes, yieldToLoop } from '../lib/runtime.js';
import { CONTEXT, funConfig, policy, requests, silentLogger } from './fixtures.js';

export interface Regime {
  name: string;
  limit: number;
  windowMs: number;
  /** Allowed hits per key before measuring (fills logs / saturates). */
  prefillPerKey: number;
}

export interface LocalResult {
  algorithm: AlgorithmName;
  regime: string;
  decisionsPerSec: number;
  allowedShare: number;
  /** Individually timed decisions (µs). */
  single: Summary;
  /** Mean per decision within batches of `batch` (µs). */
  batched: Summary;
  bytesPer10kKeys: number;
  keys: number;
  /** Heap bytes allocated per decision in steady state (garbage included). */
  allocatedPerDecision: number;
}

/** One configuration to measure. */
export interface LocalJob {
  algorithm: AlgorithmName;
  regime: Regime;
}

export interface LocalOptions {
  keys: number;
  /** Throughput phase length. */
  durationMs: number;
  /** Individually timed decisions. */
  samples: number;
  batch: number;
}

const FN = funConfig('call');

export async function benchLocal(
  algorithm: AlgorithmName,
  regime: Regime,
  options: LocalOptions,
): Promise<LocalResult> {
  const { keys, batch } = options;
  const list = requests(keys, 'call');
  // Sample buffers exist before the memory baseline, so they do not count as key-store memory.
  const batches = new Samples(Math.ceil(options.durationMs * 20) + 1024);
  const single = new Samples(options.samples);
  gc();
  const before = retainedBytes();
  const limiter = new RateLimiter(
    { policies: [policy('bench.local', 'call', algorithm, regime.limit, regime.windowMs)] },
    silentLogger,
  );
  try {
    const check = (i: number): boolean => {
      const result = limiter.check(list[i]!, FN, CONTEXT);
      return (result as { allowed: boolean }).allowed;
    };
    // Warm-up (JIT) and prefill: every key gets its state (and, saturated, a full quota).
    let cursor = 0;
    const warm = Math.max(keys * regime.prefillPerKey, keys * 20);
    for (let done = 0; done < warm;) {
      const end = Math.min(warm, done + 10_000);
      for (; done < end; done++) {
        check(cursor);
        if (++cursor === keys) cursor = 0;
      }
      await yieldToLoop();
    }

    // Throughput: untimed calls in batches; the wall time includes the event-loop turns between
    // batches (the limiter's sweep timer runs there, as it would in a server).
    let calls = 0;
    let allowed = 0;
    const start = now();
    const stopAt = start + options.durationMs;
    while (now() < stopAt) {
      for (let b = 0; b < 10; b++) {
        const t0 = now();
        for (let i = 0; i < batch; i++) {
          if (check(cursor)) allowed++;
          if (++cursor === keys) cursor = 0;
        }
        batches.add(((now() - t0) * 1000) / batch);
        calls += batch;
      }
      await yieldToLoop();
    }
    const elapsed = now() - start;

    // Latency: every call timed on its own (performance.now() pairs; overhead reported apart).
    let sampled = 0;
    let sampledAllowed = 0;
    while (sampled < options.samples) {
      const end = Math.min(options.samples, sampled + 10_000);
      for (; sampled < end; sampled++) {
        const t0 = now();
        const ok = check(cursor);
        single.add((now() - t0) * 1000);
        if (ok) sampledAllowed++;
        if (++cursor === keys) cursor = 0;
      }
      await yieldToLoop();
    }

    const allocatedPerDecision = allocationPerCall(
      check,
      keys,
      () => cursor,
      (next) => (cursor = next),
    );

    gc();
    const after = retainedBytes();
    const held = limiter.keys;
    return {
      algorithm,
      regime: regime.name,
      decisionsPerSec: (calls / elapsed) * 1000,
      allowedShare: (allowed + sampledAllowed) / (calls + sampled),
      single: single.summary(),
      batched: summarize(batches.values()),
      bytesPer10kKeys: held > 0 ? ((after - before) / held) * 10_000 : Number.NaN,
      keys: held,
      allocatedPerDecision,
    };
  } finally {
    limiter.close();
  }
}

/**
 * Bytes allocated per call: the young-generation heap grows by what the calls allocate as long as
 * no scavenge runs in between (a run during which one ran shows a drop and is discarded). The
 * smallest of several runs of 10 000 calls.
 */
function allocationPerCall(
  check: (i: number) => boolean,
  keys: number,
  get: () => number,
  set: (cursor: number) => void,
): number {
  const calls = 10_000;
  let best = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 7; attempt++) {
    gc();
    let cursor = get();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < calls; i++) {
      check(cursor);
      if (++cursor === keys) cursor = 0;
    }
    const after = process.memoryUsage().heapUsed;
    set(cursor);
    if (after >= before) best = Math.min(best, (after - before) / calls);
  }
  return best;
}

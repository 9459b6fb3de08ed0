/**
 * Helpers for the `strict` rate-limit tests (JetStream KV): the nats-server version and whether
 * its R3 compare-and-swap is serialisable, waiting for a JetStream meta leader, reading what the
 * strict store wrote (bucket and key names as src/ratelimit/cluster/strict.ts makes them),
 * requests for `RateLimiter.check`, decision bookkeeping and a pino logger whose lines a test reads.
 */
import { Writable } from 'node:stream';
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, type KV } from '@nats-io/kv';
import pino, { type Logger } from 'pino';
import { NATS_SERVER_VERSION, versionAtLeast } from './nats.js';
import type { GenApiRequest, ResolvedFunConfig } from '../../src/genapi/types.js';
import type { LimiterDecision, RateLimitDetails } from '../../src/ratelimit/limiter.js';
import type { RateLimits } from '../../src/ratelimit/rate-limits.js';
import { until } from './wait.js';

export { NATS_SERVER_VERSION, versionAtLeast, waitForJetStream } from './nats.js';

/**
 * Before 2.9.21 the expected-last-subject-sequence check of a replicated (R3) stream was a
 * pre-check outside Raft: concurrent updates with the same revision could all succeed
 * (nats-server#4320, fixed by #4319 in 2.9.21). Debian bookworm ships 2.9.10. R1 was not affected.
 * RL_ASSUME_R3_CAS=1 runs the R3 cases anyway (to see the failure on an old server).
 */
export const R3_CAS_SERIALIZABLE =
  versionAtLeast(NATS_SERVER_VERSION, '2.9.21') || process.env.RL_ASSUME_R3_CAS === '1';

/**
 * Whether reading a KV bucket whose stream was deleted fails at once. nats-server 2.10 answers
 * "no responders" on the direct-get subject; 2.9 never answers, so the read waits for the
 * JetStream timeout (a deadline, which the store's breaker rightly does not count).
 */
export const DELETED_STREAM_FAILS_FAST = versionAtLeast(NATS_SERVER_VERSION, '2.10.0');

/** The bucket the strict store uses for a policy of this horizon (strict.ts: `<prefix>_rl_<ttl>s`). */
export function bucketName(prefix: string, horizonMs: number): string {
  return `${prefix.replace(/[^A-Za-z0-9_-]/g, '_')}_rl_${Math.ceil((horizonMs + 1000) / 1000)}s`;
}

/** The KV key of one policy key (strict.ts: `<policy>.<base64url(storage key)>`). */
export function kvKeyOf(policyId: string, storageKey: string): string {
  return `${policyId}.${Buffer.from(storageKey).toString('base64url') || '_'}`;
}

/** Opens an existing bucket, retrying while a clustered stream is still electing its leader. */
export async function openBucket(
  nc: NatsConnection,
  name: string,
  timeoutMs = 15_000,
): Promise<KV> {
  let last: unknown = null;
  return until(
    async () => {
      try {
        return await new Kvm(nc).open(name);
      } catch (err) {
        last = err;
        return null;
      }
    },
    () => `bucket ${name} to open (last: ${(last as Error | null)?.message})`,
    { timeoutMs, intervalMs: 200 },
  );
}

/**
 * Retries a read while a clustered JetStream answers "temporarily unavailable" (or not at all):
 * right after a partition heals or servers restart, the meta and stream leaders are re-elected,
 * and a test's own read of the store must wait for them, not fail on them.
 */
async function whileElecting<T>(read: () => Promise<T>, timeoutMs: number): Promise<T> {
  let last: unknown = null;
  const { value } = await until(
    async () => {
      try {
        return { value: await read() };
      } catch (err) {
        const message = (err as Error).message ?? '';
        // Anything but an election in progress fails at once.
        if (!/temporarily unavailable|timeout|no responders/i.test(message)) throw err;
        last = err;
        return null;
      }
    },
    () => `a read of the store (last: ${(last as Error | null)?.message})`,
    { timeoutMs, intervalMs: 200 },
  );
  return value;
}

/**
 * What the store holds for one key: the JSON value (sliding log: hit times; GCRA: TAT), its
 * revision and operation, or null when the key was never written.
 */
export async function storedEntry(
  kv: KV,
  policyId: string,
  storageKey: string,
  timeoutMs = 15_000,
): Promise<{ value: unknown; revision: number; operation: string } | null> {
  const entry = await whileElecting(() => kv.get(kvKeyOf(policyId, storageKey)), timeoutMs);
  if (entry === null) return null;
  const text = new TextDecoder().decode(entry.value);
  return {
    value: text === '' ? null : (JSON.parse(text) as unknown),
    revision: entry.revision,
    operation: entry.operation,
  };
}

/** Hits a sliding-log key holds in the store (0 when absent or purged). */
export async function storedHits(kv: KV, policyId: string, storageKey: string): Promise<number> {
  const entry = await storedEntry(kv, policyId, storageKey);
  if (entry === null || entry.operation !== 'PUT') return 0;
  if (!Array.isArray(entry.value))
    throw new Error(`not a sliding log: ${JSON.stringify(entry.value)}`);
  return entry.value.length;
}

/** A gen_api request as the executor hands it to the limiter. */
export function request(
  user: string | null,
  service = 'svc',
  requestType = 'fn',
  args: Record<string, unknown> = {},
): GenApiRequest {
  return {
    request_id: `r-${Math.random().toString(36).slice(2)}`,
    service,
    request_type: requestType,
    version: null,
    args,
    user_id: user,
    device_id: null,
    user_roles: null,
  };
}

/** The limiter reads only the service and request type of the function config. */
export function fnConfig(service = 'svc', requestType = 'fn'): ResolvedFunConfig {
  return { service, requestType } as unknown as ResolvedFunConfig;
}

export const NO_CONTEXT = { ip: null, socketId: null } as const;

/** One check through a RateLimits' limiter (always awaited: strict policies answer with a promise). */
export function check(
  limits: RateLimits,
  user: string,
  service = 'svc',
  requestType = 'fn',
): Promise<LimiterDecision> {
  return Promise.resolve(
    limits.limiter.check(
      request(user, service, requestType),
      fnConfig(service, requestType),
      NO_CONTEXT,
    ),
  );
}

export function detailsOf(decision: LimiterDecision): RateLimitDetails | null {
  return !decision.allowed && !('unavailable' in decision) ? decision.details : null;
}

/** Decisions sorted by outcome: allowed, denied by source, unavailable. */
export function tallyDecisions(decisions: readonly LimiterDecision[]): {
  allowed: number;
  strictDenied: number;
  fallbackDenied: number;
  otherDenied: number;
  unavailable: number;
} {
  const out = { allowed: 0, strictDenied: 0, fallbackDenied: 0, otherDenied: 0, unavailable: 0 };
  for (const decision of decisions) {
    if (decision.allowed) out.allowed++;
    else if ('unavailable' in decision) out.unavailable++;
    else if (decision.details.source === 'strict') out.strictDenied++;
    else if (decision.details.source === 'fallback') out.fallbackDenied++;
    else out.otherDenied++;
  }
  return out;
}

/** A pino logger writing JSON lines into memory. */
export function capturedLogger(level = 'debug'): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const logger = pino({ level }, stream);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Resolves once `probe` stays unchanged for `quietMs` (background store work has settled). */
export async function settled(
  probe: () => number,
  quietMs = 300,
  timeoutMs = 15_000,
): Promise<void> {
  let last = probe();
  let since = performance.now();
  await until(
    () => {
      const now = probe();
      if (now !== last) {
        last = now;
        since = performance.now();
        return false;
      }
      return performance.now() - since >= quietMs;
    },
    'background store work to settle',
    { timeoutMs, intervalMs: 50 },
  );
}

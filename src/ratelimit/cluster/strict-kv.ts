/** How the strict store names and encodes its JetStream KV buckets and entries. */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KvEntry } from '@nats-io/kv';
import type { Policy } from '../policy.js';

/** KV keys allow [-/_=.A-Za-z0-9]: the storage key goes base64url. */
export function kvKey(policyId: string, key: string): string {
  return `${policyId}.${Buffer.from(key).toString('base64url') || '_'}`;
}

/** Buckets are per horizon class: whole seconds of horizon + 1 s, the entries' TTL. */
export function bucketTtlSeconds(horizonMs: number): number {
  return Math.ceil((horizonMs + 1000) / 1000);
}

export function bucketName(bucketPrefix: string, ttlSeconds: number): string {
  return `${bucketPrefix}_${ttlSeconds}s`;
}

/** Bucket names allow [-_A-Za-z0-9]. */
export function defaultBucketPrefix(natsPrefix: string): string {
  return `${natsPrefix}_rl`.replace(/[^A-Za-z0-9_-]/g, '_');
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A compare-and-swap lost: another writer updated the entry since it was read. */
export function isConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/**
 * JetStream cluster conditions that pass on their own: "no suitable peers for placement" (a
 * replica's server restarting or not yet seen by the meta leader) and "JetStream system
 * temporarily unavailable" (a meta leader being elected). Common when gateways and their NATS
 * cluster start together.
 */
const PASSING_CLUSTER_CODES: ReadonlySet<number> = new Set([10005, 10008]);

export function isPassingClusterError(err: unknown): boolean {
  return err instanceof JetStreamApiError && PASSING_CLUSTER_CODES.has(err.code);
}

/**
 * Default of `StrictOptions.bucketRetryMs`: how long creating a bucket retries passing cluster
 * errors (backoff 100 ms doubling to 1 s), and how long after a failed creation the store stays
 * off (strict policies use their fallback).
 */
export const BUCKET_RETRY_MS = 5_000;

/** A key's state as stored: its algorithm's encoding, as JSON. */
export function encodeState(policy: Policy, state: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(policy.algorithm.encode(state)));
}

/** A key's state from its entry; a fresh state when missing, deleted or unreadable. */
export function decodeState(policy: Policy, entry: KvEntry | null): unknown {
  if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0)
    return policy.algorithm.create();
  try {
    return (
      policy.algorithm.decode(JSON.parse(decoder.decode(entry.value))) ?? policy.algorithm.create()
    );
  } catch {
    return policy.algorithm.create();
  }
}

/** A probe entry's value (the sender's wall clock). */
export function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

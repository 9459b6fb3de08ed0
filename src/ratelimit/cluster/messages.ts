/**
 * Wire format of the rate-limit cluster subjects (protocol/ratelimit.md §5). Everything is JSON;
 * decoders return null for anything malformed, so one bad peer cannot break a node.
 */
import type { PolicyConfig } from '../types.js';

/** One hit: [policy id, storage key, origin wall-clock ms, cost]. */
export type Hit = [policy: string, key: string, at: number, cost: number];

/** `<prefix>.rl.hits`: a batch of hits one node allowed, numbered per origin from 1. */
export interface HitBatch {
  /** Origin: the publishing node's rate-limit id (new for every process start). */
  o: string;
  /** Sequence number of the batch from this origin. */
  s: number;
  h: Hit[];
}

/** `<prefix>.rl.node`: a heartbeat (or, with `bye`, a node leaving). */
export interface Heartbeat {
  o: string;
  /** The origin's last published batch. */
  s: number;
  /** Wall-clock ms at the sender (skew diagnostics; with a cluster secret, replay protection). */
  t: number;
  /** The sender's heartbeat count from 1 (with a cluster secret: only a higher one is taken, §5.4). */
  n?: number;
  /** Digest of the sender's runtime policy changes (only with a cluster secret; §5.4). */
  p?: string;
  bye?: true;
}

/** Ends a sync or replay answer: batches up to `to` were sent if the origin still had them. */
export interface ReplayDone {
  o: string;
  done: true;
  /** Highest sequence this answer covers. */
  to: number;
}

/** `<prefix>.rl.replay.<origin>`: batches [from, to] again. `<prefix>.rl.sync`: `{o}`, all of them. */
export interface ReplayRequest {
  from: number;
  to: number;
  /** Sender's wall-clock ms (with a cluster secret a stale request is refused as a replay). */
  t?: number;
}

/** `<prefix>.rl.sync`: `o` asks every peer for its retained batches. */
export interface SyncRequest {
  o: string;
  /** Sender's wall-clock ms (with a cluster secret a stale request is refused as a replay). */
  t?: number;
}

/**
 * `<prefix>.rl.policy`: a runtime policy change made through one node's admin API. `o` is the
 * node it was made on and `t` its version (hybrid wall-clock ms): the newest per policy id wins.
 */
export type PolicyChange =
  | { o: string; t: number; op: 'put'; policy: PolicyConfig }
  | { o: string; t: number; op: 'delete'; id: string }
  | { o: string; t: number; op: 'shadow'; shadow: boolean };

/** `<prefix>.rl.policy.sync`: asks for the nodes' policy ledgers (`to`: only that node answers). */
export interface PolicySyncRequest {
  o: string;
  to?: string;
  /** Sender's wall-clock ms (with a cluster secret a stale or repeated request is not answered). */
  t?: number;
}

/** The answer to a policy sync: every runtime change the node holds, newest per target. */
export interface PolicyState {
  o: string;
  changes: PolicyChange[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encode(message: object): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

function parse(data: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(data));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const isSeq = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);
const isOrigin = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && value.length <= 64;

function isHit(value: unknown): value is Hit {
  return (
    Array.isArray(value) &&
    value.length === 4 &&
    typeof value[0] === 'string' &&
    typeof value[1] === 'string' &&
    typeof value[2] === 'number' &&
    Number.isFinite(value[2]) &&
    typeof value[3] === 'number' &&
    Number.isFinite(value[3]) &&
    value[3] > 0
  );
}

/** A batch of hits, or a replay's end marker. */
export function decodeReplayed(data: Uint8Array): HitBatch | ReplayDone | null {
  const value = parse(data);
  if (!value || !isOrigin(value.o)) return null;
  if (value.done === true) return isSeq(value.to) ? { o: value.o, done: true, to: value.to } : null;
  if (!isSeq(value.s) || value.s === 0 || !Array.isArray(value.h)) return null;
  // Malformed hits are dropped one by one; the batch still counts as received.
  return { o: value.o, s: value.s, h: value.h.filter(isHit) };
}

export function decodeHeartbeat(data: Uint8Array): Heartbeat | null {
  const value = parse(data);
  if (!value || !isOrigin(value.o) || !isSeq(value.s) || typeof value.t !== 'number') return null;
  const heartbeat: Heartbeat = { o: value.o, s: value.s, t: value.t };
  if (isSeq(value.n)) heartbeat.n = value.n;
  if (typeof value.p === 'string' && value.p.length <= 64) heartbeat.p = value.p;
  if (value.bye === true) heartbeat.bye = true;
  return heartbeat;
}

export function decodeReplayRequest(data: Uint8Array): ReplayRequest | null {
  const value = parse(data);
  if (!value || !isSeq(value.from) || !isSeq(value.to) || value.from > value.to) return null;
  const request: ReplayRequest = { from: value.from, to: value.to };
  if (isTime(value.t)) request.t = value.t;
  return request;
}

export function decodeSyncRequest(data: Uint8Array): SyncRequest | null {
  const value = parse(data);
  if (!value || !isOrigin(value.o)) return null;
  return isTime(value.t) ? { o: value.o, t: value.t } : { o: value.o };
}

function toPolicyChange(value: Record<string, unknown> | null): PolicyChange | null {
  if (!value || !isOrigin(value.o) || !isSeq(value.t)) return null;
  const { o, t } = value;
  if (
    value.op === 'put' &&
    value.policy !== null &&
    typeof value.policy === 'object' &&
    !Array.isArray(value.policy) &&
    typeof (value.policy as { id?: unknown }).id === 'string'
  ) {
    return { o, t, op: 'put', policy: value.policy as PolicyConfig };
  }
  if (value.op === 'delete' && typeof value.id === 'string')
    return { o, t, op: 'delete', id: value.id };
  if (value.op === 'shadow' && typeof value.shadow === 'boolean')
    return { o, t, op: 'shadow', shadow: value.shadow };
  return null;
}

export function decodePolicyChange(data: Uint8Array): PolicyChange | null {
  return toPolicyChange(parse(data));
}

export function decodePolicySyncRequest(data: Uint8Array): PolicySyncRequest | null {
  const value = parse(data);
  if (!value || !isOrigin(value.o)) return null;
  const request: PolicySyncRequest = { o: value.o };
  if (value.to !== undefined) {
    if (!isOrigin(value.to)) return null;
    request.to = value.to;
  }
  if (isTime(value.t)) request.t = value.t;
  return request;
}

/** A policy state; malformed changes in it are dropped one by one. */
export function decodePolicyState(data: Uint8Array): PolicyState | null {
  const value = parse(data);
  if (!value || !isOrigin(value.o) || !Array.isArray(value.changes)) return null;
  const changes: PolicyChange[] = [];
  for (const entry of value.changes as unknown[]) {
    const change =
      entry !== null && typeof entry === 'object' && !Array.isArray(entry)
        ? toPolicyChange(entry as Record<string, unknown>)
        : null;
    if (change) changes.push(change);
  }
  return { o: value.o, changes };
}

/**
 * The messages of presence replication between gateways (protocol/presence.md §3), their JSON
 * encoding and the validation of what arrives: everything from NATS is untrusted, so a decoder
 * returns either a well-formed message or the reason it was dropped.
 */
import type { PresenceChange, PresenceMeta } from '../presence/tracker.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Longest node id and epoch accepted (characters). */
export const MAX_ID_LENGTH = 256;
/** Changes in one delta message (senders split larger batches). */
export const MAX_CHANGES_PER_DELTA = 1000;
/** Entries in one state-transfer chunk (senders split larger states). */
export const MAX_ENTRIES_PER_CHUNK = 1000;
/** Chunks in one state transfer. */
export const MAX_CHUNKS = 10_000;

/** A change to one entry of the sending node. */
export type WireChange =
  | { op: 'join'; topic: string; key: string; ref: string; meta: PresenceMeta }
  | {
      op: 'update';
      topic: string;
      key: string;
      ref: string;
      prev_ref: string;
      meta: PresenceMeta;
    }
  | { op: 'leave'; topic: string; key: string; ref: string };

/** `<p>.presence.delta`: one batch of a node's changes, `seq` = previous seq + 1. */
export interface DeltaMessage {
  node: string;
  epoch: string;
  seq: number;
  changes: WireChange[];
}

/** `<p>.presence.hb`: alive (and the last seq sent), a greeting, or a goodbye. */
export interface HeartbeatMessage {
  node: string;
  epoch: string;
  seq: number;
  /** The sender just started or reconnected: every node answers with a heartbeat soon. */
  hello?: true;
  /** The sender stops: drop its entries now. */
  bye?: true;
}

/** One entry in a state transfer. */
export interface WireEntry {
  topic: string;
  key: string;
  ref: string;
  prev_ref?: string;
  meta: PresenceMeta;
}

/** A reply to `<p>.presence.sync.<node>`: chunk `chunk` of `chunks`, all at one epoch and seq. */
export interface SyncChunkMessage {
  node: string;
  epoch: string;
  seq: number;
  chunk: number;
  chunks: number;
  entries: WireEntry[];
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; why: string };

function fail<T>(why: string): Decoded<T> {
  return { ok: false, why };
}

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function parse(data: Uint8Array, maxBytes: number): Decoded<Record<string, unknown>> {
  if (data.length > maxBytes) return fail('too large');
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(data));
  } catch {
    return fail('not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return fail('not an object');
  return { ok: true, value: body as Record<string, unknown> };
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isMeta(value: unknown): value is PresenceMeta {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isText(value: unknown): value is string {
  return typeof value === 'string';
}

function isRef(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

/** The tracked meta as sent: phx_ref and phx_ref_prev are the receiver's to add. */
function cleanMeta(meta: PresenceMeta): PresenceMeta {
  if (!('phx_ref' in meta) && !('phx_ref_prev' in meta)) return meta;
  const { phx_ref: _ref, phx_ref_prev: _prev, ...rest } = meta;
  return rest;
}

function change(value: unknown): WireChange | null {
  if (!isMeta(value)) return null;
  const { op, topic, key, ref } = value;
  if (!isText(topic) || topic.length === 0 || !isText(key) || !isRef(ref)) return null;
  if (op === 'leave') return { op, topic, key, ref };
  if (!isMeta(value.meta)) return null;
  const meta = cleanMeta(value.meta);
  if (op === 'join') return { op, topic, key, ref, meta };
  if (op === 'update' && isRef(value.prev_ref))
    return { op, topic, key, ref, prev_ref: value.prev_ref, meta };
  return null;
}

function entry(value: unknown): WireEntry | null {
  if (!isMeta(value)) return null;
  const { topic, key, ref, prev_ref: prevRef, meta } = value;
  if (!isText(topic) || topic.length === 0 || !isText(key) || !isRef(ref) || !isMeta(meta))
    return null;
  if (prevRef !== undefined && !isRef(prevRef)) return null;
  return prevRef === undefined
    ? { topic, key, ref, meta: cleanMeta(meta) }
    : { topic, key, ref, prev_ref: prevRef, meta: cleanMeta(meta) };
}

export function decodeDelta(data: Uint8Array, maxBytes: number): Decoded<DeltaMessage> {
  const parsed = parse(data, maxBytes);
  if (!parsed.ok) return parsed;
  const { node, epoch, seq, changes } = parsed.value;
  if (!isId(node) || !isId(epoch)) return fail('bad node or epoch');
  if (!isSeq(seq) || seq < 1) return fail('bad seq');
  if (!Array.isArray(changes) || changes.length === 0 || changes.length > MAX_CHANGES_PER_DELTA)
    return fail('bad changes');
  const out: WireChange[] = [];
  for (const item of changes as unknown[]) {
    const decoded = change(item);
    if (!decoded) return fail('bad change');
    out.push(decoded);
  }
  return { ok: true, value: { node, epoch, seq, changes: out } };
}

export function decodeHeartbeat(data: Uint8Array, maxBytes: number): Decoded<HeartbeatMessage> {
  const parsed = parse(data, maxBytes);
  if (!parsed.ok) return parsed;
  const { node, epoch, seq, hello, bye } = parsed.value;
  if (!isId(node) || !isId(epoch)) return fail('bad node or epoch');
  if (!isSeq(seq)) return fail('bad seq');
  if (hello !== undefined && hello !== true) return fail('bad hello');
  if (bye !== undefined && bye !== true) return fail('bad bye');
  const message: HeartbeatMessage = { node, epoch, seq };
  if (hello) message.hello = true;
  if (bye) message.bye = true;
  return { ok: true, value: message };
}

export function decodeSyncChunk(data: Uint8Array, maxBytes: number): Decoded<SyncChunkMessage> {
  const parsed = parse(data, maxBytes);
  if (!parsed.ok) return parsed;
  const { node, epoch, seq, chunk, chunks, entries } = parsed.value;
  if (!isId(node) || !isId(epoch)) return fail('bad node or epoch');
  if (!isSeq(seq)) return fail('bad seq');
  if (!isSeq(chunks) || chunks < 1 || chunks > MAX_CHUNKS) return fail('bad chunks');
  if (!isSeq(chunk) || chunk >= chunks) return fail('bad chunk');
  if (!Array.isArray(entries) || entries.length > MAX_ENTRIES_PER_CHUNK) return fail('bad entries');
  const out: WireEntry[] = [];
  for (const item of entries as unknown[]) {
    const decoded = entry(item);
    if (!decoded) return fail('bad entry');
    out.push(decoded);
  }
  return { ok: true, value: { node, epoch, seq, chunk, chunks, entries: out } };
}

/** `<p>.presence.get` request body: `{"topic": "..."}`. */
export function decodeGetRequest(data: Uint8Array, maxBytes: number): Decoded<string> {
  const parsed = parse(data, maxBytes);
  if (!parsed.ok) return parsed;
  const { topic } = parsed.value;
  if (!isText(topic) || topic.length === 0) return fail('topic must be a non-empty string');
  return { ok: true, value: topic };
}

/**
 * Splits items into messages of at most `maxItems` items whose encoded size stays under
 * `maxBytes` (each item's JSON is measured once). An item that alone exceeds the budget is
 * returned in `tooLarge` instead (it cannot be replicated).
 */
export function splitBySize<T>(
  items: readonly T[],
  maxItems: number,
  maxBytes: number,
): { batches: T[][]; tooLarge: T[] } {
  const batches: T[][] = [];
  const tooLarge: T[] = [];
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = encoder.encode(JSON.stringify(item)).length + 1;
    if (size > maxBytes) {
      tooLarge.push(item);
      continue;
    }
    if (batch.length >= maxItems || bytes + size > maxBytes) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return { batches, tooLarge };
}

/** One of this node's presence changes as it goes out in a delta. */
export function toWire(change: PresenceChange): WireChange {
  switch (change.kind) {
    case 'join':
      return {
        op: 'join',
        topic: change.topic,
        key: change.key,
        ref: change.ref,
        meta: change.meta,
      };
    case 'update':
      return {
        op: 'update',
        topic: change.topic,
        key: change.key,
        ref: change.ref,
        prev_ref: change.prevRef,
        meta: change.meta,
      };
    case 'leave':
      return { op: 'leave', topic: change.topic, key: change.key, ref: change.ref };
  }
}

/**
 * State transfers between nodes (protocol/presence.md §4), both sides: a node's whole state sent
 * in chunks to whoever asked, and a request to another node whose chunks come to a fresh inbox
 * until all arrived, one is inconsistent, or the time is up. ClusterPresence decides when.
 */
import type { Msg } from '@nats-io/nats-core';
import { natsInbox } from '../nats/connection.js';
import { topicToken } from '../nats/topic-token.js';
import type { OwnEntry } from '../presence/presence.js';
import type { ClusterLink } from './link.js';
import type { NodeSnapshot } from './presence-replica.js';
import {
  MAX_ENTRIES_PER_CHUNK,
  decodeSyncChunk,
  encodeJson,
  splitBySize,
  type SyncChunkMessage,
  type WireEntry,
} from './presence-wire.js';

/**
 * Sends this node's entries to `replyTo`, chunked, all at `head`'s seq. Entries over the payload
 * budget count as `publishFailed`; a whole transfer sent counts as `syncsServed`.
 */
export function sendNodeState(
  link: ClusterLink,
  replyTo: string,
  head: { readonly node: string; readonly epoch: string; readonly seq: number },
  own: Iterable<OwnEntry>,
  budget: number,
  counters: { publishFailed: number; syncsServed: number },
): void {
  const entries: WireEntry[] = [];
  for (const entry of own) {
    const item: WireEntry = {
      topic: entry.topic,
      key: entry.key,
      ref: entry.ref,
      meta: entry.meta,
    };
    if (entry.prevRef !== null) item.prev_ref = entry.prevRef;
    entries.push(item);
  }
  const { batches, tooLarge } = splitBySize(entries, MAX_ENTRIES_PER_CHUNK, budget);
  if (tooLarge.length > 0) counters.publishFailed += tooLarge.length;
  if (batches.length === 0) batches.push([]);
  const first = { ...head, chunks: batches.length };
  try {
    for (const [chunk, batch] of batches.entries())
      link.nc.publish(replyTo, encodeJson({ ...first, chunk, entries: batch }));
    counters.syncsServed++;
  } catch (err) {
    link.logger.warn({ err }, 'presence state transfer not sent');
  }
}

/** What a state transfer request reports back (ClusterPresence counts, logs and applies it). */
export interface SyncRequestOutcome {
  /** A chunk arrived. */
  received(): void;
  /** A chunk was malformed or too large. */
  dropped(msg: Msg, why: string): void;
  /** Every chunk arrived: the node's whole state. */
  done(snapshot: NodeSnapshot): void;
  /** Timeout, no responder, a bad or inconsistent chunk, or the request not sent. */
  failed(why: string | undefined): void;
}

/**
 * Asks `node` for its state on behalf of `self`. While it runs, `syncs` holds its cancel function
 * under its inbox (ClusterPresence cancels them all when it stops).
 */
export function requestNodeState(
  link: ClusterLink,
  self: string,
  node: string,
  limits: { readonly syncTimeoutMs: number; readonly maxMessageBytes: number },
  syncs: Map<string, () => void>,
  outcome: SyncRequestOutcome,
): void {
  const inbox = natsInbox(link.nc);
  const chunks = new Map<number, SyncChunkMessage>();
  let head: SyncChunkMessage | null = null;
  const finish = (ok: boolean, why?: string) => {
    clearTimeout(timer);
    sub.unsubscribe();
    syncs.delete(inbox);
    if (ok && head) {
      const entries = [...chunks.values()]
        .sort((a, b) => a.chunk - b.chunk)
        .flatMap((c) => c.entries);
      outcome.done({ epoch: head.epoch, seq: head.seq, entries });
    } else {
      outcome.failed(why);
    }
  };
  const sub = link.nc.subscribe(inbox, {
    callback: (err, msg) => {
      if (err) return finish(false, err.message);
      if (msg.data.length === 0) return finish(false, 'no responder');
      outcome.received();
      const decoded = decodeSyncChunk(msg.data, limits.maxMessageBytes);
      if (!decoded.ok) {
        outcome.dropped(msg, decoded.why);
        return finish(false, decoded.why);
      }
      const chunk = decoded.value;
      head ??= chunk;
      if (
        chunk.node !== node ||
        chunk.epoch !== head.epoch ||
        chunk.seq !== head.seq ||
        chunk.chunks !== head.chunks
      )
        return finish(false, 'inconsistent chunks');
      chunks.set(chunk.chunk, chunk);
      if (chunks.size === head.chunks) finish(true);
    },
  });
  const timer = setTimeout(() => finish(false, 'timeout'), limits.syncTimeoutMs);
  timer.unref();
  syncs.set(inbox, () => {
    clearTimeout(timer);
    sub.unsubscribe();
    syncs.delete(inbox);
  });
  try {
    link.nc.publish(link.subjects.presenceSync(topicToken(node)), encodeJson({ node: self }), {
      reply: inbox,
    });
  } catch (err) {
    finish(false, String(err));
  }
}

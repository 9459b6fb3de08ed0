/**
 * Another node's presence entries as this node holds them, and the joins and leaves that changing
 * them produces, collected per topic so each message applied broadcasts one diff per topic.
 */
import type { PresenceMeta } from '../presence/tracker.js';
import type { ReplicaCallbacks } from './presence-replica.js';

/** One entry of another node, as a client sees it once `phx_ref`s are added. */
export interface ReplicaEntry {
  readonly node: string;
  readonly topic: string;
  readonly key: string;
  readonly ref: string;
  readonly prevRef: string | null;
  readonly meta: PresenceMeta;
}

/** The meta a client sees for an entry: its own fields plus `phx_ref` (and `phx_ref_prev`). */
export function wireMeta(entry: ReplicaEntry): PresenceMeta {
  const meta: PresenceMeta = { ...entry.meta, phx_ref: entry.ref };
  if (entry.prevRef !== null) meta.phx_ref_prev = entry.prevRef;
  return meta;
}

/** Joins and leaves of one message, grouped per topic, broadcast once the message is applied. */
export class DiffCollector {
  private readonly topics = new Map<
    string,
    { joins: [string, PresenceMeta][]; leaves: [string, PresenceMeta][] }
  >();

  private of(topic: string) {
    let diff = this.topics.get(topic);
    if (!diff) {
      diff = { joins: [], leaves: [] };
      this.topics.set(topic, diff);
    }
    return diff;
  }

  join(entry: ReplicaEntry): void {
    this.of(entry.topic).joins.push([entry.key, wireMeta(entry)]);
  }

  leave(entry: ReplicaEntry): void {
    this.of(entry.topic).leaves.push([entry.key, wireMeta(entry)]);
  }

  flush(callbacks: Pick<ReplicaCallbacks, 'diff'>): void {
    for (const [topic, { joins, leaves }] of this.topics) callbacks.diff(topic, joins, leaves);
    this.topics.clear();
  }
}

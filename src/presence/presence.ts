import { randomUUID } from 'node:crypto';
import type { PubSub } from '../channel/pubsub.js';
import type { Channel } from '../channel/types.js';
import { PhxRefGenerator } from './phx-ref.js';
import type {
  Presence,
  PresenceChange,
  PresenceDiff,
  PresenceMeta,
  PresenceState,
} from './tracker.js';
import { InvalidStateError } from '../errors.js';
import { reportChangeError } from './change-errors.js';
import { group, keyed, setKey } from './state-payload.js';

export type {
  Presence,
  PresenceChange,
  PresenceDiff,
  PresenceMeta,
  PresenceState,
} from './tracker.js';
export { keyed, setKey } from './state-payload.js';

/** Options of `LocalPresence` (the gateway's `presence` option, without `nodeId`). */
export interface PresenceOptions {
  /** Adds fields next to `metas` (Phoenix's `fetch/2`), e.g. user records loaded in one go. */
  fetch?: (topic: string, state: PresenceState) => PresenceState;
  /** The event names clients listen on; defaults match the JS Presence helper. */
  events?: { state?: string; diff?: string };
  /** Folded into every phx_ref so refs from different nodes never collide; names this node in changes. */
  nodeId?: string;
  /**
   * Called when an `onLocalChange` listener throws. The change itself stands (its diff went out),
   * and the other listeners still run. Default: a process warning (also when this one throws).
   */
  onChangeError?: (err: unknown, change: PresenceChange) => void;
  /** Replication between gateways once the gateway joined a cluster (protocol/presence.md §6). */
  cluster?: ClusterPresenceOptions;
}

/**
 * Presence replication between gateways (protocol/presence.md §6). The defaults are in
 * `CLUSTER_PRESENCE_DEFAULTS` (src/cluster/presence-options.ts).
 */
export interface ClusterPresenceOptions {
  /** How often a node tells the others it is alive and how far its deltas go. Default 1000 ms. */
  heartbeatMs?: number;
  /** A node not heard from for this long is dropped with its entries. Default 3000 ms. */
  downAfterMs?: number;
  /** How long a state transfer may take before it is retried. Default 2000 ms. */
  syncTimeoutMs?: number;
  /** Entries kept per other node; more are dropped and counted. Default 100000. */
  maxEntriesPerNode?: number;
  /** Other nodes tracked; messages from more are dropped and counted. Default 1024. */
  maxNodes?: number;
  /** Largest replication message accepted, in bytes; larger ones are dropped. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Deltas held per node while its state transfer runs; beyond, it syncs again. Default 1000. */
  maxPendingDeltas?: number;
  /**
   * State transfers this node serves per second (each sends its whole state); more requests are
   * ignored and counted, and their askers retry at a later heartbeat. Default 100.
   */
  maxSyncServesPerSecond?: number;
}

/** One of this node's entries as state transfer sends it (`meta` without phx_ref). */
export interface OwnEntry {
  readonly topic: string;
  readonly key: string;
  readonly ref: string;
  readonly prevRef: string | null;
  readonly meta: PresenceMeta;
}

interface Entry {
  readonly topic: string;
  readonly key: string;
  meta: PresenceMeta;
  ref: string;
  prevRef: string | null;
  /** The channel that tracked it (local) — untracked when that channel ends. */
  readonly owner: object;
}

function wireMeta(entry: Entry): PresenceMeta {
  const meta: PresenceMeta = { ...entry.meta, phx_ref: entry.ref };
  if (entry.prevRef !== null) meta.phx_ref_prev = entry.prevRef;
  return meta;
}

/**
 * Phoenix.Presence for this gateway node: track/update/untrack per channel, `list` in the
 * `presence_state` format, and each change broadcast at once as one `presence_diff` fastlane
 * broadcast (joins and leaves in one diff for an update), exactly what the JS `Presence` helper
 * consumes. Entries are untracked automatically when their channel ends.
 *
 * The gateway depends on the `Presence` interface (tracker.ts), not on this class.
 * `ClusterPresence` (src/cluster/presence.ts, what the gateway uses) wraps it and replicates its
 * `onLocalChange` stream between nodes; every entry carries a node-unique phx_ref so remote
 * entries merge into `list` without collisions.
 */
export class LocalPresence implements Presence {
  readonly stateEvent: string;
  readonly diffEvent: string;
  /** This node's name in `PresenceChange.node`. */
  readonly node: string;
  private readonly topics = new Map<string, Map<string, Entry[]>>();
  private readonly byOwner = new Map<object, Set<Entry>>();
  private readonly refs: PhxRefGenerator;
  private readonly listeners = new Set<(change: PresenceChange) => void>();

  constructor(
    private readonly pubsub: PubSub,
    private readonly options: PresenceOptions = {},
  ) {
    this.stateEvent = options.events?.state ?? 'presence_state';
    this.diffEvent = options.events?.diff ?? 'presence_diff';
    this.node = options.nodeId ?? randomUUID();
    this.refs = new PhxRefGenerator(options.nodeId);
  }

  onLocalChange(listener: (change: PresenceChange) => void): () => void {
    // A wrapper per subscription, so the same function subscribed twice is called twice.
    const subscription = (change: PresenceChange) => listener(change);
    this.listeners.add(subscription);
    return () => {
      this.listeners.delete(subscription);
    };
  }

  /** Tracks `key` with `meta` on the channel's topic (or `topic`). Returns the new phx_ref. */
  track(
    channel: Channel,
    key: string,
    meta: PresenceMeta = {},
    topic: string = channel.topic,
  ): string {
    if (this.find(channel, topic, key))
      throw new InvalidStateError(
        `presence: ${key} is already tracked on ${topic} by this channel`,
      );
    const entry: Entry = {
      topic,
      key,
      meta: { ...meta },
      ref: this.refs.next(),
      prevRef: null,
      owner: channel,
    };
    let keys = this.topics.get(topic);
    if (!keys) {
      keys = new Map();
      this.topics.set(topic, keys);
    }
    const list = keys.get(key);
    if (list) list.push(entry);
    else keys.set(key, [entry]);
    let owned = this.byOwner.get(channel);
    if (!owned) {
      owned = new Set();
      this.byOwner.set(channel, owned);
    }
    owned.add(entry);
    this.broadcastDiff(topic, [entry], []);
    if (this.listeners.size > 0)
      this.emit({
        kind: 'join',
        node: this.node,
        topic,
        key,
        ref: entry.ref,
        meta: { ...entry.meta },
      });
    return entry.ref;
  }

  /** Replaces the meta (or maps it) and broadcasts one diff with the new join and the old leave. */
  update(
    channel: Channel,
    key: string,
    meta: PresenceMeta | ((current: PresenceMeta) => PresenceMeta),
    topic: string = channel.topic,
  ): string {
    const entry = this.find(channel, topic, key);
    if (!entry)
      throw new InvalidStateError(`presence: ${key} is not tracked on ${topic} by this channel`);
    const left = wireMeta(entry);
    const prevMeta = entry.meta;
    entry.meta = { ...(typeof meta === 'function' ? meta({ ...entry.meta }) : meta) };
    entry.prevRef = entry.ref;
    entry.ref = this.refs.next();
    this.broadcastDiffMetas(topic, [[key, wireMeta(entry)]], [[key, left]]);
    if (this.listeners.size > 0) {
      this.emit({
        kind: 'update',
        node: this.node,
        topic,
        key,
        ref: entry.ref,
        prevRef: entry.prevRef,
        meta: { ...entry.meta },
        prevMeta: { ...prevMeta },
      });
    }
    return entry.ref;
  }

  /** Untracks `key` on the topic; returns false when it was not tracked by this channel. */
  untrack(channel: Channel, key: string, topic: string = channel.topic): boolean {
    const entry = this.find(channel, topic, key);
    if (!entry) return false;
    this.remove(entry);
    this.byOwner.get(channel)?.delete(entry);
    if (this.byOwner.get(channel)?.size === 0) this.byOwner.delete(channel);
    this.broadcastDiff(topic, [], [entry]);
    this.emitLeaves([entry]);
    return true;
  }

  /** Untracks everything a channel tracked (called when the channel ends). */
  untrackAll(owner: object): void {
    const owned = this.byOwner.get(owner);
    if (!owned) return;
    this.byOwner.delete(owner);
    const byTopic = new Map<string, Entry[]>();
    for (const entry of owned) {
      this.remove(entry);
      const list = byTopic.get(entry.topic);
      if (list) list.push(entry);
      else byTopic.set(entry.topic, [entry]);
    }
    for (const [topic, entries] of byTopic) {
      this.broadcastDiff(topic, [], entries);
      this.emitLeaves(entries);
    }
  }

  /** The `presence_state` payload for a topic (with `fetch` applied). */
  list(topic: string): PresenceState {
    const state = this.listOwn(topic);
    return this.options.fetch ? this.options.fetch(topic, state) : state;
  }

  /** The metas of one key, or null. */
  get(topic: string, key: string): { metas: PresenceMeta[] } | null {
    const entries = this.topics.get(topic)?.get(key);
    return entries ? { metas: entries.map(wireMeta) } : null;
  }

  /**
   * @internal This node's own entries of a topic in the `presence_state` format, without `fetch`
   * (cluster presence merges other nodes' entries in before applying it).
   */
  listOwn(topic: string): PresenceState {
    const state = keyed<{ metas: PresenceMeta[] }>();
    const keys = this.topics.get(topic);
    if (keys)
      for (const [key, entries] of keys) setKey(state, key, { metas: entries.map(wireMeta) });
    return state;
  }

  /** @internal Every entry of this node (all topics), for state transfer to other nodes. */
  *entries(): IterableIterator<OwnEntry> {
    for (const keys of this.topics.values())
      for (const entries of keys.values())
        for (const entry of entries)
          yield {
            topic: entry.topic,
            key: entry.key,
            ref: entry.ref,
            prevRef: entry.prevRef,
            meta: entry.meta,
          };
  }

  /**
   * @internal Broadcasts one `presence_diff` to this node's subscribers of `topic` (`fetch`
   * applied): cluster presence uses it for the changes it learns from other nodes.
   */
  broadcastDiffOf(
    topic: string,
    joins: readonly (readonly [string, PresenceMeta])[],
    leaves: readonly (readonly [string, PresenceMeta])[],
  ): void {
    this.broadcastDiffMetas(topic, joins, leaves);
  }

  /** Number of tracked entries (all topics). */
  get size(): number {
    let count = 0;
    for (const keys of this.topics.values())
      for (const entries of keys.values()) count += entries.length;
    return count;
  }

  private emitLeaves(entries: readonly Entry[]): void {
    if (this.listeners.size === 0) return;
    for (const entry of entries) {
      this.emit({
        kind: 'leave',
        node: this.node,
        topic: entry.topic,
        key: entry.key,
        ref: entry.ref,
        meta: { ...entry.meta },
      });
    }
  }

  /** A listener that throws must not undo the change or crash the channel that made it. */
  private emit(change: PresenceChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        reportChangeError(this.options.onChangeError, err, change);
      }
    }
  }

  private find(owner: object, topic: string, key: string): Entry | undefined {
    const owned = this.byOwner.get(owner);
    if (!owned) return undefined;
    for (const entry of owned) if (entry.topic === topic && entry.key === key) return entry;
    return undefined;
  }

  private remove(entry: Entry): void {
    const keys = this.topics.get(entry.topic);
    const list = keys?.get(entry.key);
    if (!keys || !list) return;
    const index = list.indexOf(entry);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) keys.delete(entry.key);
    if (keys.size === 0) this.topics.delete(entry.topic);
  }

  private broadcastDiff(topic: string, joins: readonly Entry[], leaves: readonly Entry[]): void {
    this.broadcastDiffMetas(
      topic,
      joins.map((entry) => [entry.key, wireMeta(entry)]),
      leaves.map((entry) => [entry.key, wireMeta(entry)]),
    );
  }

  private broadcastDiffMetas(
    topic: string,
    joins: readonly (readonly [string, PresenceMeta])[],
    leaves: readonly (readonly [string, PresenceMeta])[],
  ): void {
    const diff: PresenceDiff = { joins: group(joins), leaves: group(leaves) };
    const fetch = this.options.fetch;
    if (fetch) {
      // Diffs go out from teardown (a socket closing) and from replication: a throwing fetch must
      // not escape there. The diff goes out with its metas, without the fetched fields.
      try {
        diff.joins = fetch(topic, diff.joins);
        diff.leaves = fetch(topic, diff.leaves);
      } catch (err) {
        diff.joins = group(joins);
        diff.leaves = group(leaves);
        process.emitWarning(
          `presence fetch threw for ${topic}; the diff went out without its fields: ${String(err)}`,
          'PresenceWarning',
        );
      }
    }
    // Local only: every node computes the diffs of the changes it learns (its own and replicated).
    this.pubsub.broadcastLocal(topic, this.diffEvent, diff);
  }
}

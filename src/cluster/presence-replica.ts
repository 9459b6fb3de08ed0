/**
 * The replicas of the other nodes' presence entries and the state machine that keeps them right
 * (protocol/presence.md §4): apply each node's deltas in sequence, ask for a state transfer on a
 * gap, an unknown node or a new epoch, drop a node on goodbye or silence. No I/O and no timers:
 * the component feeds it messages and the time, and it reports diffs and sync requests through
 * callbacks, so every transition can be tested with a manual clock.
 */
import type { PresenceMeta, PresenceState } from '../presence/tracker.js';
import type { Clock } from '../util/clock.js';
import { DiffCollector, wireMeta, type ReplicaEntry } from './presence-replica-diff.js';
import type { DeltaMessage, HeartbeatMessage, WireChange, WireEntry } from './presence-wire.js';

/** What this node knows of another node. */
interface RemoteNode {
  readonly node: string;
  epoch: string;
  /** The last seq applied (0: nothing yet). */
  seq: number;
  /** Entries by phx_ref. */
  entries: Map<string, ReplicaEntry>;
  lastHeard: number;
  /** A state transfer is needed (gap, new node or epoch, failed transfer). */
  needsSync: boolean;
  /** A state transfer is under way. */
  syncing: boolean;
  /** Deltas received while a transfer is needed or under way, applied after it. */
  pending: DeltaMessage[];
}

/** A node's full state (all chunks of one transfer put together). */
export interface NodeSnapshot {
  readonly epoch: string;
  readonly seq: number;
  readonly entries: readonly WireEntry[];
}

export interface ReplicaLimits {
  downAfterMs: number;
  maxEntriesPerNode: number;
  maxNodes: number;
  maxPendingDeltas: number;
}

export interface ReplicaCallbacks {
  /** Diff of one topic to broadcast locally (keys with their wire metas). */
  diff(
    topic: string,
    joins: readonly (readonly [string, PresenceMeta])[],
    leaves: readonly (readonly [string, PresenceMeta])[],
  ): void;
  /** Ask `node` for its state; answer with `syncDone` or `syncFailed`. */
  requestSync(node: string): void;
}

/** Counters of the replica side. */
export interface PresenceReplicaStats {
  /** Other nodes known right now. */
  nodes: number;
  /** Their entries held here. */
  entries: number;
  /** State transfers asked for. */
  syncsRequested: number;
  /** Nodes dropped because they were not heard from for downAfterMs. */
  expired: number;
  /** Nodes dropped on their goodbye. */
  departed: number;
  /** Joins refused because their node reached maxEntriesPerNode, or nodes beyond maxNodes. */
  overLimit: number;
}

export class ReplicaStore {
  private readonly nodes = new Map<string, RemoteNode>();
  /** topic → key → entries of every other node. */
  private readonly index = new Map<string, Map<string, Set<ReplicaEntry>>>();
  private readonly counters = {
    syncsRequested: 0,
    expired: 0,
    departed: 0,
    overLimit: 0,
  };

  constructor(
    private readonly now: Clock,
    private readonly limits: ReplicaLimits,
    private readonly callbacks: ReplicaCallbacks,
  ) {}

  /** A heartbeat (alive, greeting or goodbye). */
  heartbeat(message: HeartbeatMessage): void {
    if (message.bye) {
      const known = this.nodes.get(message.node);
      if (known && known.epoch === message.epoch) this.drop(known, 'departed');
      return;
    }
    const remote = this.track(message.node, message.epoch);
    if (!remote) return;
    if (message.seq > remote.seq && !remote.syncing) remote.needsSync = true;
    this.syncIfNeeded(remote);
  }

  /** A delta: applied when it is the next in sequence, else held until a state transfer. */
  delta(message: DeltaMessage): void {
    const remote = this.track(message.node, message.epoch);
    if (!remote) return;
    if (remote.needsSync || remote.syncing) {
      this.hold(remote, message);
    } else if (message.seq <= remote.seq) {
      // A duplicate: already applied.
    } else if (message.seq === remote.seq + 1) {
      this.apply(remote, message);
    } else {
      remote.needsSync = true;
      this.hold(remote, message);
    }
    this.syncIfNeeded(remote);
  }

  /** A state transfer from `node` completed: replace its entries, then apply held deltas. */
  syncDone(node: string, snapshot: NodeSnapshot): void {
    const remote = this.nodes.get(node);
    // Dropped meanwhile (goodbye or silence): it comes back through its next heartbeat.
    if (!remote) return;
    remote.syncing = false;
    if (snapshot.epoch !== remote.epoch) {
      // Answered by the node's previous life (it restarted meanwhile): ask the new one.
      remote.needsSync = true;
      this.syncIfNeeded(remote);
      return;
    }
    remote.needsSync = false;
    remote.lastHeard = this.now();
    const diff = new DiffCollector();
    const next = new Map<string, ReplicaEntry>();
    for (const item of snapshot.entries) {
      if (next.size >= this.limits.maxEntriesPerNode) {
        this.counters.overLimit++;
        break;
      }
      const existing = remote.entries.get(item.ref);
      if (existing) {
        next.set(item.ref, existing);
        continue;
      }
      next.set(
        item.ref,
        this.entryOf(node, item.topic, item.key, item.ref, item.prev_ref, item.meta),
      );
    }
    for (const [ref, entry] of remote.entries) {
      if (next.has(ref)) continue;
      this.unindex(entry);
      diff.leave(entry);
    }
    for (const [ref, entry] of next) {
      if (remote.entries.has(ref)) continue;
      this.indexEntry(entry);
      diff.join(entry);
    }
    remote.entries = next;
    remote.seq = snapshot.seq;
    diff.flush(this.callbacks);
    const held = remote.pending.sort((a, b) => a.seq - b.seq);
    remote.pending = [];
    for (const [i, message] of held.entries()) {
      if (message.seq <= remote.seq) continue;
      if (message.seq !== remote.seq + 1) {
        remote.needsSync = true;
        remote.pending = held.slice(i);
        break;
      }
      this.apply(remote, message);
    }
    this.syncIfNeeded(remote);
  }

  /** A state transfer failed (timeout, no responder, bad chunk): retried on the node's next message. */
  syncFailed(node: string): void {
    const remote = this.nodes.get(node);
    if (!remote) return;
    remote.syncing = false;
    remote.needsSync = true;
  }

  /** Drops the nodes not heard from for downAfterMs (their entries leave). Returns how many. */
  expire(): number {
    const limit = this.now() - this.limits.downAfterMs;
    let dropped = 0;
    for (const remote of [...this.nodes.values()]) {
      if (remote.lastHeard > limit) continue;
      this.drop(remote, 'expired');
      dropped++;
    }
    return dropped;
  }

  /** After this node's own outage: every node may have changed unseen, so re-sync all. */
  resyncAll(): void {
    for (const remote of this.nodes.values()) {
      if (!remote.syncing) remote.needsSync = true;
      this.syncIfNeeded(remote);
    }
  }

  /** Drops every replica without broadcasting (this node stops). */
  clear(): void {
    this.nodes.clear();
    this.index.clear();
  }

  /** Adds the other nodes' metas of `topic` to `state` (built by `keyed`/`setKey`). */
  mergeInto(
    topic: string,
    state: PresenceState,
    add: (state: PresenceState, key: string, metas: PresenceMeta[]) => void,
  ): void {
    const keys = this.index.get(topic);
    if (!keys) return;
    for (const [key, entries] of keys) add(state, key, [...entries].map(wireMeta));
  }

  /** The other nodes' metas of one key (empty when none). */
  metasOf(topic: string, key: string): PresenceMeta[] {
    const entries = this.index.get(topic)?.get(key);
    return entries ? [...entries].map(wireMeta) : [];
  }

  /** Whether `node` is known (heard from, not dropped). */
  knows(node: string): boolean {
    return this.nodes.has(node);
  }

  /** The nodes known, with the seq applied (for tests and health). */
  nodeSeqs(): Map<string, { epoch: string; seq: number; entries: number }> {
    const out = new Map<string, { epoch: string; seq: number; entries: number }>();
    for (const remote of this.nodes.values())
      out.set(remote.node, { epoch: remote.epoch, seq: remote.seq, entries: remote.entries.size });
    return out;
  }

  stats(): PresenceReplicaStats {
    let entries = 0;
    for (const remote of this.nodes.values()) entries += remote.entries.size;
    return { nodes: this.nodes.size, entries, ...this.counters };
  }

  /**
   * The record of `node` after hearing from it, created for a new node; a new epoch (the node
   * restarted) drops what the old one had. Null when the node is over maxNodes.
   */
  private track(node: string, epoch: string): RemoteNode | null {
    let remote = this.nodes.get(node);
    if (!remote) {
      if (this.nodes.size >= this.limits.maxNodes) {
        this.counters.overLimit++;
        return null;
      }
      remote = {
        node,
        epoch,
        seq: 0,
        entries: new Map(),
        lastHeard: this.now(),
        needsSync: true,
        syncing: false,
        pending: [],
      };
      this.nodes.set(node, remote);
      return remote;
    }
    remote.lastHeard = this.now();
    if (remote.epoch !== epoch) {
      this.dropEntries(remote);
      remote.epoch = epoch;
      remote.seq = 0;
      remote.pending = [];
      remote.needsSync = true;
    }
    return remote;
  }

  private hold(remote: RemoteNode, message: DeltaMessage): void {
    if (remote.pending.length >= this.limits.maxPendingDeltas) {
      // The transfer under way will be behind anyway: start over from a fresh one afterwards.
      remote.pending = [];
      remote.needsSync = true;
    }
    remote.pending.push(message);
  }

  private syncIfNeeded(remote: RemoteNode): void {
    if (!remote.needsSync || remote.syncing) return;
    remote.syncing = true;
    remote.needsSync = false;
    this.counters.syncsRequested++;
    this.callbacks.requestSync(remote.node);
  }

  private apply(remote: RemoteNode, message: DeltaMessage): void {
    const diff = new DiffCollector();
    for (const change of message.changes) this.applyChange(remote, change, diff);
    remote.seq = message.seq;
    diff.flush(this.callbacks);
  }

  /** Idempotent by phx_ref: a join of a known ref or a leave of an unknown one changes nothing. */
  private applyChange(remote: RemoteNode, change: WireChange, diff: DiffCollector): void {
    if (change.op === 'leave') {
      const entry = remote.entries.get(change.ref);
      if (!entry) return;
      remote.entries.delete(change.ref);
      this.unindex(entry);
      diff.leave(entry);
      return;
    }
    if (change.op === 'update') {
      const old = remote.entries.get(change.prev_ref);
      if (old) {
        remote.entries.delete(change.prev_ref);
        this.unindex(old);
        diff.leave(old);
      }
    }
    if (remote.entries.has(change.ref)) return;
    if (remote.entries.size >= this.limits.maxEntriesPerNode) {
      this.counters.overLimit++;
      return;
    }
    const entry = this.entryOf(
      remote.node,
      change.topic,
      change.key,
      change.ref,
      change.op === 'update' ? change.prev_ref : undefined,
      change.meta,
    );
    remote.entries.set(change.ref, entry);
    this.indexEntry(entry);
    diff.join(entry);
  }

  private entryOf(
    node: string,
    topic: string,
    key: string,
    ref: string,
    prevRef: string | undefined,
    meta: PresenceMeta,
  ): ReplicaEntry {
    return { node, topic, key, ref, prevRef: prevRef ?? null, meta };
  }

  private drop(remote: RemoteNode, why: 'expired' | 'departed'): void {
    this.nodes.delete(remote.node);
    this.counters[why]++;
    this.dropEntries(remote);
  }

  private dropEntries(remote: RemoteNode): void {
    const diff = new DiffCollector();
    for (const entry of remote.entries.values()) {
      this.unindex(entry);
      diff.leave(entry);
    }
    remote.entries = new Map();
    diff.flush(this.callbacks);
  }

  private indexEntry(entry: ReplicaEntry): void {
    let keys = this.index.get(entry.topic);
    if (!keys) {
      keys = new Map();
      this.index.set(entry.topic, keys);
    }
    let set = keys.get(entry.key);
    if (!set) {
      set = new Set();
      keys.set(entry.key, set);
    }
    set.add(entry);
  }

  private unindex(entry: ReplicaEntry): void {
    const keys = this.index.get(entry.topic);
    const set = keys?.get(entry.key);
    if (!keys || !set) return;
    set.delete(entry);
    if (set.size === 0) keys.delete(entry.key);
    if (keys.size === 0) this.index.delete(entry.topic);
  }
}

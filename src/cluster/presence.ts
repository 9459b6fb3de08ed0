import { randomUUID } from 'node:crypto';
import type { Msg, Subscription } from '@nats-io/nats-core';
import type { PubSub } from '../channel/pubsub.js';
import type { Channel } from '../channel/types.js';
import { QUEUE_GROUP } from '../nats/headers.js';
import { topicToken } from '../nats/topic-token.js';
import {
  LocalPresence,
  setKey,
  type ClusterPresenceOptions,
  type PresenceOptions,
} from '../presence/presence.js';
import type { Presence, PresenceChange, PresenceMeta, PresenceState } from '../presence/tracker.js';
import { monotonicClock, type Clock } from '../util/clock.js';
import type { ClusterComponent, ClusterLink } from './link.js';
import { answerPresenceGet } from './presence-get.js';
import { clusterPresenceOptions } from './presence-options.js';
import { ReplicaStore } from './presence-replica.js';
import type { ClusterPresenceStats } from './presence-stats.js';
import { requestNodeState, sendNodeState } from './presence-transfer.js';
import { InvalidArgumentError } from '../errors.js';
import {
  MAX_CHANGES_PER_DELTA,
  MAX_ID_LENGTH,
  decodeDelta,
  decodeHeartbeat,
  encodeJson,
  splitBySize,
  toWire,
  type HeartbeatMessage,
  type WireChange,
} from './presence-wire.js';

export type { ClusterPresenceStats } from './presence-stats.js';

/** Room left in a message for the envelope around its changes or entries. */
const ENVELOPE_BYTES = 1024;

/**
 * Presence across gateways, Phoenix.Tracker-style on core NATS (protocol/presence.md). This
 * node's entries live in a `LocalPresence`; its changes go out as clocked deltas (node, epoch,
 * seq) batched per event-loop turn, with heartbeats every `heartbeatMs`. Every node replicates
 * every other node's entries (presence changes are rare next to broadcasts, so full replication
 * is cheap) and broadcasts the diffs it learns to its own subscribers, so `list`/`get` answer
 * for the whole cluster. A gap, a new node or a new epoch is healed by a state transfer.
 */
export class ClusterPresence implements Presence, ClusterComponent {
  readonly stateEvent: string;
  readonly diffEvent: string;
  readonly node: string;
  private readonly local: LocalPresence;
  private readonly replicas: ReplicaStore;
  private readonly settings: Required<ClusterPresenceOptions>;
  private readonly fetch: PresenceOptions['fetch'];
  private link: ClusterLink | null = null;
  private readonly subs: Subscription[] = [];
  private epoch = '';
  private seq = 0;
  private outbox: WireChange[] = [];
  private flushScheduled: NodeJS.Immediate | null = null;
  private answerScheduled: NodeJS.Immediate | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private readonly syncs = new Map<string, () => void>();
  private warnedSameId = false;
  /** Start of the current one-second window of served transfers, and how many it served. */
  private serveWindow = { start: -Infinity, served: 0 };
  private readonly counters = {
    deltasPublished: 0,
    received: 0,
    dropped: 0,
    publishFailed: 0,
    syncsServed: 0,
    syncsRefused: 0,
    syncsFailed: 0,
    getsServed: 0,
  };

  constructor(
    pubsub: PubSub,
    options: PresenceOptions = {},
    private readonly clock: Clock = monotonicClock,
  ) {
    const { cluster, ...localOptions } = options;
    this.settings = clusterPresenceOptions(cluster);
    this.fetch = options.fetch;
    this.local = new LocalPresence(pubsub, localOptions);
    if (this.local.node.length === 0 || this.local.node.length > MAX_ID_LENGTH)
      throw new InvalidArgumentError(
        `nodeId must be 1 to ${MAX_ID_LENGTH} characters (it names the node in presence replication)`,
      );
    this.stateEvent = this.local.stateEvent;
    this.diffEvent = this.local.diffEvent;
    this.node = this.local.node;
    this.replicas = new ReplicaStore(this.clock, this.settings, {
      diff: (topic, joins, leaves) => this.local.broadcastDiffOf(topic, joins, leaves),
      requestSync: (node) => this.requestSync(node),
    });
    this.local.onLocalChange((change) => this.queue(change));
  }

  // --- Presence -------------------------------------------------------------------------------

  track(channel: Channel, key: string, meta?: PresenceMeta, topic?: string): string {
    return this.local.track(channel, key, meta, topic);
  }

  update(
    channel: Channel,
    key: string,
    meta: PresenceMeta | ((current: PresenceMeta) => PresenceMeta),
    topic?: string,
  ): string {
    return this.local.update(channel, key, meta, topic);
  }

  untrack(channel: Channel, key: string, topic?: string): boolean {
    return this.local.untrack(channel, key, topic);
  }

  untrackAll(owner: object): void {
    this.local.untrackAll(owner);
  }

  /** The cluster-wide `presence_state` of a topic (this node's metas first), `fetch` applied. */
  list(topic: string): PresenceState {
    const state = this.local.listOwn(topic);
    this.replicas.mergeInto(topic, state, addMetas);
    return this.fetch ? this.fetch(topic, state) : state;
  }

  /** The metas of one key on every node, or null. */
  get(topic: string, key: string): { metas: PresenceMeta[] } | null {
    const own = this.local.get(topic, key);
    const remote = this.replicas.metasOf(topic, key);
    if (remote.length === 0) return own;
    return { metas: own ? [...own.metas, ...remote] : remote };
  }

  /** Entries on every node (this node's and the replicas). */
  get size(): number {
    return this.local.size + this.replicas.stats().entries;
  }

  /** Entries tracked on this node. */
  get localSize(): number {
    return this.local.size;
  }

  onLocalChange(listener: (change: PresenceChange) => void): () => void {
    return this.local.onLocalChange(listener);
  }

  stats(): ClusterPresenceStats {
    return { ...this.replicas.stats(), ...this.counters };
  }

  /** The other nodes known, with the seq applied (tests, health). */
  peers(): Map<string, { epoch: string; seq: number; entries: number }> {
    return this.replicas.nodeSeqs();
  }

  // --- ClusterComponent -----------------------------------------------------------------------

  start(link: ClusterLink): void {
    this.link = link;
    // A new epoch per start: the others tell our restart from a gap in what they saw.
    this.epoch = randomUUID();
    this.seq = 0;
    // Changes made before the cluster existed are in the state others will fetch.
    this.outbox = [];
    const max = this.settings.maxMessageBytes;
    const { subjects, nc } = link;
    this.subs.push(
      nc.subscribe(subjects.presenceDelta, {
        callback: (err, msg) => {
          if (err) return;
          this.counters.received++;
          const decoded = decodeDelta(msg.data, max);
          if (!decoded.ok) return this.drop(msg, decoded.why);
          if (decoded.value.node === this.node) return;
          this.replicas.delta(decoded.value);
        },
      }),
      nc.subscribe(subjects.presenceHeartbeat, {
        callback: (err, msg) => {
          if (err) return;
          this.counters.received++;
          const decoded = decodeHeartbeat(msg.data, max);
          if (!decoded.ok) return this.drop(msg, decoded.why);
          this.receiveHeartbeat(decoded.value);
        },
      }),
      nc.subscribe(subjects.presenceSync(topicToken(this.node)), {
        callback: (err, msg) => {
          if (!err) this.serveSync(msg);
        },
      }),
      nc.subscribe(subjects.presenceGet, {
        queue: QUEUE_GROUP,
        callback: (err, msg) => {
          if (!err) this.serveGet(msg);
        },
      }),
    );
    this.publishHeartbeat({ hello: true });
    this.heartbeatTimer = setInterval(() => this.publishHeartbeat(), this.settings.heartbeatMs);
    this.heartbeatTimer.unref();
    // Checked several times per heartbeat so a silent node goes within downAfterMs + a quarter beat.
    this.expiryTimer = setInterval(
      () => this.replicas.expire(),
      Math.max(10, Math.floor(this.settings.heartbeatMs / 4)),
    );
    this.expiryTimer.unref();
  }

  reconnected(): void {
    // Deltas may have been lost both ways: say hello (peers answer with heartbeats, and re-sync
    // us on a gap) and re-sync every peer we still know.
    this.publishHeartbeat({ hello: true });
    this.replicas.resyncAll();
  }

  /** Goodbye: the others drop this node's entries at once. */
  stop(): void {
    const link = this.link;
    if (!link) return;
    this.flush();
    this.publishHeartbeat({ bye: true });
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    if (this.answerScheduled) clearImmediate(this.answerScheduled);
    this.heartbeatTimer = this.expiryTimer = null;
    this.flushScheduled = this.answerScheduled = null;
    for (const sub of this.subs.splice(0)) sub.unsubscribe();
    for (const cancel of [...this.syncs.values()]) cancel();
    this.link = null;
    this.replicas.clear();
  }

  // --- this node's side -------------------------------------------------------------------------

  private queue(change: PresenceChange): void {
    if (!this.link) return;
    this.outbox.push(toWire(change));
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = null;
      this.flush();
    });
  }

  /** Publishes the queued changes as deltas, each with the next seq. */
  private flush(): void {
    const link = this.link;
    if (!link || this.outbox.length === 0) return;
    const changes = this.outbox;
    this.outbox = [];
    const { batches, tooLarge } = splitBySize(
      changes,
      MAX_CHANGES_PER_DELTA,
      this.payloadBudget(link),
    );
    if (tooLarge.length > 0) {
      this.counters.publishFailed += tooLarge.length;
      link.logger.warn(
        { count: tooLarge.length },
        'presence changes over max_payload are not replicated (kept on this node)',
      );
    }
    for (const batch of batches) {
      this.seq++;
      const body = encodeJson({
        node: this.node,
        epoch: this.epoch,
        seq: this.seq,
        changes: batch,
      });
      try {
        link.nc.publish(link.subjects.presenceDelta, body);
        this.counters.deltasPublished++;
      } catch (err) {
        // The others see the seq gap at our next heartbeat and fetch our state.
        this.counters.publishFailed++;
        link.logger.warn({ err }, 'presence delta not published');
      }
    }
  }

  private publishHeartbeat(flags: { hello?: true; bye?: true } = {}): void {
    const link = this.link;
    if (!link) return;
    this.flush();
    const message: HeartbeatMessage = {
      node: this.node,
      epoch: this.epoch,
      seq: this.seq,
      ...flags,
    };
    try {
      link.nc.publish(link.subjects.presenceHeartbeat, encodeJson(message));
    } catch (err) {
      link.logger.warn({ err }, 'presence heartbeat not published');
    }
  }

  private receiveHeartbeat(message: HeartbeatMessage): void {
    if (message.node === this.node) {
      if (message.epoch !== this.epoch && !this.warnedSameId) {
        this.warnedSameId = true;
        this.link?.logger.error(
          { node: this.node },
          'another gateway uses this node id: presence replication between them is broken',
        );
      }
      return;
    }
    const known = this.replicas.knows(message.node);
    this.replicas.heartbeat(message);
    // A node that just arrived learns of us at once instead of at our next beat.
    if ((message.hello || !known) && !message.bye) {
      this.answerScheduled ??= setImmediate(() => {
        this.answerScheduled = null;
        this.publishHeartbeat();
      });
    }
  }

  /** Our state, chunked, all at the current seq (pending changes are published first). */
  private serveSync(msg: Msg): void {
    const link = this.link;
    if (!link || !msg.reply) return;
    // Each transfer sends the whole state: bound what requests (any NATS client's) can cost.
    const now = this.clock();
    if (now - this.serveWindow.start >= 1000) this.serveWindow = { start: now, served: 0 };
    if (this.serveWindow.served >= this.settings.maxSyncServesPerSecond) {
      this.counters.syncsRefused++;
      return;
    }
    this.serveWindow.served++;
    this.flush();
    const head = { node: this.node, epoch: this.epoch, seq: this.seq };
    sendNodeState(
      link,
      msg.reply,
      head,
      this.local.entries(),
      this.payloadBudget(link),
      this.counters,
    );
  }

  /** Asks `node` for its state (presence-transfer.ts); the outcome goes to the replicas. */
  private requestSync(node: string): void {
    const link = this.link;
    if (!link) return this.replicas.syncFailed(node);
    requestNodeState(link, this.node, node, this.settings, this.syncs, {
      received: () => {
        this.counters.received++;
      },
      dropped: (msg, why) => this.drop(msg, why),
      done: (snapshot) => this.replicas.syncDone(node, snapshot),
      failed: (why) => {
        this.counters.syncsFailed++;
        link.logger.debug({ peer: node, why }, 'presence state transfer failed; retried');
        this.replicas.syncFailed(node);
      },
    });
  }

  /** `<p>.presence.get`: the cluster-wide presence_state of a topic, for workers and tools. */
  private serveGet(msg: Msg): void {
    const link = this.link;
    if (!link || !msg.reply) return;
    this.counters.getsServed++;
    answerPresenceGet(msg, link, (topic) => this.list(topic), this.settings.maxMessageBytes);
  }

  private payloadBudget(link: ClusterLink): number {
    const max = Math.min(link.nc.info?.max_payload ?? 1024 * 1024, this.settings.maxMessageBytes);
    return Math.max(1024, max - ENVELOPE_BYTES);
  }

  private drop(msg: Msg, why: string): void {
    this.counters.dropped++;
    this.link?.logger.warn(
      { subject: msg.subject, bytes: msg.data.length, why },
      'presence message from NATS dropped',
    );
  }
}

function addMetas(state: PresenceState, key: string, metas: PresenceMeta[]): void {
  const existing = state[key];
  if (existing) existing.metas.push(...metas);
  else setKey(state, key, { metas });
}

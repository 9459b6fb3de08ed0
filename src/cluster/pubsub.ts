import { headers as natsHeaders, type Msg, type Subscription } from '@nats-io/nats-core';
import { LocalPubSub, type PubSub, type Subscriber } from '../channel/pubsub.js';
import { OutOfRangeError } from '../errors.js';
import { H } from '../nats/headers.js';
import { readJsonObject } from '../nats/json-object.js';
import { isWellFormedTopic, topicToken } from '../nats/topic-token.js';
import type { ClusterComponent, ClusterLink } from './link.js';
import { ThrottledWarning, WARNING_INTERVAL_MS } from './throttled-warning.js';

const encoder = new TextEncoder();

/** Options of the cluster PubSub (the gateway's `cluster` option). Defaults: CLUSTER_PUBSUB_DEFAULTS. */
export interface ClusterPubSubOptions {
  /**
   * Largest broadcast body sent to or accepted from NATS, in bytes. Larger ones from NATS are
   * dropped and counted (`droppedTooLarge`); larger ones made here reach local subscribers only
   * (`publishFailed`). Default 1 MiB (the default `max_payload` of nats-server).
   */
  maxBroadcastBytes?: number;
  /**
   * Longest topic subject token (`topicToken(topic)`, ASCII) that travels over NATS. A topic with
   * a longer token stays local to each gateway: its broadcasts are counted (`localOnly`) and a
   * warning is logged; nothing is subscribed for it. Default 1024.
   */
  maxTopicBytes?: number;
  /** Quiet period between two warnings of one kind (drops, local-only topics). Default 10 s. */
  warningIntervalMs?: number;
}

/** Defaults of `ClusterPubSubOptions` (the gateway's `cluster` option). */
export const CLUSTER_PUBSUB_DEFAULTS = {
  maxBroadcastBytes: 1024 * 1024,
  maxTopicBytes: 1024,
  warningIntervalMs: WARNING_INTERVAL_MS,
} as const;

/** Counters of the cluster PubSub (health, metrics). Every counter only grows, except `topics`. */
export interface ClusterPubSubStats {
  /** Broadcasts this node published for other nodes. */
  published: number;
  /** Messages received from NATS on topic subjects (other gateways, workers, any NATS client). */
  received: number;
  /** Received broadcasts handed to local subscribers. */
  delivered: number;
  /** Received messages dropped, all reasons (the sum of the two below). */
  dropped: number;
  /** Received messages over `maxBroadcastBytes`. */
  droppedTooLarge: number;
  /** Received messages that are not a broadcast envelope (not JSON, no event, empty binary event). */
  droppedMalformed: number;
  /** Broadcasts made here that reached local subscribers only: too large, or NATS refused them. */
  publishFailed: number;
  /** Broadcasts made here to a topic whose token is over `maxTopicBytes` or with a lone surrogate (kept local). */
  localOnly: number;
  /** Topics this node subscribes to on NATS right now (those with local subscribers). */
  topics: number;
}

type Counters = Omit<ClusterPubSubStats, 'topics'>;

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0)
    throw new OutOfRangeError(`cluster.${name} must be a positive integer, got ${String(value)}`);
  return value;
}

/**
 * Topic PubSub across gateways (protocol/nats.md §9). Local subscribers are served exactly as by
 * `LocalPubSub` (synchronously, one `Broadcast` per message so each serializer encodes it once);
 * with a cluster link, a node subscribes to `<p>.topic.<token>` only while it has local
 * subscribers of that topic, and every broadcast made here is also published there once. The
 * connection is `noEcho`, so a node never gets its own broadcasts back, and nodes without
 * subscribers of a topic receive nothing for it. Order: one publisher's broadcasts to one topic
 * arrive in publish order (one NATS connection, one subject).
 *
 * Everything from NATS is untrusted: oversized or malformed messages are dropped and counted,
 * with a rate-limited warning; nothing received can throw out of a NATS callback.
 */
export class ClusterPubSub implements PubSub, ClusterComponent {
  private readonly local = new LocalPubSub();
  private link: ClusterLink | null = null;
  /** Topic → its NATS subscription, while the topic has local subscribers and a link is up. */
  private readonly remote = new Map<string, Subscription>();
  private readonly maxBytes: number;
  private readonly maxTopicBytes: number;
  private readonly dropWarning: ThrottledWarning;
  private readonly publishWarning: ThrottledWarning;
  private readonly topicWarning: ThrottledWarning;
  private readonly counters: Counters = {
    published: 0,
    received: 0,
    delivered: 0,
    dropped: 0,
    droppedTooLarge: 0,
    droppedMalformed: 0,
    publishFailed: 0,
    localOnly: 0,
  };

  constructor(options: ClusterPubSubOptions = {}) {
    const o = { ...CLUSTER_PUBSUB_DEFAULTS, ...options };
    this.maxBytes = positiveInteger('maxBroadcastBytes', o.maxBroadcastBytes);
    this.maxTopicBytes = positiveInteger('maxTopicBytes', o.maxTopicBytes);
    const interval = o.warningIntervalMs;
    if (!(interval >= 0))
      throw new OutOfRangeError(`cluster.warningIntervalMs must be >= 0, got ${String(interval)}`);
    this.dropWarning = new ThrottledWarning(interval);
    this.publishWarning = new ThrottledWarning(interval);
    this.topicWarning = new ThrottledWarning(interval);
  }

  subscribe(topic: string, subscriber: Subscriber): void {
    this.local.subscribe(topic, subscriber);
    if (this.link && !this.remote.has(topic)) this.listen(this.link, topic);
  }

  unsubscribe(topic: string, subscriber: Subscriber): void {
    this.local.unsubscribe(topic, subscriber);
    if (this.local.subscriberCount(topic) > 0) return;
    const sub = this.remote.get(topic);
    if (!sub) return;
    this.remote.delete(topic);
    sub.unsubscribe();
  }

  broadcast(topic: string, event: string, payload: unknown, from: Subscriber | null = null): void {
    this.local.broadcast(topic, event, payload, from);
    if (this.link) this.publish(this.link, topic, event, payload);
  }

  broadcastLocal(
    topic: string,
    event: string,
    payload: unknown,
    from: Subscriber | null = null,
  ): void {
    this.local.broadcast(topic, event, payload, from);
  }

  subscriberCount(topic?: string): number {
    return this.local.subscriberCount(topic);
  }

  topicCount(): number {
    return this.local.topicCount();
  }

  topicNames(): IterableIterator<string> {
    return this.local.topicNames();
  }

  /** A snapshot of the counters (protocol/nats.md §9.6). */
  stats(): ClusterPubSubStats {
    return { ...this.counters, topics: this.remote.size };
  }

  /** Whether this node is subscribed on NATS for `topic` (tests, health). */
  listening(topic: string): boolean {
    return this.remote.has(topic);
  }

  start(link: ClusterLink): void {
    this.link = link;
    for (const topic of this.local.topicNames()) this.listen(link, topic);
  }

  stop(): void {
    for (const sub of this.remote.values()) sub.unsubscribe();
    this.remote.clear();
    this.link = null;
  }

  /** The topic's subject, or null when its token is too long to travel (kept local). */
  private subjectOf(link: ClusterLink, topic: string): string | null {
    const token = topicToken(topic);
    if (token.length <= this.maxTopicBytes && isWellFormedTopic(topic))
      return link.subjects.topic(token);
    this.topicWarning.warn(
      link.logger,
      { topicBytes: token.length, maxTopicBytes: this.maxTopicBytes, topic: topic.slice(0, 64) },
      'topic too long for NATS (cluster.maxTopicBytes) or not valid Unicode: its broadcasts stay on this gateway',
    );
    return null;
  }

  private listen(link: ClusterLink, topic: string): void {
    const subject = this.subjectOf(link, topic);
    if (subject === null) return;
    const sub = link.nc.subscribe(subject, {
      callback: (err, msg) => this.receive(topic, err, msg),
    });
    this.remote.set(topic, sub);
  }

  private publish(link: ClusterLink, topic: string, event: string, payload: unknown): void {
    // Topics with local subscribers (the usual broadcast) have their subject at hand already.
    const subject = this.remote.get(topic)?.getSubject() ?? this.subjectOf(link, topic);
    if (subject === null) {
      this.counters.localOnly++;
      return;
    }
    try {
      let body: Uint8Array;
      let options: { headers: ReturnType<typeof natsHeaders> } | undefined;
      if (payload instanceof Uint8Array) {
        const h = natsHeaders();
        h.set(H.broadcastEvent, event);
        body = payload;
        options = { headers: h };
      } else {
        // Stringified once for every node: each receiver parses it once and encodes per serializer.
        body = encoder.encode(JSON.stringify({ event, payload }));
      }
      if (body.length > this.maxBytes) {
        this.publishFailure(link, topic, event, `${body.length} bytes > cluster.maxBroadcastBytes`);
        return;
      }
      link.nc.publish(subject, body, options);
      this.counters.published++;
    } catch (err) {
      // Not JSON-serialisable (a cycle, a BigInt), over the server's max_payload, or closed.
      this.publishFailure(link, topic, event, err instanceof Error ? err.message : String(err));
    }
  }

  private publishFailure(link: ClusterLink, topic: string, event: string, why: string): void {
    this.counters.publishFailed++;
    this.publishWarning.warn(
      link.logger,
      { topic: topic.slice(0, 64), event: event.slice(0, 64), why },
      'broadcast reached this gateway only (not published on NATS)',
    );
  }

  private receive(topic: string, err: Error | null, msg: Msg): void {
    if (err) {
      // A permissions violation or a closed subscription: nothing to deliver.
      this.link?.logger.warn(
        { err: err.message, topic: topic.slice(0, 64) },
        'topic subscription error',
      );
      return;
    }
    this.counters.received++;
    if (msg.data.length > this.maxBytes) {
      this.counters.droppedTooLarge++;
      this.drop(msg, 'too large');
      return;
    }
    const binaryEvent = msg.headers?.get(H.broadcastEvent);
    let event: string;
    let payload: unknown;
    if (binaryEvent !== undefined && binaryEvent !== '') {
      event = binaryEvent;
      payload = msg.data;
    } else {
      const envelope = parseEnvelope(msg.data);
      if (envelope === null) {
        this.counters.droppedMalformed++;
        this.drop(msg, 'not a broadcast envelope {"event": string, "payload": any}');
        return;
      }
      event = envelope.event;
      payload = envelope.payload;
    }
    try {
      this.local.broadcast(topic, event, payload, null);
      this.counters.delivered++;
    } catch (deliverErr) {
      // A subscriber that throws is a defect of ours; it must not break the NATS callback.
      this.link?.logger.error(
        { err: deliverErr, topic: topic.slice(0, 64) },
        'broadcast delivery failed',
      );
    }
  }

  private drop(msg: Msg, why: string): void {
    this.counters.dropped++;
    this.dropWarning.warn(
      this.link?.logger,
      {
        subject: msg.subject.slice(0, 128),
        bytes: msg.data.length,
        why,
        dropped: this.counters.dropped,
      },
      'broadcast from NATS dropped',
    );
  }
}

/** `{"event": non-empty string, "payload"?: any}` (payload defaults to `{}`), or null. */
function parseEnvelope(data: Uint8Array): { event: string; payload: unknown } | null {
  const body = readJsonObject(data);
  if (body === null) return null;
  const { event, payload } = body;
  if (typeof event !== 'string' || event.length === 0) return null;
  return { event, payload: payload === undefined ? {} : payload };
}

import { headers as natsHeaders, type Msg, type Subscription } from '@nats-io/nats-core';
import { LocalPubSub, type PubSub, type Subscriber } from '../channel/pubsub.js';
import { H } from '../nats/headers.js';
import { topicToken } from '../nats/topic-token.js';
import type { ClusterComponent, ClusterLink } from './link.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of the cluster PubSub (the `cluster` options of the gateway). */
export interface ClusterPubSubOptions {
  /** Largest broadcast accepted from NATS, in bytes; larger ones are dropped and counted. Default 1 MiB. */
  maxBroadcastBytes?: number;
}

export const CLUSTER_PUBSUB_DEFAULTS = { maxBroadcastBytes: 1024 * 1024 } as const;

/** Counters of the cluster PubSub (health, metrics). */
export interface ClusterPubSubStats {
  /** Broadcasts this node published for other nodes. */
  published: number;
  /** Broadcasts received from NATS (other gateways, workers, any NATS client). */
  received: number;
  /** Broadcasts from NATS dropped: not a valid envelope, too large, or a topic token not ours. */
  dropped: number;
  /** Broadcasts that reached local subscribers but could not be published (e.g. over max_payload). */
  publishFailed: number;
  /** Topics this node subscribes to on NATS (those with local subscribers). */
  topics: number;
}

/**
 * Topic PubSub across gateways (protocol/nats.md §9). Local subscribers are served exactly as by
 * `LocalPubSub` (synchronously, fastlane); with a cluster link, a node subscribes to
 * `<p>.topic.<token>` while it has local subscribers of that topic, and every broadcast made here
 * is also published there once. The connection is `noEcho`, so a node never gets its own
 * broadcasts back; nodes without subscribers of a topic receive nothing for it.
 */
export class ClusterPubSub implements PubSub, ClusterComponent {
  private readonly local = new LocalPubSub();
  private link: ClusterLink | null = null;
  private readonly remote = new Map<string, Subscription>();
  private readonly maxBytes: number;
  readonly counters: Omit<ClusterPubSubStats, 'topics'> = {
    published: 0,
    received: 0,
    dropped: 0,
    publishFailed: 0,
  };

  constructor(options: ClusterPubSubOptions = {}) {
    this.maxBytes = options.maxBroadcastBytes ?? CLUSTER_PUBSUB_DEFAULTS.maxBroadcastBytes;
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

  stats(): ClusterPubSubStats {
    return { ...this.counters, topics: this.remote.size };
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

  private listen(link: ClusterLink, topic: string): void {
    const sub = link.nc.subscribe(link.subjects.topic(topicToken(topic)), {
      callback: (err, msg) => {
        if (!err) this.receive(topic, msg);
      },
    });
    this.remote.set(topic, sub);
  }

  private publish(link: ClusterLink, topic: string, event: string, payload: unknown): void {
    const subject = link.subjects.topic(topicToken(topic));
    try {
      if (payload instanceof Uint8Array) {
        const h = natsHeaders();
        h.set(H.broadcastEvent, event);
        link.nc.publish(subject, payload, { headers: h });
      } else {
        link.nc.publish(subject, encoder.encode(JSON.stringify({ event, payload })));
      }
      this.counters.published++;
    } catch (err) {
      this.counters.publishFailed++;
      link.logger.warn({ err, topic, event }, 'broadcast reached local subscribers only');
    }
  }

  private receive(topic: string, msg: Msg): void {
    this.counters.received++;
    if (msg.data.length > this.maxBytes) return this.drop(msg, 'too large');
    const binaryEvent = msg.headers?.get(H.broadcastEvent);
    if (binaryEvent) {
      this.local.broadcast(topic, binaryEvent, msg.data, null);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(decoder.decode(msg.data));
    } catch {
      return this.drop(msg, 'not JSON');
    }
    if (typeof body !== 'object' || body === null) return this.drop(msg, 'not an object');
    const { event, payload } = body as { event?: unknown; payload?: unknown };
    if (typeof event !== 'string' || event.length === 0) return this.drop(msg, 'no event');
    this.local.broadcast(topic, event, payload === undefined ? {} : payload, null);
  }

  private drop(msg: Msg, why: string): void {
    this.counters.dropped++;
    this.link?.logger.warn(
      { subject: msg.subject, bytes: msg.data.length, why },
      'broadcast from NATS dropped',
    );
  }
}

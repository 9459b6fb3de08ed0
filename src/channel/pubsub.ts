import type { Serializer, EncodedFrame } from '../wire/serializer.js';

/** A local receiver of broadcasts: a joined channel, or an internal listener. */
export interface Subscriber {
  deliver(broadcast: Broadcast): void;
}

/**
 * One broadcast, encoded at most once per serializer however many subscribers it reaches
 * (Phoenix's fastlane). A frame that cannot be encoded is remembered as its error.
 */
export class Broadcast {
  private v1: EncodedFrame | Error | undefined;
  private v2: EncodedFrame | Error | undefined;
  private v1Bytes: Buffer | undefined;
  private v2Bytes: Buffer | undefined;

  constructor(
    readonly topic: string,
    readonly event: string,
    readonly payload: unknown,
    /** The subscriber that must not receive it (broadcastFrom), or null. */
    readonly from: Subscriber | null,
  ) {}

  /** The frame for `serializer`; throws the FrameEncodeError if it cannot be encoded. */
  frame(serializer: Serializer): EncodedFrame {
    let cached = serializer.vsn === '2.0.0' ? this.v2 : this.v1;
    if (cached === undefined) {
      try {
        cached = serializer.encodeBroadcast(this.topic, this.event, this.payload);
      } catch (err) {
        cached = err as Error;
      }
      if (serializer.vsn === '2.0.0') this.v2 = cached;
      else this.v1 = cached;
    }
    if (cached instanceof Error) throw cached;
    return cached;
  }

  /** UTF-8 bytes of a text frame, shared by every WebSocket that receives it. */
  textBytes(serializer: Serializer, text: string): Buffer {
    if (serializer.vsn === '2.0.0') return (this.v2Bytes ??= Buffer.from(text));
    return (this.v1Bytes ??= Buffer.from(text));
  }
}

/**
 * Topic fan-out. The local implementation delivers synchronously, so a broadcast a handler
 * makes reaches its own socket before the handler's reply. A cluster implementation (NATS)
 * keeps the same interface: deliver locally at once, publish for the other nodes.
 */
export interface PubSub {
  subscribe(topic: string, subscriber: Subscriber): void;
  unsubscribe(topic: string, subscriber: Subscriber): void;
  broadcast(topic: string, event: string, payload: unknown, from?: Subscriber | null): void;
  /**
   * Delivers to this node's subscribers only, never to other nodes: for messages every node
   * produces itself (each node's Presence computes its own `presence_diff`).
   */
  broadcastLocal(topic: string, event: string, payload: unknown, from?: Subscriber | null): void;
  /** Local subscribers of `topic`, or of all topics when omitted. */
  subscriberCount(topic?: string): number;
  topicCount(): number;
  /** Topics with at least one local subscriber (the dashboard's top topics). */
  topicNames(): IterableIterator<string>;
}

export class LocalPubSub implements PubSub {
  private readonly topics = new Map<string, Set<Subscriber>>();
  private subscriptions = 0;

  subscribe(topic: string, subscriber: Subscriber): void {
    let set = this.topics.get(topic);
    if (!set) {
      set = new Set();
      this.topics.set(topic, set);
    }
    if (!set.has(subscriber)) {
      set.add(subscriber);
      this.subscriptions++;
    }
  }

  unsubscribe(topic: string, subscriber: Subscriber): void {
    const set = this.topics.get(topic);
    if (!set?.delete(subscriber)) return;
    this.subscriptions--;
    if (set.size === 0) this.topics.delete(topic);
  }

  broadcast(topic: string, event: string, payload: unknown, from: Subscriber | null = null): void {
    const set = this.topics.get(topic);
    if (!set) return;
    const message = new Broadcast(topic, event, payload, from);
    for (const subscriber of set) {
      if (subscriber !== from) subscriber.deliver(message);
    }
  }

  broadcastLocal(
    topic: string,
    event: string,
    payload: unknown,
    from: Subscriber | null = null,
  ): void {
    this.broadcast(topic, event, payload, from);
  }

  /** Topics with at least one local subscriber. */
  topicNames(): IterableIterator<string> {
    return this.topics.keys();
  }

  subscriberCount(topic?: string): number {
    if (topic === undefined) return this.subscriptions;
    return this.topics.get(topic)?.size ?? 0;
  }

  topicCount(): number {
    return this.topics.size;
  }
}

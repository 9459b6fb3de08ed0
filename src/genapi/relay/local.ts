import type { Channel } from '../../channel/types.js';
import type { Broadcast, PubSub, Subscriber } from '../../channel/pubsub.js';

/** Events on a group's internal topic (protocol/relay.md §4). */
export const DELIVERY = {
  /** `{to: [user_id], push: Response}`: push `push` to the local channels of those users. */
  relay: 'relay',
  /** `{user_id}`: that user left; forget their channels. */
  left: 'left',
  /** `{}`: the group was deleted; forget it. */
  gone: 'gone',
} as const;

/** Counters of what this node received on group topics. */
export interface DeliveryCounters {
  /** Relay messages pushed to local channels. */
  pushed: number;
  /** Deliveries dropped: not a valid relay delivery (from NATS: untrusted). */
  dropped: number;
}

interface Registration {
  readonly channels: Set<Channel>;
  /** Channels whose end makes the user leave (joins; the creator's is not monitored). */
  monitored: number;
}

/**
 * This node's side of the groups it has members in (owned here or elsewhere): the channels of
 * local users, and one internal subscriber on the group's topic that pushes relay messages to
 * them. The owner decides who receives; this only delivers.
 */
class LocalGroup implements Subscriber {
  readonly users = new Map<string, Registration>();

  constructor(
    readonly key: string,
    readonly topic: string,
    private readonly members: LocalMembers,
  ) {}

  deliver(broadcast: Broadcast): void {
    this.members.receive(this, broadcast.event, broadcast.payload);
  }
}

export class LocalMembers {
  private readonly groups = new Map<string, LocalGroup>();
  readonly counters: DeliveryCounters = { pushed: 0, dropped: 0 };

  constructor(
    private readonly pubsub: PubSub,
    /** The gen_api event relay messages are pushed on. */
    private readonly event: string,
    private readonly maxRecipients: number,
    /** The last monitored channel of a user in a group ended on this node. */
    private readonly onChannelsEnded: (key: string, userId: string) => void,
  ) {}

  /** Groups with local channels (each holds one PubSub subscription). */
  get size(): number {
    return this.groups.size;
  }

  /**
   * Registers `channel` of `userId` for the group's relay messages. A monitored registration
   * reports its user when their last monitored channel here ends.
   */
  register(key: string, topic: string, userId: string, channel: Channel, monitored: boolean): void {
    let group = this.groups.get(key);
    if (group && group.topic !== topic) {
      // A group of the same id was deleted and created again: the old one is gone.
      this.forget(key);
      group = undefined;
    }
    if (channel.signal.aborted) {
      if (monitored) this.onChannelsEnded(key, userId);
      return;
    }
    if (!group) {
      group = new LocalGroup(key, topic, this);
      this.groups.set(key, group);
      this.pubsub.subscribe(topic, group);
    }
    let registration = group.users.get(userId);
    if (!registration) {
      registration = { channels: new Set(), monitored: 0 };
      group.users.set(userId, registration);
    }
    if (registration.channels.has(channel)) return;
    registration.channels.add(channel);
    if (monitored) registration.monitored++;
    const current = registration;
    const owner = group;
    channel.signal.addEventListener(
      'abort',
      () => {
        // Forgotten meanwhile (left, deleted): nothing to report.
        if (this.groups.get(key) !== owner || owner.users.get(userId) !== current) return;
        if (!current.channels.delete(channel)) return;
        if (current.channels.size === 0) this.forgetUser(owner, userId);
        if (monitored && --current.monitored === 0) this.onChannelsEnded(key, userId);
      },
      { once: true },
    );
  }

  /** Broadcasts a delivery for the group (here at once, on other nodes through the cluster PubSub). */
  send(topic: string, event: string, payload: object): void {
    this.pubsub.broadcast(topic, event, payload, null);
  }

  /** Forgets every local channel of the group (deleted, or its owner is gone). */
  forget(key: string): void {
    const group = this.groups.get(key);
    if (!group) return;
    this.groups.delete(key);
    this.pubsub.unsubscribe(group.topic, group);
  }

  forgetUserIn(key: string, userId: string): void {
    const group = this.groups.get(key);
    if (group) this.forgetUser(group, userId);
  }

  private forgetUser(group: LocalGroup, userId: string): void {
    group.users.delete(userId);
    if (group.users.size === 0) this.forget(group.key);
  }

  /** A delivery on a group topic; from NATS it is untrusted: checked, dropped and counted if bad. */
  receive(group: LocalGroup, event: string, payload: unknown): void {
    if (this.groups.get(group.key) !== group) return;
    if (payload === null || typeof payload !== 'object') return this.drop();
    const body = payload as Record<string, unknown>;
    if (event === DELIVERY.relay) {
      const { to, push } = body;
      if (!Array.isArray(to) || to.length > this.maxRecipients) return this.drop();
      if (push === null || typeof push !== 'object') return this.drop();
      for (const userId of to) {
        if (typeof userId !== 'string') continue;
        const registration = group.users.get(userId);
        if (!registration) continue;
        for (const channel of registration.channels) {
          channel.push(this.event, push);
          this.counters.pushed++;
        }
      }
    } else if (event === DELIVERY.left) {
      if (typeof body.user_id !== 'string') return this.drop();
      this.forgetUser(group, body.user_id);
    } else if (event === DELIVERY.gone) {
      this.forget(group.key);
    } else {
      this.drop();
    }
  }

  private drop(): void {
    this.counters.dropped++;
  }
}

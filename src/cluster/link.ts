import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from '../log/logger.js';
import type { Subjects } from '../nats/subjects.js';

/**
 * What a cluster component gets once its gateway is on NATS: the gateway's own cluster
 * connection (opened with `noEcho`, so a node never receives what it published itself), the
 * subjects, and this node's id.
 */
export interface ClusterLink {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  /** This gateway's node id (`Gateway.nodeId`). */
  readonly nodeId: string;
  readonly logger: Logger;
  /** Whether the connection is up right now (publishes while down are buffered by the client). */
  readonly connected: () => boolean;
}

/**
 * A part of the gateway that spans nodes (PubSub, Presence, disconnects, relay groups). The
 * cluster starts every component once connected, tells them about outages, and stops them
 * before the connection drains, in reverse order of registration.
 */
export interface ClusterComponent {
  /** Subscribe and start timers; the link stays valid until `stop`. */
  start(link: ClusterLink): void | Promise<void>;
  /** The connection dropped: NATS traffic is paused until `reconnected`. */
  disconnected?(): void;
  /** The connection is back (subscriptions are restored by the client): resynchronise. */
  reconnected?(): void;
  /** Graceful stop: tell the other nodes (e.g. Presence's goodbye), then unsubscribe. */
  stop(): void | Promise<void>;
}

import type { PresenceReplicaStats } from './presence-replica.js';

/** Counters of cluster presence (this node's side and its replicas). */
export interface ClusterPresenceStats extends PresenceReplicaStats {
  /** Delta messages this node published. */
  deltasPublished: number;
  /** Replication messages received (deltas, heartbeats, transfer chunks). */
  received: number;
  /** Received messages dropped as malformed or too large. */
  dropped: number;
  /** Own changes that could not be published (one entry over max_payload, or the client refused). */
  publishFailed: number;
  /** State transfers this node served. */
  syncsServed: number;
  /** State transfer requests ignored over `maxSyncServesPerSecond`. */
  syncsRefused: number;
  /** State transfers that failed (timeout, no responder, bad or inconsistent chunks). */
  syncsFailed: number;
  /** `<p>.presence.get` requests answered (errors included). */
  getsServed: number;
}

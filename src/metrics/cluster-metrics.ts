/**
 * The cluster family of the gateway's metrics: the cluster link, broadcasts across gateways,
 * Presence replication and cluster-wide disconnects, read from `gateway.clusterHealth()` when
 * scraped (absent when the gateway runs alone), and this gateway's own Presence entries (always).
 */
import type { Registry } from 'prom-client';
import { ClusterPresence } from '../cluster/presence.js';
import type { Gateway } from '../gateway.js';
import { readCounter, readGauge } from './read-at-scrape.js';

/** Registers the `<p>cluster_*` and `<p>presence_*` metrics. */
export function registerClusterMetrics(
  registry: Registry,
  p: string,
  gateway: Pick<Gateway, 'clusterHealth' | 'presence'>,
): void {
  readGauge(
    registry,
    {
      name: `${p}presence_local_entries`,
      help: "Presence entries tracked on this gateway (its own clients'; other gateways' are presence_remote_entries).",
    },
    (set) => {
      const { presence } = gateway;
      // A gateway's Presence is a ClusterPresence (alone, it holds only its own entries).
      set({}, presence instanceof ClusterPresence ? presence.localSize : presence.size);
    },
  );
  readGauge(
    registry,
    {
      name: `${p}cluster_connected`,
      help: 'Whether the cluster connection is up (1) or not (0); absent when the gateway runs alone.',
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.connected ? 1 : 0);
    },
  );
  readCounter(
    registry,
    {
      name: `${p}cluster_broadcasts_total`,
      help: 'Broadcasts across gateways by event (published, received, delivered, dropped, publish_failed, local_only).',
      labelNames: ['event'],
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster === null) return;
      const s = cluster.pubsub;
      set({ event: 'published' }, s.published);
      set({ event: 'received' }, s.received);
      set({ event: 'delivered' }, s.delivered);
      set({ event: 'dropped' }, s.dropped);
      set({ event: 'publish_failed' }, s.publishFailed);
      set({ event: 'local_only' }, s.localOnly);
    },
  );
  readGauge(
    registry,
    { name: `${p}cluster_topics`, help: 'Topics this gateway subscribes to on NATS.' },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.pubsub.topics);
    },
  );
  readGauge(
    registry,
    {
      name: `${p}presence_nodes`,
      help: 'Other gateways whose Presence entries this one replicates.',
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.presence.nodes);
    },
  );
  readGauge(
    registry,
    { name: `${p}presence_remote_entries`, help: 'Presence entries of other gateways held here.' },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster !== null) set({}, cluster.presence.entries);
    },
  );
  readCounter(
    registry,
    {
      name: `${p}presence_replication_total`,
      help: 'Presence replication by event (deltas_published, received, dropped, publish_failed, syncs_requested, syncs_served, syncs_refused, syncs_failed, expired, departed, over_limit).',
      labelNames: ['event'],
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster === null) return;
      const s = cluster.presence;
      set({ event: 'deltas_published' }, s.deltasPublished);
      set({ event: 'received' }, s.received);
      set({ event: 'dropped' }, s.dropped);
      set({ event: 'publish_failed' }, s.publishFailed);
      set({ event: 'syncs_requested' }, s.syncsRequested);
      set({ event: 'syncs_served' }, s.syncsServed);
      set({ event: 'syncs_refused' }, s.syncsRefused);
      set({ event: 'syncs_failed' }, s.syncsFailed);
      set({ event: 'expired' }, s.expired);
      set({ event: 'departed' }, s.departed);
      set({ event: 'over_limit' }, s.overLimit);
    },
  );
  readCounter(
    registry,
    {
      name: `${p}cluster_disconnects_total`,
      help: 'Cluster-wide disconnects by event (published, received, closed, dropped).',
      labelNames: ['event'],
    },
    (set) => {
      const cluster = gateway.clusterHealth();
      if (cluster === null) return;
      const s = cluster.disconnects;
      set({ event: 'published' }, s.published);
      set({ event: 'received' }, s.received);
      set({ event: 'closed' }, s.closed);
      set({ event: 'dropped' }, s.dropped);
    },
  );
}

import type { Channel } from '../channel/types.js';

/** Metadata a client sees for one presence: the tracked meta plus `phx_ref` (and `phx_ref_prev`). */
export type PresenceMeta = Record<string, unknown>;

/** `{key: {metas: [...], ...fields from fetch}}`: the `presence_state` payload. */
export type PresenceState = Record<string, { metas: PresenceMeta[]; [field: string]: unknown }>;

/** The `presence_diff` payload: the entries that joined and left, keyed like `PresenceState`. */
export interface PresenceDiff {
  /** Entries that joined (or were updated: the new meta). */
  joins: PresenceState;
  /** Entries that left (or were updated: the old meta). */
  leaves: PresenceState;
}

/**
 * One change this node made to its own entries, in the order it made them. `meta` is the tracked
 * meta without `phx_ref`; `ref` is the entry's phx_ref, unique across nodes (phx-ref.ts), so a
 * replica can key remote entries by it.
 */
export type PresenceChange =
  | {
      readonly kind: 'join';
      readonly node: string;
      readonly topic: string;
      readonly key: string;
      readonly ref: string;
      readonly meta: PresenceMeta;
    }
  | {
      readonly kind: 'update';
      readonly node: string;
      readonly topic: string;
      readonly key: string;
      readonly ref: string;
      /** The ref the update replaced (the new meta's `phx_ref_prev`). */
      readonly prevRef: string;
      readonly meta: PresenceMeta;
      readonly prevMeta: PresenceMeta;
    }
  | {
      readonly kind: 'leave';
      readonly node: string;
      readonly topic: string;
      readonly key: string;
      readonly ref: string;
      readonly meta: PresenceMeta;
    };

/**
 * What the gateway, its sessions and channel code depend on for presence — Phoenix.Presence's
 * API. `LocalPresence` implements it for one node; `ClusterPresence` (src/cluster/presence.ts,
 * protocol/presence.md) implements it for every gateway on one NATS: it publishes this node's
 * `onLocalChange` stream, merges the other nodes' entries into `list`/`get` (and `size`), and
 * broadcasts their diffs locally.
 */
export interface Presence {
  /** The event of the `presence_state` push (default `presence_state`). */
  readonly stateEvent: string;
  /** The event of the `presence_diff` broadcast (default `presence_diff`). */
  readonly diffEvent: string;
  /** Tracks `key` with `meta` on the channel's topic (or `topic`). Returns the new phx_ref. */
  track(channel: Channel, key: string, meta?: PresenceMeta, topic?: string): string;
  /** Replaces the meta (or maps it); one diff with the new join and the old leave. Returns the new phx_ref. */
  update(
    channel: Channel,
    key: string,
    meta: PresenceMeta | ((current: PresenceMeta) => PresenceMeta),
    topic?: string,
  ): string;
  /** Untracks `key`; false when this channel did not track it there. */
  untrack(channel: Channel, key: string, topic?: string): boolean;
  /** Untracks everything `owner` (a channel) tracked; the session calls it when a channel ends. */
  untrackAll(owner: object): void;
  /** The `presence_state` payload for a topic. */
  list(topic: string): PresenceState;
  /** The metas of one key, or null. */
  get(topic: string, key: string): { metas: PresenceMeta[] } | null;
  /** Entries tracked (all topics). */
  readonly size: number;
  /**
   * Calls `listener` after each change to this node's own entries (tracks, updates, untracks,
   * channels ending), after its diff went out. Returns a function that unsubscribes.
   */
  onLocalChange(listener: (change: PresenceChange) => void): () => void;
}

import type { ClusterPresenceOptions } from '../presence/presence.js';
import { OutOfRangeError } from '../errors.js';

/** The defaults of `PresenceOptions.cluster` (protocol/presence.md §6 lists them too). */
export const CLUSTER_PRESENCE_DEFAULTS: Required<ClusterPresenceOptions> = {
  heartbeatMs: 1000,
  downAfterMs: 3000,
  syncTimeoutMs: 2000,
  maxEntriesPerNode: 100_000,
  maxNodes: 1024,
  maxMessageBytes: 1024 * 1024,
  maxPendingDeltas: 1000,
  maxSyncServesPerSecond: 100,
};

/** Options with defaults applied; throws OutOfRangeError on values out of range. */
export function clusterPresenceOptions(
  options: ClusterPresenceOptions = {},
): Required<ClusterPresenceOptions> {
  const resolved = { ...CLUSTER_PRESENCE_DEFAULTS };
  for (const name of Object.keys(CLUSTER_PRESENCE_DEFAULTS) as (keyof ClusterPresenceOptions)[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new OutOfRangeError(
        `presence.cluster.${name} must be a positive integer, got ${String(value)}`,
      );
    resolved[name] = value;
  }
  if (resolved.downAfterMs <= resolved.heartbeatMs)
    throw new OutOfRangeError(
      `presence.cluster.downAfterMs (${resolved.downAfterMs}) must exceed heartbeatMs (${resolved.heartbeatMs})`,
    );
  return resolved;
}

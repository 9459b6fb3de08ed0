import { OutOfRangeError } from '../errors.js';
import type { SocketDrainEvent } from '../telemetry/events.js';
import { sleep } from '../util/sleep.js';

/**
 * How `gateway.drain()` stops a gateway (Phoenix's socket `drainer`): in-flight gen_api requests
 * get `requestDeadlineMs` to finish, then the sockets are closed with 1012 `batchSize` at a time,
 * `batchIntervalMs` apart, all of them within `shutdownMs`.
 */
export interface DrainOptions {
  /** Sockets closed per batch. Default 10 000. */
  batchSize?: number;
  /** Pause between two batches, shortened so every batch fits in `shutdownMs`. Default 2 000 ms. */
  batchIntervalMs?: number;
  /** Longest the socket batches may take in all. Default 15 000 ms. */
  shutdownMs?: number;
  /**
   * Longest in-flight gen_api requests and streams get to finish before the sockets close;
   * streams still running then end with a `Stream interrupted` push. Default 10 000 ms.
   */
  requestDeadlineMs?: number;
}

/**
 * The defaults of `DrainOptions`, in one place. Together (10 s of requests, then at most 15 s of
 * batches) they fit Kubernetes' default 30 s termination grace period.
 */
export const DRAIN_DEFAULTS: Readonly<Required<DrainOptions>> = {
  batchSize: 10_000,
  batchIntervalMs: 2_000,
  shutdownMs: 15_000,
  requestDeadlineMs: 10_000,
};

/** `DrainOptions` with defaults applied; OutOfRangeError names an option out of range. */
export function resolveDrainOptions(options: DrainOptions = {}): Required<DrainOptions> {
  const resolved = { ...DRAIN_DEFAULTS };
  for (const name of Object.keys(DRAIN_DEFAULTS) as (keyof DrainOptions)[]) {
    const value = options[name];
    if (value === undefined) continue;
    const min = name === 'batchSize' ? 1 : 0;
    if (!Number.isSafeInteger(value) || value < min)
      throw new OutOfRangeError(
        `drain.${name} must be an integer of at least ${min}, got ${String(value)}`,
      );
    resolved[name] = value;
  }
  return resolved;
}

/** Something the drain closes: a socket session. */
export interface Drainable {
  readonly closed: boolean;
  close(code: number, reason: string): void;
}

/**
 * Closes `sockets` in batches of `batchSize` with `code`, pausing between batches so that all of
 * them fit in `shutdownMs` (the pause is `batchIntervalMs` or less). `onBatch` sees each batch
 * (the `socket_drain` event); `hurry` aborts the pauses: the remaining sockets close at once.
 */
export async function closeInBatches(
  sockets: readonly Drainable[],
  options: Required<DrainOptions>,
  code: number,
  reason: string,
  onBatch: (event: SocketDrainEvent) => void,
  hurry: AbortSignal,
): Promise<void> {
  const total = sockets.length;
  if (total === 0) return;
  const rounds = Math.max(1, Math.ceil(total / options.batchSize));
  const intervalMs =
    rounds <= 1 ? 0 : Math.min(options.batchIntervalMs, Math.floor(options.shutdownMs / rounds));
  for (let index = 0; index < rounds; index++) {
    const batch = sockets.slice(index * options.batchSize, (index + 1) * options.batchSize);
    let count = 0;
    for (const socket of batch) {
      if (socket.closed) continue;
      socket.close(code, reason);
      count++;
    }
    const last = index === rounds - 1;
    onBatch({ count, total, index, intervalMs: last ? 0 : intervalMs });
    if (!last && intervalMs > 0 && !hurry.aborted) await sleep(intervalMs, hurry);
  }
}

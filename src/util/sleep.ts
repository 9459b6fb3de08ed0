import { setTimeout as wait } from 'node:timers/promises';

/** Waits `ms`, or less when `signal` aborts; never rejects (an abort just ends the wait early). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return wait(ms, undefined, { signal }).catch(() => undefined);
}

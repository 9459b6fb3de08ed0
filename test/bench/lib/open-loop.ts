/**
 * Open-loop load: requests leave at a fixed arrival rate whatever the answers do, and each one's
 * latency counts from when it was *due*, not from when it went out. A stalled server therefore
 * shows up as latency instead of silently lowering the offered rate (no coordinated omission).
 */
import { untilOrTimeout } from './runtime.js';

/**
 * Calls `fire(dueAt, index)` `rate` times per second for `durationMs` (dueAt in performance.now()
 * ms). Requests fall due evenly; the loop wakes every millisecond and sends what is due.
 * Resolves with the number fired.
 */
export function openLoop(
  rate: number,
  durationMs: number,
  fire: (dueAt: number, index: number) => void,
): Promise<number> {
  const total = Math.max(0, Math.floor((rate * durationMs) / 1000));
  const interval = 1000 / rate;
  const started = performance.now();
  let sent = 0;
  return new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - started) / interval) + 1);
      while (sent < due) {
        fire(started + sent * interval, sent);
        sent++;
      }
      if (sent >= total) resolve(sent);
      else setTimeout(tick, 1);
    };
    tick();
  });
}

/**
 * Waits until `done()` holds; false when it still does not after `timeoutMs` (the caller counts
 * what never came, e.g. unanswered requests, instead of failing).
 */
export function settle(
  done: () => boolean,
  timeoutMs: number,
  label = 'the last answers',
): Promise<boolean> {
  return untilOrTimeout(done, label, { timeoutMs, intervalMs: 5 });
}

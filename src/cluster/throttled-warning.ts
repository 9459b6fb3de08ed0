import type { Logger } from '../log/logger.js';

/** Default quiet period between two warnings of one kind (drops, failed publishes). */
export const WARNING_INTERVAL_MS = 10_000;

/**
 * A warning logged at most once per interval, with how many were suppressed since the last one:
 * a flood of bad messages from NATS costs a counter increment each, not a log line each.
 */
export class ThrottledWarning {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly intervalMs: number = WARNING_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  warn(logger: Logger | null | undefined, fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.last = now;
    logger?.warn({ ...fields, suppressedSinceLast: this.suppressed }, message);
    this.suppressed = 0;
  }
}

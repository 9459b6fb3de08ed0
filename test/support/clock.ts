/**
 * A clock a test drives by hand, for the `Clock` that the timer wheel, the rate limiter, the
 * gateway (`clock`) and discovery accept. Time moves only when the test says so, so a test about
 * time asserts exact outcomes instead of racing the machine's load.
 */
import type { Clock } from '../../src/util/clock.js';

export interface ManualClock {
  /** The `Clock` to inject. */
  readonly now: Clock;
  /** Moves time forward by `ms` (>= 0). */
  advance(ms: number): void;
  /** Sets the time to `ms` (never backwards). */
  set(ms: number): void;
}

export function manualClock(start = 0): ManualClock {
  let current = start;
  return {
    now: () => current,
    advance(ms) {
      if (ms < 0) throw new RangeError(`a clock does not go back (${ms} ms)`);
      current += ms;
    },
    set(ms) {
      if (ms < current) throw new RangeError(`a clock does not go back (${current} → ${ms})`);
      current = ms;
    },
  };
}

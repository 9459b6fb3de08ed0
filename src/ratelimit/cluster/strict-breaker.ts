import {
  BrokenCircuitError,
  CircuitState,
  circuitBreaker,
  ConsecutiveBreaker,
  handleAll,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import type { StrictStats } from './strict-options.js';

const BREAKER_STATES: Record<CircuitState, StrictStats['breaker']> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'open',
};

/**
 * A consecutive-failure breaker around the store's operations (cockatiel). What it counts is an
 * operation's own outcome, which may come long after its decision went to the fallback: a
 * loaded machine that misses the 25 ms deadline while the store still answers never opens it;
 * a lost quorum or a dead store, whose operations fail, does. `failures` ≤ 0 turns it off.
 */
export class StoreBreaker {
  private readonly breaker: CircuitBreakerPolicy | null;
  /** When an open breaker lets its trial through (real time, as cockatiel counts it). */
  private trialAt = 0;

  constructor(failures: number, openMs: number, stats: StrictStats, logger: Logger) {
    if (failures <= 0) {
      this.breaker = null;
      return;
    }
    const breaker = circuitBreaker(handleAll, {
      halfOpenAfter: openMs,
      breaker: new ConsecutiveBreaker(failures),
    });
    breaker.onStateChange((state) => (stats.breaker = BREAKER_STATES[state]));
    breaker.onBreak(() => {
      this.trialAt = Date.now() + openMs;
      logger.warn(
        { failures, openMs },
        'rate-limit store failing: breaker open, strict policies use their fallback at once',
      );
    });
    breaker.onReset(() => logger.info('rate-limit store answering again: breaker closed'));
    this.breaker = breaker;
  }

  /** The breaker is open and not yet due for its trial, or its trial is in flight: skip the store. */
  shortCircuited(): boolean {
    const state = this.breaker?.state;
    return (
      state === CircuitState.HalfOpen || (state === CircuitState.Open && Date.now() < this.trialAt)
    );
  }

  /** Runs one store operation, counted by the breaker; rejects with a BrokenCircuitError when it is open. */
  execute<T>(operation: () => Promise<T>): Promise<T> {
    return this.breaker ? this.breaker.execute(operation) : operation();
  }
}

/** The breaker refused an operation (`execute`). */
export function isBreakerOpen(err: unknown): boolean {
  return err instanceof BrokenCircuitError;
}

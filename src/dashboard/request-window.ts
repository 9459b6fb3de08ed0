import type { GenApiOutcome } from '../telemetry/events.js';
import { LATENCY_BUCKETS, latencyBucket, latencyQuantile } from './latency-histogram.js';

/** Every outcome a `genapi_request` event may carry (the record makes the compiler check the list). */
const OUTCOME_SET: Record<GenApiOutcome, true> = {
  ok: true,
  error: true,
  timeout: true,
  unavailable: true,
  rate_limited: true,
  denied: true,
  invalid: true,
  not_found: true,
  cancelled: true,
};

/** Outcomes of a gen_api request as the `genapi_request` telemetry event names them. */
export const REQUEST_OUTCOMES = Object.keys(OUTCOME_SET) as readonly GenApiOutcome[];

/** One gen_api request outcome. */
export type RequestOutcome = GenApiOutcome;

/** What the window needs of a `genapi_request` event. */
export interface RequestSample {
  readonly service: string;
  readonly function: string;
  readonly outcome: string;
  readonly durationMs: number;
}

/** Where calls to functions beyond `maxFunctions` are counted. */
export const OTHER_FUNCTIONS = '(other)';

/** One function's figures over the window. */
export interface FunctionFigures {
  /** The service (`(other)` for the overflow row). */
  service: string;
  /** The function (request type); `(other)` for the overflow row. */
  function: string;
  /** Requests finished in the window. */
  count: number;
  /** Requests per second over the window (or the part of it watched so far). */
  rate: number;
  /** Requests in the window by outcome (only outcomes seen). */
  outcomes: Partial<Record<RequestOutcome, number>>;
  /** Requests not `ok`. */
  errors: number;
  /** Median duration in ms (±5 %), or null. */
  p50Ms: number | null;
  /** 99th percentile duration in ms (±5 %), or null. */
  p99Ms: number | null;
}

const OUTCOME_INDEX = new Map<string, number>(REQUEST_OUTCOMES.map((name, i) => [name, i]));
const ERROR_INDEX = OUTCOME_INDEX.get('error')!;

/** One second of one function. */
class Slot {
  second = -1;
  count = 0;
  readonly outcomes = new Uint32Array(REQUEST_OUTCOMES.length);
  readonly latency = new Uint32Array(LATENCY_BUCKETS);

  reset(second: number): void {
    this.second = second;
    this.count = 0;
    this.outcomes.fill(0);
    this.latency.fill(0);
  }
}

/** A ring of per-second slots: the last `seconds` seconds of one function. */
class FunctionWindow {
  private readonly slots: Slot[];

  constructor(
    readonly service: string,
    readonly name: string,
    seconds: number,
  ) {
    this.slots = Array.from({ length: seconds }, () => new Slot());
  }

  record(second: number, outcome: number, durationMs: number): void {
    const slot = this.slots[second % this.slots.length]!;
    if (slot.second !== second) slot.reset(second);
    slot.count++;
    slot.outcomes[outcome]!++;
    slot.latency[latencyBucket(durationMs)]!++;
  }

  /** Sums the slots of the window ending at `second` into the scratch arrays; returns the count. */
  sum(second: number, outcomes: Uint32Array, latency: Uint32Array): number {
    outcomes.fill(0);
    latency.fill(0);
    let count = 0;
    for (const slot of this.slots) {
      if (slot.second <= second - this.slots.length || slot.second > second) continue;
      count += slot.count;
      for (let i = 0; i < outcomes.length; i++) outcomes[i]! += slot.outcomes[i]!;
      for (let i = 0; i < latency.length; i++) latency[i]! += slot.latency[i]!;
    }
    return count;
  }
}

/**
 * gen_api requests per function over a sliding window of whole seconds, fed by `genapi_request`
 * telemetry: counts by outcome and a latency histogram per second, so rates and p50/p99 cost
 * nothing per request beyond a few increments. At most `maxFunctions` functions are tracked (the
 * names come from clients, including for unknown functions): the rest share the `(other)` row.
 */
export class RequestWindow {
  private readonly byService = new Map<string, Map<string, FunctionWindow>>();
  private tracked = 0;
  private other: FunctionWindow | null = null;
  private readonly seconds: number;
  private readonly startSecond: number;
  private readonly scratchOutcomes = new Uint32Array(REQUEST_OUTCOMES.length);
  private readonly scratchLatency = new Uint32Array(LATENCY_BUCKETS);

  constructor(
    windowMs: number,
    private readonly maxFunctions: number,
    /** Monotonic ms. */
    private readonly now: () => number,
  ) {
    this.seconds = Math.max(1, Math.round(windowMs / 1000));
    this.startSecond = Math.floor(now() / 1000);
  }

  /** Counts one finished request. */
  record(sample: RequestSample): void {
    const second = Math.floor(this.now() / 1000);
    const outcome = OUTCOME_INDEX.get(sample.outcome) ?? ERROR_INDEX;
    this.windowOf(sample.service, sample.function).record(second, outcome, sample.durationMs);
  }

  private windowOf(service: string, name: string): FunctionWindow {
    let functions = this.byService.get(service);
    const found = functions?.get(name);
    if (found) return found;
    if (this.tracked >= this.maxFunctions)
      return (this.other ??= new FunctionWindow(OTHER_FUNCTIONS, OTHER_FUNCTIONS, this.seconds));
    if (!functions) this.byService.set(service, (functions = new Map<string, FunctionWindow>()));
    const window = new FunctionWindow(service, name, this.seconds);
    functions.set(name, window);
    this.tracked++;
    return window;
  }

  /** Functions tracked (the `(other)` row not included). */
  get size(): number {
    return this.tracked;
  }

  /** Every function with requests in the window, busiest first; forgets the idle ones. */
  figures(): FunctionFigures[] {
    const second = Math.floor(this.now() / 1000);
    // Rates over the part of the window watched so far, so the first seconds are not diluted.
    const watched = Math.min(this.seconds, second - this.startSecond + 1);
    const rows: FunctionFigures[] = [];
    /** Adds the window's row; false when it had no request in the window. */
    const add = (window: FunctionWindow): boolean => {
      const count = window.sum(second, this.scratchOutcomes, this.scratchLatency);
      if (count === 0) return false;
      const outcomes: Partial<Record<RequestOutcome, number>> = {};
      REQUEST_OUTCOMES.forEach((name, i) => {
        const n = this.scratchOutcomes[i]!;
        if (n > 0) outcomes[name] = n;
      });
      rows.push({
        service: window.service,
        function: window.name,
        count,
        rate: Math.round((count / watched) * 100) / 100,
        outcomes,
        errors: count - (outcomes.ok ?? 0),
        p50Ms: latencyQuantile(this.scratchLatency, count, 0.5),
        p99Ms: latencyQuantile(this.scratchLatency, count, 0.99),
      });
      return true;
    };
    for (const [service, functions] of this.byService) {
      for (const [name, window] of functions) {
        if (add(window)) continue;
        // Idle for a whole window: its place goes to the next function called.
        functions.delete(name);
        this.tracked--;
      }
      if (functions.size === 0) this.byService.delete(service);
    }
    if (this.other && !add(this.other)) this.other = null;
    return rows.sort((a, b) => b.count - a.count);
  }
}

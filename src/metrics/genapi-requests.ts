import type { Metric, Registry } from 'prom-client';
import type { GenApiOutcome, GenApiRequestEvent } from '../telemetry/events.js';

const OUTCOMES: readonly GenApiOutcome[] = [
  'ok',
  'error',
  'timeout',
  'unavailable',
  'rate_limited',
  'denied',
  'invalid',
  'not_found',
  'cancelled',
];
const OUTCOME_INDEX = new Map<string, number>(OUTCOMES.map((outcome, i) => [outcome, i]));
const OTHER = 'other';
/** Label values of requests for functions the gateway does not know (the client chose the name). */
export const UNKNOWN_FUNCTION = '(unknown)';

/** One service/function pair: counts by outcome and the duration histogram (seconds). */
class PairStats {
  readonly outcomes = new Float64Array(OUTCOMES.length);
  /** Per bucket (not cumulative); the last slot is +Inf. */
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly service: string,
    readonly fn: string,
    bucketCount: number,
  ) {
    this.buckets = new Float64Array(bucketCount + 1);
  }
}

/** One sample as prom-client's registry reads it (`metricName` for histogram series). */
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** A metric prom-client's registry can serialise: its name, type and a `get()` of the values. */
interface CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  get(): Promise<{
    name: string;
    help: string;
    type: 'counter' | 'histogram';
    values: MetricValue[];
    aggregator: 'sum';
  }>;
}

/**
 * gen_api requests by service/function/outcome and their duration histogram, counted in plain
 * typed arrays (a request allocates nothing here: two map lookups, a few additions) and handed
 * to prom-client only when scraped. Pairs past `maxPairs` are counted as `other`/`other`.
 */
export class GenApiRequestMetrics {
  private readonly pairs = new Map<string, Map<string, PairStats>>();
  private size = 0;
  private overflow: PairStats | null = null;

  constructor(
    private readonly buckets: readonly number[],
    private readonly maxPairs: number,
  ) {}

  /** Counts one `genapi_request` event. */
  record(event: GenApiRequestEvent): void {
    const stats = this.statsOf(event);
    stats.outcomes[OUTCOME_INDEX.get(event.outcome) ?? 1]! += 1;
    const seconds = event.durationMs / 1000;
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && seconds > buckets[i]!) i++;
    stats.buckets[i]! += 1;
    stats.sum += seconds;
    stats.count++;
  }

  private statsOf(event: GenApiRequestEvent): PairStats {
    const known = event.outcome !== 'not_found';
    const service = known ? event.service : UNKNOWN_FUNCTION;
    const fn = known ? event.function : UNKNOWN_FUNCTION;
    let byFunction = this.pairs.get(service);
    let stats = byFunction?.get(fn);
    if (stats !== undefined) return stats;
    if (this.size >= this.maxPairs)
      return (this.overflow ??= new PairStats(OTHER, OTHER, this.buckets.length));
    this.size++;
    stats = new PairStats(service, fn, this.buckets.length);
    if (byFunction === undefined) {
      byFunction = new Map<string, PairStats>();
      this.pairs.set(service, byFunction);
    }
    byFunction.set(fn, stats);
    return stats;
  }

  private *all(): Generator<PairStats> {
    for (const byFunction of this.pairs.values()) yield* byFunction.values();
    if (this.overflow !== null) yield this.overflow;
  }

  /** Registers `<prefix>genapi_requests_total` and `<prefix>genapi_request_duration_seconds`. */
  register(registry: Registry, prefix: string): void {
    const counter: CollectedMetric = {
      name: `${prefix}genapi_requests_total`,
      help: 'gen_api requests answered, by service, function and outcome.',
      type: 'counter',
      get: () => {
        const values: MetricValue[] = [];
        for (const stats of this.all()) {
          stats.outcomes.forEach((value, i) => {
            if (value > 0)
              values.push({
                labels: { service: stats.service, function: stats.fn, outcome: OUTCOMES[i]! },
                value,
              });
          });
        }
        return Promise.resolve({ ...counter, values, aggregator: 'sum' });
      },
    };
    const name = `${prefix}genapi_request_duration_seconds`;
    const histogram: CollectedMetric = {
      name,
      help: 'gen_api request durations (a stream: until it ended), by service and function.',
      type: 'histogram',
      get: () => {
        const values: MetricValue[] = [];
        for (const stats of this.all()) {
          const labels = { service: stats.service, function: stats.fn };
          let cumulative = 0;
          this.buckets.forEach((le, i) => {
            cumulative += stats.buckets[i]!;
            values.push({
              labels: { ...labels, le },
              value: cumulative,
              metricName: `${name}_bucket`,
            });
          });
          values.push(
            {
              labels: { ...labels, le: '+Inf' },
              value: stats.count,
              metricName: `${name}_bucket`,
            },
            { labels, value: stats.sum, metricName: `${name}_sum` },
            { labels, value: stats.count, metricName: `${name}_count` },
          );
        }
        return Promise.resolve({ ...histogram, values, aggregator: 'sum' });
      },
    };
    // prom-client serialises any metric with a name and get() (its own classes are no more).
    registry.registerMetric(counter as unknown as Metric);
    registry.registerMetric(histogram as unknown as Metric);
  }
}

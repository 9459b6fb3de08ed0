/**
 * Metrics whose value is read when Prometheus scrapes (from counters the gateway keeps anyway), so
 * nothing is done per request on the hot path; and a bound on label values.
 */
import {
  Counter,
  Gauge,
  type CounterConfiguration,
  type GaugeConfiguration,
  type Registry,
} from 'prom-client';

const OTHER = 'other';
/** A counter whose value is read at scrape time (from counters the gateway keeps anyway). */
export function readCounter(
  registry: Registry,
  config: Omit<CounterConfiguration<string>, 'registers' | 'collect'>,
  read: (set: (labels: Record<string, string>, value: number) => void) => void,
): Counter {
  return new Counter({
    ...config,
    registers: [registry],
    collect(this: Counter) {
      this.reset();
      read((labels, value) => this.inc(labels, value));
    },
  });
}

/** A gauge whose value is read at scrape time. */
export function readGauge(
  registry: Registry,
  config: Omit<GaugeConfiguration<string>, 'registers' | 'collect'>,
  read: (set: (labels: Record<string, string>, value: number) => void) => void | Promise<void>,
): Gauge {
  return new Gauge({
    ...config,
    registers: [registry],
    collect(this: Gauge) {
      this.reset();
      return read((labels, value) => this.set(labels, value));
    },
  });
}

/** Keeps at most `limit` distinct values; the rest read as `other`. */
export class BoundedLabels {
  private readonly seen = new Set<string>();
  constructor(private readonly limit: number) {}

  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit) return OTHER;
    this.seen.add(value);
    return value;
  }
}

/**
 * Latency histograms (HdrHistogram, 3 significant digits, 1 µs … 120 s) that generator processes
 * fill and send back encoded, and the bench process merges: percentiles stay exact to the
 * histogram's precision however many processes recorded them.
 */
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

export function latencyHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: 'packed',
    useWebAssembly: false,
  });
}

/** Records a latency given in ms (stored in µs). */
export function recordMs(histogram: Histogram, ms: number): void {
  histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
}

export function encode(histogram: Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

/** Merges encoded histograms (from several processes) into one. */
export function merge(encoded: readonly string[]): Histogram {
  const total = latencyHistogram();
  for (const text of encoded) {
    const part = hdr.decodeFromCompressedBase64(text, 'packed', false);
    total.add(part);
    part.destroy();
  }
  return total;
}

export interface LatencySummary {
  count: number;
  /** All in ms. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function summary(histogram: Histogram): LatencySummary {
  const ms = (us: number) => us / 1000;
  return {
    count: histogram.totalCount,
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}

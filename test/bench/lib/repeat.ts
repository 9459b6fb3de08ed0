/** Repetitions: each scenario runs several times; a metric reports the median and keeps every run. */
import type { Metric } from '../types.js';
import { median } from './stats.js';

/** Runs `run` `times` times in sequence (repetition index passed), collecting the results. */
export async function repeat<T>(times: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < times; i++) results.push(await run(i));
  return results;
}

/** A metric whose value is the median of `runs` (min / median / max shown in the report). */
export function fromRuns(
  name: string,
  runs: readonly number[],
  unit: string,
  fields: Partial<Metric> = {},
): Metric {
  return { name, value: median(runs), unit, runs: [...runs], ...fields };
}

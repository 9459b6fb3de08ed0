/**
 * Figures of the fault tests (issue 12, "Tests and figures"): each fault test reports what it
 * measured as one JSON line, `{"figure": <name>, ...}`, on stdout and, when `RELIABILITY_OUT`
 * names a file, appended to it. `npm run reliability` (test/reliability/run.ts) runs the fault
 * test files with that variable set and turns the lines into RELIABILITY.md.
 *
 * A test records its figures before it asserts on them, so a missed goal still shows in the
 * report (as a fail) next to the assertion that failed the test.
 */
import { appendFileSync } from 'node:fs';
import { expect } from 'vitest';

/** The environment variable naming the file figure lines are appended to. */
export const RELIABILITY_OUT_ENV = 'RELIABILITY_OUT';

/** A figure's value: a count or duration, a label, or a list of labels (error kinds). */
export type FigureValue = number | string | boolean | readonly string[];

/** One goal a figure is checked against: passes when `value` ≤ `limit` (< when `strict`). */
export interface FigureGoal {
  /** What is checked, in words: "errors ≤ calls in flight on the sick worker". */
  readonly goal: string;
  readonly value: number;
  readonly limit: number;
  /** `value` must stay strictly below `limit`. Default false (≤). */
  readonly strict?: boolean;
  /** Unit of value and limit, for the report ("ms", "calls"). */
  readonly unit?: string;
}

/** A recorded goal, with its verdict. */
export interface RecordedGoal extends FigureGoal {
  readonly pass: boolean;
}

/** What a figure line holds (test/reliability/run.ts reads it back). */
export interface FigureLine {
  readonly figure: string;
  /** The scenario in words (a heading of RELIABILITY.md). */
  readonly title: string;
  /** The vitest test that measured it ("describe > test"). */
  readonly test: string;
  readonly figures: Readonly<Record<string, FigureValue>>;
  readonly goals: readonly RecordedGoal[];
}

/** Whether a goal is met. */
export function goalMet(goal: FigureGoal): boolean {
  return goal.strict === true ? goal.value < goal.limit : goal.value <= goal.limit;
}

/**
 * Prints one figure line and, with RELIABILITY_OUT set, appends it to that file. Returns the
 * line (tests assert on their goals themselves; the verdicts here are for the report).
 */
export function recordFigure(
  figure: string,
  title: string,
  figures: Record<string, FigureValue>,
  goals: readonly FigureGoal[] = [],
): FigureLine {
  const line: FigureLine = {
    figure,
    title,
    test: expect.getState().currentTestName ?? '',
    figures,
    goals: goals.map((goal) => ({ ...goal, pass: goalMet(goal) })),
  };
  const text = JSON.stringify(line);
  console.log(text);
  const out = process.env[RELIABILITY_OUT_ENV];
  if (out) appendFileSync(out, `${text}\n`);
  return line;
}

/** The `p`-th percentile (0–100) of `values`, nearest rank; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

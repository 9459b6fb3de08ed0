/**
 * The benchmark runner's contract (test/bench/run.ts). A suite measures, returns structured
 * results, and never decides the exit code: goals are reported (pass / MISS), not enforced.
 */

/** A target: `value >= target` or `value <= target`, on the metric's value or on its ratio to a baseline. */
export interface Goal {
  op: '>=' | '<=';
  target: number;
  /** What the goal applies to. Default "value". */
  on?: 'value' | 'ratio';
  /** Where the goal comes from (issue, spec section). */
  source?: string;
}

export interface Metric {
  /** Unique within its suite (baselines are referred to by name). */
  name: string;
  value: number;
  unit: string;
  /** Table the row goes in (sections within a suite). Default: the suite's first table. */
  group?: string;
  goal?: Goal;
  /**
   * The name of another metric of the same suite that this one is compared with; the runner
   * computes `ratio = value / baseline.value` unless `ratio` is given.
   */
  baseline?: string;
  ratio?: number;
  /** What the ratio is to, shown after it ("1.9× raw NATS RTT p50"). Default: the baseline metric name. */
  ratioLabel?: string;
  /** A short remark shown in the table. */
  note?: string;
  /** The value of each repetition (the metric's value is their median): shown as min / median / max. */
  runs?: number[];
  /** This metric is itself a baseline (shown in italics). */
  isBaseline?: boolean;
}

/** What a suite returns. */
export interface SuiteOutput {
  metrics: Metric[];
  /** Method notes (markdown paragraphs or bullet lines), written under the tables. */
  notes?: string[];
  /** Extra environment facts this suite depends on (e.g. the nats-server version). */
  environment?: Record<string, string>;
}

export interface BenchContext {
  /** Shorter runs (smoke check of the suite itself; numbers are less stable). */
  readonly quick: boolean;
  /** Progress line on stderr (stdout stays clean for --json). */
  log(message: string): void;
  /**
   * Registers a cleanup (servers, processes, sockets). Cleanups run in reverse order after the
   * suite, also when it throws or the run is interrupted.
   */
  defer(cleanup: () => unknown): void;
  /**
   * Registers a cleanup that runs when the whole run ends (set by the runner). Quick runs use it
   * to share one fleet of processes between suites (lib/fleet.ts); without it nothing is shared.
   */
  readonly deferToEnd?: (cleanup: () => unknown) => void;
}

export interface Suite {
  /** Command-line name: `npm run bench -- <name>`. */
  name: string;
  /** Section title in BENCHMARKS.md. */
  title: string;
  run(ctx: BenchContext): Promise<SuiteOutput>;
}

/** One suite's outcome in a run. */
export interface SuiteResult {
  name: string;
  title: string;
  startedAt: string;
  durationMs: number;
  metrics: Metric[];
  notes: string[];
  environment: Record<string, string>;
  /** Set when the suite threw (its partial metrics are lost). */
  error?: string;
}

export type GoalStatus = 'pass' | 'miss' | 'n/a';

export function goalStatus(metric: Metric): GoalStatus {
  const goal = metric.goal;
  if (!goal) return 'n/a';
  const value = goal.on === 'ratio' ? metric.ratio : metric.value;
  if (value === undefined || !Number.isFinite(value)) return 'miss';
  return (goal.op === '>=' ? value >= goal.target : value <= goal.target) ? 'pass' : 'miss';
}

/** Clocks, garbage collection, memory and bounded waits for benchmarks. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { until, type Label, type WaitOptions } from '../../support/wait.js';

/** High-resolution ms as a double (no allocation, unlike process.hrtime.bigint()). */
export const now = (): number => performance.now();

let collector: (() => void) | null = null;

/** A full garbage collection (works without --expose-gc: the flag is set at run time). */
export function gc(): void {
  if (!collector) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) collector = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
    }
  }
  // Twice: weak callbacks and finalizers of the first pass free more on the second.
  collector();
  collector();
}

/** JS heap plus memory held outside it (ArrayBuffers, e.g. Float64Array backing stores). */
export function retainedBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

/**
 * `until` for a wait whose miss a suite counts and reports (requests never answered, a cancel the
 * worker never saw, a gauge not back to 0): resolves true when `probe` holds, false when it still
 * does not at the deadline. A probe that throws (e.g. a child that stopped answering) still fails.
 */
export async function untilOrTimeout(
  probe: () => unknown,
  label: Label,
  options: WaitOptions,
): Promise<boolean> {
  const probed: { failure?: { error: unknown } } = {};
  try {
    await until(
      async () => {
        try {
          return Boolean(await probe());
        } catch (error) {
          probed.failure = { error };
          throw error;
        }
      },
      label,
      options,
    );
    return true;
  } catch {
    if (probed.failure) throw probed.failure.error;
    // The deadline passed: the caller reports what did not happen.
    return false;
  }
}

/** Lets timers, I/O and immediates run. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The cost of one `now()` pair around nothing (ns, median of many): the floor of a timed sample. */
export function timerOverheadNs(rounds = 200_000): number {
  const samples = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    const start = now();
    samples[i] = now() - start;
  }
  samples.sort();
  return samples[rounds >> 1]! * 1e6;
}

/**
 * Cleanups of one part of a suite, run (in reverse) when the part ends — and at the latest when
 * the suite ends, if the part threw (register `close` with ctx.defer).
 */
export class Scope {
  private cleanups: (() => unknown)[] = [];

  add(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    const cleanups = this.cleanups.reverse();
    this.cleanups = [];
    for (const cleanup of cleanups) {
      try {
        await cleanup();
      } catch {
        // Best effort: a failed cleanup must not hide the others.
      }
    }
  }
}

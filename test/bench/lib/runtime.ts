/** Clocks, garbage collection and memory for benchmarks. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

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

/** Lets timers, I/O and immediates run. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

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

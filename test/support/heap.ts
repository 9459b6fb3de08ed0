/**
 * The heap after a full garbage collection, for memory-hygiene tests. vitest does not start its
 * forks with --expose-gc: when `global.gc` is missing the flag is turned on at run time and `gc`
 * taken from a fresh context. If even that fails `gc` is null and the tests keep only their
 * structural checks (nothing retained).
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { expect } from 'vitest';

function findGc(): (() => void) | null {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

export const gc = findGc();

/** heapUsed after three full collections (finalizers of one pass free more on the next). */
export function settledHeap(): number {
  if (!gc) return process.memoryUsage().heapUsed;
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/**
 * With a GC: the load really was on the heap (the peak grew by more than `minGrowthBytes`, so the
 * check means something) and the heap is back within 10 % of its baseline. Without one: nothing.
 */
export function expectHeapBack(baseline: number, peakHeap: number, minGrowthBytes: number): void {
  if (!gc) return;
  expect(peakHeap - baseline).toBeGreaterThan(minGrowthBytes);
  expect(settledHeap()).toBeLessThanOrEqual(baseline * 1.1);
}

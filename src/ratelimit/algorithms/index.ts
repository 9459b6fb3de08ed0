import type { Algorithm, AlgorithmName } from '../types.js';
import { FixedWindow } from './fixed-window.js';
import { Gcra } from './gcra.js';
import { SlidingLog } from './sliding-log.js';
import { SlidingWindow } from './sliding-window.js';

export { FixedWindow, Gcra, SlidingLog, SlidingWindow };

/** The algorithm of a policy, with its parameters. */
export function createAlgorithm(
  name: AlgorithmName,
  limit: number,
  windowMs: number,
  burst?: number,
): Algorithm<unknown> {
  switch (name) {
    case 'sliding_log':
      return new SlidingLog(limit, windowMs);
    case 'sliding_window':
      return new SlidingWindow(limit, windowMs);
    case 'gcra':
      return new Gcra(limit, windowMs, burst ?? limit);
    case 'fixed_window':
      return new FixedWindow(limit, windowMs);
  }
}

import { performance } from 'node:perf_hooks';

/** Monotonic milliseconds. Injected wherever time matters so tests can drive it. */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();

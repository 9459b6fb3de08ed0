/** The sliding log's per-key ring grows with the hits it holds, not with the limit. */
import { describe, expect, it } from 'vitest';
import {
  SLIDING_LOG_INITIAL_CAPACITY,
  SlidingLog,
} from '../../src/ratelimit/algorithms/sliding-log.js';
import { emptyDecision } from '../../src/ratelimit/types.js';

describe('sliding log capacity', () => {
  it('a key that made one request under a limit of 1 000 000 holds a small ring', () => {
    const log = new SlidingLog(1_000_000, 3_600_000);
    const state = log.create();
    log.commit(state, 1, 1);
    expect(state.ring.length).toBe(SLIDING_LOG_INITIAL_CAPACITY);
  });

  it('grows by doubling up to the limit, keeping every hit in order, and decides as a full-size ring would', () => {
    const log = new SlidingLog(100, 1_000);
    const state = log.create();
    const decision = emptyDecision();
    const capacities = new Set<number>();
    for (let t = 0; t < 100; t++) {
      log.peek(state, t, 1, decision);
      expect(decision.allowed).toBe(true);
      expect(decision.remaining).toBe(99 - t);
      log.commit(state, t, 1);
      capacities.add(state.ring.length);
    }
    expect([...capacities]).toEqual([8, 16, 32, 64, 100]);
    expect(log.encode(state)).toEqual(Array.from({ length: 100 }, (_, t) => t));
    // Full: the 101st is denied until the oldest hit leaves the window.
    log.peek(state, 100, 1, decision);
    expect(decision.allowed).toBe(false);
    expect(decision.retryAfterMs).toBe(900);
    log.peek(state, 1_000, 1, decision);
    expect(decision.allowed).toBe(true);
    log.commit(state, 1_000, 1);
    expect(state.ring.length).toBe(100);
    expect(log.encode(state)[0]).toBe(1);
    expect(log.encode(state).at(-1)).toBe(1_000);
  });

  it('out-of-order hits (from peers) land in order across a growth', () => {
    const log = new SlidingLog(20, 10_000);
    const state = log.create();
    const times = [50, 10, 40, 20, 30, 5, 45, 15, 35, 25, 1];
    for (const t of times) log.apply(state, t, 1);
    expect(log.encode(state)).toEqual([...times].sort((a, b) => a - b));
    expect(state.ring.length).toBe(16);
  });
});

/**
 * backoffMs (src/genapi/select/backoff.ts): PhoenixGenApi's NodeSelector.calculate_backoff/2.
 */
import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../../src/genapi/select/backoff.js';

/** mulberry32: a small seeded PRNG in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const noRandom = (): number => {
  throw new Error('random must not be used without jitter');
};

describe('backoffMs without jitter', () => {
  it('doubles from 100 ms and caps at 5000 ms', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 10].map((a) =>
      backoffMs(a, { jitter: false, random: noRandom }),
    );
    expect(values).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it('treats attempt < 1 (and NaN) as 1 and truncates fractional attempts', () => {
    expect(backoffMs(0, { jitter: false })).toBe(100);
    expect(backoffMs(-3, { jitter: false })).toBe(100);
    expect(backoffMs(Number.NaN, { jitter: false })).toBe(100);
    expect(backoffMs(2.9, { jitter: false })).toBe(200);
  });

  it('honours baseMs and maxMs, truncating fractional delays', () => {
    expect(
      [1, 2, 3, 4, 5].map((a) => backoffMs(a, { baseMs: 50, maxMs: 300, jitter: false })),
    ).toEqual([50, 100, 200, 300, 300]);
    expect(backoffMs(2, { baseMs: 12.7, jitter: false })).toBe(25); // trunc(25.4)
  });

  it('stays finite and capped for huge attempts (2^n overflows to Infinity)', () => {
    expect(backoffMs(2_000, { jitter: false })).toBe(5000);
    expect(backoffMs(Number.POSITIVE_INFINITY, { jitter: false })).toBe(5000);
  });

  it('never returns a negative delay', () => {
    expect(backoffMs(3, { baseMs: -100, jitter: false })).toBe(0);
  });
});

describe('backoffMs with jitter (the default)', () => {
  it('is on by default: trunc(d * (0.5 + U)) with U = 1 - random() in (0, 1]', () => {
    // random() = 0 → U = 1 → 1.5 d
    expect(backoffMs(1, { random: () => 0 })).toBe(150);
    expect(backoffMs(3, { random: () => 0 })).toBe(600);
    // random() = 0.5 → U = 0.5 → d
    expect(backoffMs(3, { random: () => 0.5 })).toBe(400);
    // random() → 1⁻ → U → 0⁺ → just over d/2, truncated
    expect(backoffMs(3, { random: () => 0.999_999 })).toBe(200);
    expect(backoffMs(1, { random: () => 0.75 })).toBe(75);
  });

  it('applies the jitter after the cap, so a capped delay can reach 1.5 × maxMs', () => {
    expect(backoffMs(10, { random: () => 0 })).toBe(7500);
    expect(backoffMs(10, { maxMs: 1000, random: () => 0.5 })).toBe(1000);
  });

  it('stays in (d/2, 3d/2] with a mean near d over many draws', () => {
    const random = seeded(42);
    const samples = Array.from({ length: 10_000 }, () => backoffMs(3, { random }));
    const min = Math.min(...samples);
    const max = Math.max(...samples);
    const mean = samples.reduce((s, v) => s + v, 0) / samples.length;
    expect(min).toBeGreaterThanOrEqual(200);
    expect(max).toBeLessThanOrEqual(600);
    expect(min).toBeLessThan(210);
    expect(max).toBeGreaterThan(590);
    expect(Math.abs(mean - 400)).toBeLessThan(5); // trunc lowers the mean by ~0.5
    expect(samples.every(Number.isInteger)).toBe(true);
  });

  it('gives the retry schedule of §7.4: remaining counts down, so the largest delay comes first', () => {
    const schedule = [3, 2, 1].map((remaining) => backoffMs(remaining, { random: () => 0.5 }));
    expect(schedule).toEqual([400, 200, 100]);
  });
});

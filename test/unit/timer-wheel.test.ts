/**
 * The shared coarse timer (src/util/timer-wheel.ts), driven by a fake clock: `autoTick = false`
 * and explicit `advance(now)` calls.
 */
import { describe, expect, it } from 'vitest';
import { TimerWheel, type TimerEntry } from '../../src/util/timer-wheel.js';

const TICK = 100;

class Fake {
  now = 0;
  readonly clock = (): number => this.now;
}

/** An entry that records when it fired (the `now` passed to onTimer). */
class Recorder implements TimerEntry {
  timerSlot = -1;
  readonly fired: number[] = [];
  constructor(private readonly onFire: (now: number, self: Recorder) => void = () => undefined) {}
  onTimer(now: number): void {
    this.fired.push(now);
    this.onFire(now, this);
  }
}

function setup(start = 0): {
  fake: Fake;
  wheel: TimerWheel;
  step: (to: number, by?: number) => void;
} {
  const fake = new Fake();
  fake.now = start;
  const wheel = new TimerWheel(TICK, fake.clock, false);
  /** Moves the clock forward in small increments, advancing the wheel each time (like the interval). */
  const step = (to: number, by = 7): void => {
    while (fake.now < to) {
      fake.now = Math.min(to, fake.now + by);
      wheel.advance(fake.now);
    }
  };
  return { fake, wheel, step };
}

describe('TimerWheel', () => {
  it('fires not early and at most one tick late', () => {
    for (const at of [1, 99, 100, 101, 150, 199, 200, 250, 1234, 5000]) {
      const { wheel, step } = setup();
      const entry = new Recorder();
      wheel.schedule(entry, at);
      step(at + 2 * TICK, 1);
      expect(entry.fired, `deadline ${at}`).toHaveLength(1);
      const firedAt = entry.fired[0]!;
      expect(firedAt, `deadline ${at}`).toBeGreaterThanOrEqual(at);
      expect(firedAt - at, `deadline ${at}`).toBeLessThanOrEqual(TICK);
    }
  });

  it('does not fire before its deadline however often it is advanced', () => {
    const { fake, wheel } = setup();
    const entry = new Recorder();
    wheel.schedule(entry, 450);
    for (let t = 0; t < 450; t++) {
      fake.now = t;
      wheel.advance(t);
    }
    expect(entry.fired).toEqual([]);
    wheel.advance(500);
    expect(entry.fired).toEqual([500]);
  });

  it('one big advance fires everything due, each entry once', () => {
    const { wheel } = setup();
    const entries = [120, 340, 560, 999].map((at) => {
      const entry = new Recorder();
      wheel.schedule(entry, at);
      return entry;
    });
    expect(wheel.size).toBe(4);
    wheel.advance(1000);
    for (const entry of entries) expect(entry.fired).toEqual([1000]);
    expect(wheel.size).toBe(0);
    wheel.advance(5000);
    for (const entry of entries) expect(entry.fired).toHaveLength(1);
  });

  it('a deadline in the past fires on the next tick', () => {
    const { wheel, fake } = setup(1000);
    const entry = new Recorder();
    wheel.schedule(entry, 10);
    wheel.advance(1000);
    expect(entry.fired).toEqual([]);
    fake.now = 1100;
    wheel.advance(1100);
    expect(entry.fired).toEqual([1100]);
  });

  it('works with a clock that does not start at zero', () => {
    const { wheel, step } = setup(123_456.7);
    const entry = new Recorder();
    wheel.schedule(entry, 123_456.7 + 300);
    step(123_456.7 + 299);
    expect(entry.fired).toEqual([]);
    step(123_456.7 + 500);
    expect(entry.fired).toHaveLength(1);
    expect(entry.fired[0]! - (123_456.7 + 300)).toBeLessThanOrEqual(TICK);
  });

  it('cancel prevents firing and keeps size right; cancelling twice is harmless', () => {
    const { wheel, step } = setup();
    const a = new Recorder();
    const b = new Recorder();
    wheel.schedule(a, 200);
    wheel.schedule(b, 200);
    expect(wheel.size).toBe(2);
    wheel.cancel(a);
    expect(a.timerSlot).toBe(-1);
    expect(wheel.size).toBe(1);
    wheel.cancel(a);
    expect(wheel.size).toBe(1);
    step(400);
    expect(a.fired).toEqual([]);
    expect(b.fired).toHaveLength(1);
    expect(wheel.size).toBe(0);
  });

  it('cancelling an entry that was never scheduled does nothing', () => {
    const { wheel } = setup();
    const a = new Recorder();
    wheel.schedule(new Recorder(), 100);
    wheel.cancel(a);
    expect(wheel.size).toBe(1);
  });

  it('rescheduling moves the deadline and does not double-count', () => {
    const { wheel, step } = setup();
    const a = new Recorder();
    wheel.schedule(a, 200);
    wheel.schedule(a, 700);
    wheel.schedule(a, 600);
    expect(wheel.size).toBe(1);
    step(550);
    expect(a.fired).toEqual([]);
    step(800);
    expect(a.fired).toHaveLength(1);
    expect(a.fired[0]).toBeGreaterThanOrEqual(600);
    expect(a.fired[0]! - 600).toBeLessThanOrEqual(TICK);
    expect(wheel.size).toBe(0);
  });

  it('an entry can reschedule itself from inside onTimer (a periodic idle check)', () => {
    const { wheel, step } = setup();
    const periodic = new Recorder((now, self) => {
      if (self.fired.length < 5) wheel.schedule(self, now + 250);
    });
    wheel.schedule(periodic, 250);
    step(3000);
    expect(periodic.fired).toHaveLength(5);
    for (let i = 1; i < periodic.fired.length; i++) {
      const gap = periodic.fired[i]! - periodic.fired[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(250);
      expect(gap).toBeLessThanOrEqual(250 + TICK);
    }
    expect(wheel.size).toBe(0);
  });

  it('rescheduling from inside onTimer to an already-due time fires on the next tick, not in a loop', () => {
    const { wheel, fake } = setup();
    const entry = new Recorder((now, self) => {
      if (self.fired.length < 3) wheel.schedule(self, now - 1000);
    });
    wheel.schedule(entry, 100);
    fake.now = 100;
    wheel.advance(100);
    expect(entry.fired).toEqual([100]);
    fake.now = 200;
    wheel.advance(200);
    expect(entry.fired).toEqual([100, 200]);
    expect(wheel.size).toBe(1);
  });

  it('an entry cancelled by another entry of the same tick does not fire', () => {
    const { wheel, fake } = setup();
    const victim = new Recorder();
    const killer = new Recorder(() => wheel.cancel(victim));
    wheel.schedule(killer, 150);
    wheel.schedule(victim, 160);
    fake.now = 200;
    wheel.advance(200);
    expect(killer.fired).toEqual([200]);
    expect(victim.fired).toEqual([]);
    expect(wheel.size).toBe(0);
  });

  it('an entry rescheduled by another entry of the same tick fires only at its new deadline', () => {
    const { wheel, step } = setup();
    const moved = new Recorder();
    const mover = new Recorder(() => wheel.schedule(moved, 1000));
    wheel.schedule(mover, 150);
    wheel.schedule(moved, 160);
    step(300);
    expect(mover.fired).toHaveLength(1);
    expect(moved.fired).toEqual([]);
    expect(wheel.size).toBe(1);
    step(1200);
    expect(moved.fired).toHaveLength(1);
    expect(moved.fired[0]).toBeGreaterThanOrEqual(1000);
    expect(wheel.size).toBe(0);
  });

  it('an entry that throws does not stop the others', () => {
    const { wheel, fake } = setup();
    const bad: TimerEntry = {
      timerSlot: -1,
      onTimer() {
        throw new Error('boom');
      },
    };
    const good = new Recorder();
    wheel.schedule(bad, 100);
    wheel.schedule(good, 100);
    fake.now = 100;
    expect(() => wheel.advance(100)).not.toThrow();
    expect(good.fired).toEqual([100]);
    expect(wheel.size).toBe(0);
  });

  it('size tracks schedules, fires and cancels; clear() drops everything', () => {
    const { wheel, fake } = setup();
    const entries = Array.from({ length: 50 }, () => new Recorder());
    entries.forEach((entry, i) => wheel.schedule(entry, 100 + i * 20));
    expect(wheel.size).toBe(50);
    for (let i = 0; i < 50; i += 5) wheel.cancel(entries[i]!);
    expect(wheel.size).toBe(40);
    fake.now = 500;
    wheel.advance(500);
    const fired = entries.filter((entry) => entry.fired.length > 0).length;
    expect(wheel.size).toBe(40 - fired);
    wheel.clear();
    expect(wheel.size).toBe(0);
    for (const entry of entries) expect(entry.timerSlot).toBe(-1);
    fake.now = 10_000;
    wheel.advance(10_000);
    expect(entries.filter((entry) => entry.fired.length > 0).length).toBe(fired);
    // Entries can be scheduled again after clear().
    wheel.schedule(entries[0]!, 10_100);
    expect(wheel.size).toBe(1);
  });

  it('exposes its tick and clock', () => {
    const { wheel, fake } = setup(42);
    expect(wheel.tickMs).toBe(TICK);
    expect(wheel.clock()).toBe(fake.now);
  });
});

import { monotonicClock, type Clock } from './clock.js';

/**
 * Something with a deadline. The wheel calls `onTimer` once the deadline's tick has passed.
 * `timerSlot` belongs to the wheel (initialise it to -1): keeping the slot on the entry instead of
 * in a side map saves a map entry per socket.
 */
export interface TimerEntry {
  timerSlot: number;
  onTimer(now: number): void;
}

/**
 * One shared coarse timer for many deadlines (idle timeouts, LongPoll expiry, join timeouts).
 * Deadlines land in buckets of `tickMs`; a single interval, unref'd and only running while
 * entries exist, fires the buckets. Scheduling and cancelling are O(1) and allocate nothing per
 * call beyond the bucket set, so a socket never owns a Node timer of its own. Deadlines fire up
 * to one tick late, never early.
 */
export class TimerWheel {
  private readonly buckets = new Map<number, Set<TimerEntry>>();
  private count = 0;
  private interval: NodeJS.Timeout | null = null;
  private lastTick: number;

  constructor(
    readonly tickMs = 250,
    readonly clock: Clock = monotonicClock,
    private readonly autoTick = true,
  ) {
    this.lastTick = Math.floor(clock() / tickMs);
  }

  get size(): number {
    return this.count;
  }

  /** (Re)schedules `entry` to fire at `at` (clock milliseconds). */
  schedule(entry: TimerEntry, at: number): void {
    this.cancel(entry);
    const slot = Math.max(Math.ceil(at / this.tickMs), this.lastTick + 1);
    let bucket = this.buckets.get(slot);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(slot, bucket);
    }
    bucket.add(entry);
    entry.timerSlot = slot;
    this.count++;
    this.start();
  }

  cancel(entry: TimerEntry): void {
    const slot = entry.timerSlot;
    if (slot < 0) return;
    entry.timerSlot = -1;
    const bucket = this.buckets.get(slot);
    if (bucket?.delete(entry)) {
      this.count--;
      if (bucket.size === 0) this.buckets.delete(slot);
    }
    if (this.count === 0) this.stop();
  }

  /** Fires every bucket up to `now`. Called by the interval; tests call it with a fake clock. */
  advance(now: number = this.clock()): void {
    const current = Math.floor(now / this.tickMs);
    for (let slot = this.lastTick + 1; slot <= current; slot++) {
      this.lastTick = slot;
      const bucket = this.buckets.get(slot);
      if (!bucket) continue;
      // The bucket stays reachable while it fires, so an entry may still cancel or move a later
      // entry of the same tick (a Set skips members deleted before they are visited). Nothing
      // can join it: schedule() never picks a slot at or before lastTick.
      for (const entry of bucket) {
        bucket.delete(entry);
        entry.timerSlot = -1;
        this.count--;
        try {
          entry.onTimer(now);
        } catch {
          // An entry's failure must not stop the others; entries log their own errors.
        }
      }
      this.buckets.delete(slot);
    }
    this.lastTick = Math.max(this.lastTick, current);
    if (this.count === 0) this.stop();
  }

  /** Cancels everything (used when the gateway closes). */
  clear(): void {
    for (const bucket of this.buckets.values()) for (const entry of bucket) entry.timerSlot = -1;
    this.buckets.clear();
    this.count = 0;
    this.stop();
  }

  private start(): void {
    if (this.interval !== null || !this.autoTick) return;
    this.lastTick = Math.max(this.lastTick, Math.floor(this.clock() / this.tickMs) - 1);
    this.interval = setInterval(() => this.advance(), this.tickMs);
    this.interval.unref();
  }

  private stop(): void {
    if (this.interval === null) return;
    clearInterval(this.interval);
    this.interval = null;
  }
}

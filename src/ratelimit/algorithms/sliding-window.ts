import { ceilMs, NeverSatisfiableError, type Algorithm, type Decision } from '../types.js';

export interface SlidingWindowState {
  /** Start of the current aligned window. */
  start: number;
  prev: number;
  curr: number;
}

const EPSILON = 1e-9;

/**
 * Sliding-window counter: O(1) state for large limits. The count at `now` weighs the previous
 * window by the part of it still inside the trailing window: prev·(1 − elapsed/W) + curr. It
 * assumes hits were spread evenly over the previous window; adversarial timing can reach 2·limit.
 */
export class SlidingWindow implements Algorithm<SlidingWindowState> {
  readonly name = 'sliding_window';

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** A hit weighs in its own window and, shrinking, through the next one. */
  get horizonMs(): number {
    return 2 * this.windowMs;
  }

  create(): SlidingWindowState {
    return { start: 0, prev: 0, curr: 0 };
  }

  /** Moves to the window of `now`; an earlier time (clock skew between nodes) stays in the current one. */
  private roll(state: SlidingWindowState, now: number): void {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    if (start <= state.start) return;
    state.prev = start - state.start === this.windowMs ? state.curr : 0;
    state.curr = 0;
    state.start = start;
  }

  private count(state: SlidingWindowState, now: number): number {
    const elapsed = Math.min(this.windowMs, Math.max(0, now - state.start));
    return state.prev * (1 - elapsed / this.windowMs) + state.curr;
  }

  peek(state: SlidingWindowState, now: number, cost: number, out: Decision): void {
    if (cost > this.limit)
      throw new NeverSatisfiableError(`cost ${cost} exceeds the limit ${this.limit}`);
    this.roll(state, now);
    const count = this.count(state, now);
    out.limit = this.limit;
    out.windowMs = this.windowMs;
    out.resetMs = ceilMs(state.start + this.windowMs - now);
    if (count + cost <= this.limit + EPSILON) {
      out.allowed = true;
      out.remaining = Math.max(0, Math.floor(this.limit - count - cost + EPSILON));
      out.retryAfterMs = 0;
    } else {
      out.allowed = false;
      out.remaining = Math.max(0, Math.floor(this.limit - count + EPSILON));
      out.retryAfterMs = Math.max(1, ceilMs(this.wait(state, now, cost)));
    }
  }

  /** Time until, with no more traffic, the count leaves room for `cost`. */
  private wait(state: SlidingWindowState, now: number, cost: number): number {
    // A time before the current window (another node's clock) waits for that window to start.
    if (now < state.start) return state.start - now + this.wait(state, state.start, cost);
    const room = this.limit - cost;
    const elapsed = now - state.start;
    // Within the current window the previous window's weight keeps shrinking.
    if (state.curr <= room && state.prev > 0) {
      const untilFits = this.windowMs * (1 - (room - state.curr) / state.prev) - elapsed;
      if (untilFits <= this.windowMs - elapsed) return Math.max(0, untilFits);
    }
    // Otherwise in the next window, where the current count becomes the shrinking one.
    const toNext = this.windowMs - elapsed;
    const inNext = state.curr > room ? this.windowMs * (1 - room / state.curr) : 0;
    return toNext + Math.max(0, inNext);
  }

  commit(state: SlidingWindowState, now: number, cost: number): void {
    this.roll(state, now);
    state.curr += cost;
  }

  refund(state: SlidingWindowState, at: number, cost: number): void {
    const start = Math.floor(at / this.windowMs) * this.windowMs;
    if (start === state.start) state.curr = Math.max(0, state.curr - cost);
    else if (start === state.start - this.windowMs) state.prev = Math.max(0, state.prev - cost);
  }

  apply(state: SlidingWindowState, at: number, cost: number): void {
    const start = Math.floor(at / this.windowMs) * this.windowMs;
    if (start > state.start) this.roll(state, at);
    if (start === state.start) state.curr += cost;
    else if (start === state.start - this.windowMs) state.prev += cost;
  }

  expiresAt(state: SlidingWindowState): number {
    return state.start + 2 * this.windowMs;
  }

  encode(state: SlidingWindowState): [number, number, number] {
    return [state.start, state.prev, state.curr];
  }

  decode(value: unknown): SlidingWindowState | null {
    if (
      !Array.isArray(value) ||
      value.length !== 3 ||
      !value.every((v) => typeof v === 'number' && Number.isFinite(v))
    )
      return null;
    return { start: value[0] as number, prev: value[1] as number, curr: value[2] as number };
  }
}

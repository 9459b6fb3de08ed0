import {
  ceilMs,
  NeverSatisfiableError,
  waitUntil,
  type Algorithm,
  type Decision,
} from '../types.js';

export interface FixedWindowState {
  start: number;
  count: number;
}

/**
 * Fixed window (PlugLimit's default): `limit` per window aligned to multiples of `windowMs`.
 * Cheap, but up to 2·limit can pass around a boundary.
 */
export class FixedWindow implements Algorithm<FixedWindowState> {
  readonly name = 'fixed_window';

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  get horizonMs(): number {
    return this.windowMs;
  }

  create(): FixedWindowState {
    return { start: 0, count: 0 };
  }

  /** Moves to the window of `now`; an earlier time (clock skew between nodes) stays in the current one. */
  private roll(state: FixedWindowState, now: number): void {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    if (start > state.start) {
      state.start = start;
      state.count = 0;
    }
  }

  peek(state: FixedWindowState, now: number, cost: number, out: Decision): void {
    if (cost > this.limit)
      throw new NeverSatisfiableError(`cost ${cost} exceeds the limit ${this.limit}`);
    this.roll(state, now);
    const end = state.start + this.windowMs;
    out.limit = this.limit;
    out.windowMs = this.windowMs;
    out.resetMs = ceilMs(end - now);
    if (state.count + cost <= this.limit) {
      out.allowed = true;
      out.remaining = this.limit - state.count - cost;
      out.retryAfterMs = 0;
    } else {
      out.allowed = false;
      out.remaining = Math.max(0, this.limit - state.count);
      out.retryAfterMs = Math.max(1, waitUntil(end, now));
    }
  }

  commit(state: FixedWindowState, now: number, cost: number): void {
    this.roll(state, now);
    state.count += cost;
  }

  refund(state: FixedWindowState, at: number, cost: number): void {
    if (Math.floor(at / this.windowMs) * this.windowMs === state.start)
      state.count = Math.max(0, state.count - cost);
  }

  apply(state: FixedWindowState, at: number, cost: number): void {
    const start = Math.floor(at / this.windowMs) * this.windowMs;
    if (start > state.start) {
      state.start = start;
      state.count = cost;
    } else if (start === state.start) {
      state.count += cost;
    }
  }

  expiresAt(state: FixedWindowState): number {
    return state.start + this.windowMs;
  }

  encode(state: FixedWindowState): [number, number] {
    return [state.start, state.count];
  }

  decode(value: unknown): FixedWindowState | null {
    if (
      !Array.isArray(value) ||
      value.length !== 2 ||
      !value.every((v) => typeof v === 'number' && Number.isFinite(v))
    )
      return null;
    return { start: value[0] as number, count: value[1] as number };
  }
}

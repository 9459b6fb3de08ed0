import {
  ceilMs,
  NeverSatisfiableError,
  waitUntil,
  type Algorithm,
  type Decision,
} from '../types.js';

/** The last `limit` hit times, oldest first, in a ring that grows (up to `limit`) as hits come. */
export interface SlidingLogState {
  ring: Float64Array;
  head: number;
  size: number;
}

/**
 * A key's ring starts this small and doubles when full, up to the limit: a policy of 10 000 per
 * hour must not cost 80 KB for every key that made one request.
 */
export const SLIDING_LOG_INITIAL_CAPACITY = 8;

/**
 * Sliding log: at most `limit` in ANY trailing window (exact). Keeps up to `limit` timestamps
 * per key; a hit at `t` counts while `t > now - window` (the window end is exclusive).
 */
export class SlidingLog implements Algorithm<SlidingLogState> {
  readonly name = 'sliding_log';

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  get horizonMs(): number {
    return this.windowMs;
  }

  create(): SlidingLogState {
    return {
      ring: new Float64Array(Math.min(this.limit, SLIDING_LOG_INITIAL_CAPACITY)),
      head: 0,
      size: 0,
    };
  }

  private at(state: SlidingLogState, index: number): number {
    return state.ring[(state.head + index) % state.ring.length]!;
  }

  /** Doubles the ring (up to the limit), oldest hit first at index 0. */
  private grow(state: SlidingLogState): void {
    const next = new Float64Array(Math.min(this.limit, state.ring.length * 2));
    for (let i = 0; i < state.size; i++) next[i] = this.at(state, i);
    state.ring = next;
    state.head = 0;
  }

  /** Drops hits that left the window: hit + window ≤ now (the same sum the waits use). */
  private trim(state: SlidingLogState, now: number): void {
    while (state.size > 0 && state.ring[state.head]! + this.windowMs <= now) {
      state.head = (state.head + 1) % state.ring.length;
      state.size--;
    }
  }

  peek(state: SlidingLogState, now: number, cost: number, out: Decision): void {
    if (cost > this.limit)
      throw new NeverSatisfiableError(`cost ${cost} exceeds the limit ${this.limit}`);
    this.trim(state, now);
    out.limit = this.limit;
    out.windowMs = this.windowMs;
    const used = state.size;
    if (used + cost <= this.limit) {
      out.allowed = true;
      out.remaining = this.limit - used - cost;
      out.retryAfterMs = 0;
      // More quota comes back when the oldest counted hit leaves the window (this one, if alone).
      out.resetMs = ceilMs((used > 0 ? this.at(state, 0) : now) + this.windowMs - now);
    } else {
      out.allowed = false;
      out.remaining = Math.max(0, this.limit - used);
      // Wait until enough of the oldest hits have left: the (used + cost - limit)-th oldest.
      const leaving = this.at(state, used + cost - this.limit - 1);
      out.retryAfterMs = Math.max(1, waitUntil(leaving + this.windowMs, now));
      out.resetMs = ceilMs(this.at(state, 0) + this.windowMs - now);
    }
  }

  commit(state: SlidingLogState, now: number, cost: number): void {
    for (let i = 0; i < cost; i++) this.insert(state, now);
  }

  refund(state: SlidingLogState, at: number, cost: number): void {
    for (let i = 0; i < cost; i++) {
      // Remove the newest hit recorded at `at` (the one a rollback added).
      for (let index = state.size - 1; index >= 0; index--) {
        if (this.at(state, index) !== at) continue;
        for (let j = index; j < state.size - 1; j++)
          state.ring[(state.head + j) % state.ring.length] = this.at(state, j + 1);
        state.size--;
        break;
      }
    }
  }

  apply(state: SlidingLogState, at: number, cost: number): void {
    for (let i = 0; i < cost; i++) this.insert(state, at);
  }

  /** Inserts keeping time order; when full, the oldest hit is the one to go (it expires first). */
  private insert(state: SlidingLogState, at: number): void {
    if (state.size === this.limit) {
      if (at <= state.ring[state.head]!) return; // older than everything kept: cannot change a decision
      state.head = (state.head + 1) % state.ring.length;
      state.size--;
    } else if (state.size === state.ring.length) {
      this.grow(state);
    }
    const capacity = state.ring.length;
    let index = state.size;
    while (index > 0 && this.at(state, index - 1) > at) {
      state.ring[(state.head + index) % capacity] = this.at(state, index - 1);
      index--;
    }
    state.ring[(state.head + index) % capacity] = at;
    state.size++;
  }

  expiresAt(state: SlidingLogState): number {
    return state.size === 0 ? 0 : this.at(state, state.size - 1) + this.windowMs;
  }

  encode(state: SlidingLogState): number[] {
    const out: number[] = [];
    for (let i = 0; i < state.size; i++) out.push(this.at(state, i));
    return out;
  }

  decode(value: unknown): SlidingLogState | null {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v)))
      return null;
    const state = this.create();
    for (const at of (value as number[]).slice().sort((a, b) => a - b)) this.insert(state, at);
    return state;
  }
}

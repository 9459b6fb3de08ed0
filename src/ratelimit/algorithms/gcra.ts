import { ceilMs, NeverSatisfiableError, type Algorithm, type Decision } from '../types.js';

/** The theoretical arrival time of the next request. */
export interface GcraState {
  tat: number;
}

/**
 * GCRA (a token bucket as one number): `limit` per `windowMs` on average, bursts of up to
 * `burst`. Emission interval T = window / limit; a request of cost c at `now` is allowed when
 * max(TAT, now) + c·T − now ≤ burst·T.
 */
export class Gcra implements Algorithm<GcraState> {
  readonly name = 'gcra';
  /** ms per unit. */
  readonly interval: number;
  /** burst · interval: how far TAT may run ahead of now. */
  private readonly tolerance: number;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    readonly burst: number = limit,
  ) {
    this.interval = windowMs / limit;
    this.tolerance = burst * this.interval;
  }

  /** A hit moves TAT by one interval; TAT runs at most `burst` intervals ahead. */
  get horizonMs(): number {
    return Math.max(this.windowMs, this.tolerance);
  }

  create(): GcraState {
    return { tat: 0 };
  }

  peek(state: GcraState, now: number, cost: number, out: Decision): void {
    if (cost > this.burst)
      throw new NeverSatisfiableError(`cost ${cost} exceeds the burst ${this.burst}`);
    const base = state.tat > now ? state.tat : now;
    const next = base + cost * this.interval;
    const ahead = next - now;
    out.limit = this.limit;
    out.windowMs = this.windowMs;
    if (ahead <= this.tolerance + 1e-9) {
      out.allowed = true;
      out.remaining = Math.max(0, Math.floor((this.tolerance - ahead) / this.interval + 1e-9));
      out.retryAfterMs = 0;
      // One more unit frees up every interval.
      out.resetMs = ceilMs(Math.min(ahead, this.interval));
    } else {
      out.allowed = false;
      const used = base - now;
      out.remaining = Math.max(0, Math.floor((this.tolerance - used) / this.interval + 1e-9));
      out.retryAfterMs = Math.max(1, ceilMs(ahead - this.tolerance));
      out.resetMs = out.retryAfterMs;
    }
  }

  commit(state: GcraState, now: number, cost: number): void {
    state.tat = (state.tat > now ? state.tat : now) + cost * this.interval;
  }

  refund(state: GcraState, at: number, cost: number): void {
    state.tat = Math.max(at, state.tat - cost * this.interval);
  }

  apply(state: GcraState, at: number, cost: number): void {
    this.commit(state, at, cost);
  }

  expiresAt(state: GcraState): number {
    return state.tat;
  }

  encode(state: GcraState): number {
    return state.tat;
  }

  decode(value: unknown): GcraState | null {
    return typeof value === 'number' && Number.isFinite(value) ? { tat: value } : null;
  }
}

import type { Logger } from 'pino';
import { ThrottledWarning } from '../../cluster/throttled-warning.js';
import type { KeyBudget } from '../tiers/links.js';
import { MAX_OUT_OF_ORDER_BATCHES, type EventualStats } from './eventual-options.js';

/** What we know of one peer's batches: all ≤ watermark handled, plus some above it. */
export interface OriginState {
  watermark: number;
  readonly above: Set<number>;
  /** A replay for this origin is in flight until then (wall clock); 0 when none. */
  replayUntil: number;
  lastHeard: number;
  /** It said bye: it will not speak again, so it goes first when maxOrigins is reached. */
  left: boolean;
  /** The keys its hits created here (maxKeysPerOrigin). */
  readonly budget: KeyBudget;
}

/**
 * The peers whose hit batches this node receives, by origin id: what of each origin's batch
 * sequence was handled, its replay in flight, and its key budget. At most `maxOrigins` are
 * remembered; one that said bye makes room for a new one.
 */
export class Origins {
  private readonly origins = new Map<string, OriginState>();
  private readonly warning = new ThrottledWarning();

  constructor(
    private readonly maxOrigins: number,
    private readonly maxKeysPerOrigin: number,
    /** Warm-up on: a peer's batches are wanted from its first one. */
    private readonly warmup: boolean,
    private readonly wall: () => number,
    private readonly stats: EventualStats,
    private readonly logger: Logger,
  ) {}

  /** Origins remembered (memory diagnostics). */
  get size(): number {
    return this.origins.size;
  }

  /** A known origin, without remembering a new one. */
  get(id: string): OriginState | undefined {
    return this.origins.get(id);
  }

  /**
   * What we know of an origin; a new one is remembered only while fewer than maxOrigins are
   * (one that said bye makes room): null when it is to be ignored.
   */
  state(id: string, seqSeen: number, live: boolean): OriginState | null {
    let state = this.origins.get(id);
    if (!state) {
      if (this.origins.size >= this.maxOrigins && !this.forgetDeparted()) {
        this.stats.ignoredOrigins++;
        this.warning.warn(
          this.logger,
          { origin: id, maxOrigins: this.maxOrigins, ignoredOrigins: this.stats.ignoredOrigins },
          'rate-limit message from a new origin ignored: eventual.maxOrigins origins already known',
        );
        return null;
      }
      // Without warm-up a peer first heard mid-stream is taken from here on.
      const watermark = this.warmup || !live ? 0 : Math.max(0, seqSeen - 1);
      state = {
        watermark,
        above: new Set(),
        replayUntil: 0,
        lastHeard: this.wall(),
        left: false,
        budget: { keys: 0, maxKeys: this.maxKeysPerOrigin },
      };
      this.origins.set(id, state);
    }
    return state;
  }

  /** Forgets one origin that said bye (it never speaks again); false when none did. */
  private forgetDeparted(): boolean {
    for (const [id, state] of this.origins)
      if (state.left) {
        this.origins.delete(id);
        return true;
      }
    return false;
  }

  /** Forgets origins not heard from for longer than `afterMs`. */
  forgetSilent(afterMs: number): void {
    const now = this.wall();
    for (const [id, state] of this.origins)
      if (now - state.lastHeard > afterMs) this.origins.delete(id);
  }
}

/** Moves an origin's watermark over the batches handled above it. */
export function advance(state: OriginState): void {
  while (state.above.delete(state.watermark + 1)) state.watermark++;
  if (state.above.size <= MAX_OUT_OF_ORDER_BATCHES) return;
  // Too many batches wait behind a gap: give the oldest gap up (its batches count as gone).
  let lowest = Number.POSITIVE_INFINITY;
  for (const seq of state.above) if (seq < lowest) lowest = seq;
  state.watermark = lowest - 1;
  while (state.above.delete(state.watermark + 1)) state.watermark++;
}

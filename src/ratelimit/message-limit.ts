import { Gcra, type GcraState } from './algorithms/gcra.js';
import { emptyDecision, type Decision } from './types.js';

export interface MessageRateOptions {
  /** Messages per window per socket. */
  limit: number;
  windowMs: number;
  /** Burst allowance. Default: limit. */
  burst?: number;
  /** Denials tolerated within floodWindowMs; one more is a flood and closes the socket. Default 50. */
  floodDenials?: number;
  floodWindowMs?: number;
}

export const MESSAGE_RATE_DEFAULTS: Required<MessageRateOptions> = {
  limit: 1000,
  windowMs: 1000,
  burst: 1000,
  floodDenials: 50,
  floodWindowMs: 10_000,
};

/** The policy name clients and logs see for per-socket message limits. */
export const MESSAGE_POLICY = 'socket_messages';

/**
 * Per-socket message rate (GCRA): messages over the rate are answered with a rate-limited error
 * and dropped; a socket that keeps going (more than floodDenials denials within floodWindowMs) is a flood
 * and gets closed. Below that threshold a socket is never closed for rate limits.
 */
export class MessageRate {
  private readonly gcra: Gcra;
  private readonly state: GcraState;
  private readonly denials: Float64Array;
  private denialHead = 0;
  private denialCount = 0;
  readonly decision: Decision = emptyDecision();

  constructor(private readonly options: Required<MessageRateOptions>) {
    this.gcra = new Gcra(options.limit, options.windowMs, options.burst);
    this.state = this.gcra.create();
    this.denials = new Float64Array(options.floodDenials);
  }

  /** 'ok', 'denied' (reply with `decision`), or 'flood' (close the socket). */
  check(now: number): 'ok' | 'denied' | 'flood' {
    this.gcra.peek(this.state, now, 1, this.decision);
    if (this.decision.allowed) {
      this.gcra.commit(this.state, now, 1);
      return 'ok';
    }
    // A ring of the last floodDenials denial times: this denial is a flood when the oldest of
    // them is still within the window (floodDenials + 1 denials in it).
    const size = this.denials.length;
    const oldest = this.denialCount === size ? this.denials[this.denialHead]! : Number.NEGATIVE_INFINITY;
    this.denials[this.denialHead] = now;
    this.denialHead = (this.denialHead + 1) % size;
    if (this.denialCount < size) this.denialCount++;
    return this.denialCount === size && now - oldest <= this.options.floodWindowMs ? 'flood' : 'denied';
  }
}

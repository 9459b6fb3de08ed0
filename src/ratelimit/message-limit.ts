import { Gcra, type GcraState } from './algorithms/gcra.js';
import { emptyDecision, type Decision } from './types.js';

/** Messages per socket (`SocketOptions.messageRate`): a GCRA limit and flood detection. */
export interface MessageRateOptions {
  /** Messages per window per socket. */
  limit: number;
  /** The window in ms. */
  windowMs: number;
  /** Burst allowance. Default: limit. */
  burst?: number;
  /** Denials tolerated within floodWindowMs; one more is a flood and closes the socket. Default 50. */
  floodDenials?: number;
  /** The window of `floodDenials` in ms. Default 10 000. */
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

/** What every socket of one mount shares: the algorithm (configuration only) and a scratch decision. */
interface SharedRate {
  readonly gcra: Gcra;
  readonly decision: Decision;
}

const shared = new WeakMap<Required<MessageRateOptions>, SharedRate>();

function sharedFor(options: Required<MessageRateOptions>): SharedRate {
  let rate = shared.get(options);
  if (!rate) {
    rate = {
      gcra: new Gcra(options.limit, options.windowMs, options.burst),
      decision: emptyDecision(),
    };
    shared.set(options, rate);
  }
  return rate;
}

/**
 * Per-socket message rate (GCRA): messages over the rate are answered with a rate-limited error
 * and dropped; a socket that keeps going (more than floodDenials denials within floodWindowMs) is a flood
 * and gets closed. Below that threshold a socket is never closed for rate limits.
 *
 * Every joined socket carries one, so it is kept small: the GCRA state is this object's own
 * `tat`, the algorithm and the decision are shared by the sockets with the same options (the
 * decision is read right after `check`, before any other socket runs), and the ring of denial
 * times exists only once the socket has been denied.
 */
export class MessageRate implements GcraState {
  tat = 0;
  private readonly shared: SharedRate;
  private denials: Float64Array | null = null;
  private denialHead = 0;
  private denialCount = 0;

  constructor(private readonly options: Required<MessageRateOptions>) {
    this.shared = sharedFor(options);
  }

  /** The decision of the last `check` (valid until the next check of any socket with these options). */
  get decision(): Decision {
    return this.shared.decision;
  }

  /** 'ok', 'denied' (reply with `decision`), or 'flood' (close the socket). */
  check(now: number): 'ok' | 'denied' | 'flood' {
    const { gcra, decision } = this.shared;
    gcra.peek(this, now, 1, decision);
    if (decision.allowed) {
      gcra.commit(this, now, 1);
      return 'ok';
    }
    // A ring of the last floodDenials denial times: this denial is a flood when the oldest of
    // them is still within the window (floodDenials + 1 denials in it).
    const denials = (this.denials ??= new Float64Array(this.options.floodDenials));
    const size = denials.length;
    const oldest = this.denialCount === size ? denials[this.denialHead]! : Number.NEGATIVE_INFINITY;
    denials[this.denialHead] = now;
    this.denialHead = (this.denialHead + 1) % size;
    if (this.denialCount < size) this.denialCount++;
    return this.denialCount === size && now - oldest <= this.options.floodWindowMs
      ? 'flood'
      : 'denied';
  }
}

import type { Msg, MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { ThrottledWarning } from '../../cluster/throttled-warning.js';
import type { Signer } from './signing.js';

/** Default of `eventual.signedMaxAgeMs`: how far a signed request's or heartbeat's time may be from ours. */
export const SIGNED_MAX_AGE_MS = 60_000;

/**
 * Request inboxes remembered as answered (replay protection of signed sync and replay requests).
 * Only signed requests add one, and each stays at most 2 × signedMaxAgeMs; a cluster asks a
 * handful per partition or start, so the cap only bites on a peer gone wrong: its requests are
 * then refused (counted as replays) until old entries expire.
 */
export const MAX_ANSWERED_REQUESTS = 10_000;

/** Counters of the cluster messages refused on receipt. */
export interface GuardStats {
  /** Messages without a valid signature (a cluster secret is set): forged, or another secret. */
  rejected: number;
  /** Signed messages refused as replays: too old or too far ahead, or already answered. */
  replays: number;
}

/**
 * Authentication of the rate-limit cluster messages on `<p>.rl.>` (protocol/ratelimit.md §5.4).
 * With a signer (`rateLimits.clusterSecret`) every message sent is signed and every message
 * received must be; signed requests are also answered once and only while fresh, so a captured
 * one cannot be replayed to make every node resend its batches. Without a signer every check
 * passes: the cluster then relies on NATS permissions alone.
 */
export class ClusterGuard {
  readonly stats: GuardStats = { rejected: 0, replays: 0 };
  /** Answered request inboxes → when they may be forgotten (wall clock); insertion-ordered. */
  private readonly answered = new Map<string, number>();
  private readonly rejectWarning = new ThrottledWarning();
  private readonly replayWarning = new ThrottledWarning();

  constructor(
    private readonly signer: Signer | null,
    private readonly logger: Logger,
    /** `eventual.signedMaxAgeMs`. */
    private readonly maxAgeMs: number = SIGNED_MAX_AGE_MS,
    private readonly wall: () => number = Date.now,
  ) {}

  /** Whether messages are signed and checked. */
  get signing(): boolean {
    return this.signer !== null;
  }

  /** The signature headers of a message to `subject` (with `reply`: a request), or undefined. */
  headers(subject: string, data: Uint8Array, reply?: string): MsgHdrs | undefined {
    return this.signer?.headers(subject, data, reply);
  }

  /** Publishes `data` on `subject`, signed when a secret is set. Throws when the connection is closed. */
  publish(nc: NatsConnection, subject: string, data: Uint8Array, reply?: string): void {
    const headers = this.headers(subject, data, reply);
    if (headers === undefined && reply === undefined) nc.publish(subject, data);
    else
      nc.publish(subject, data, {
        ...(headers ? { headers } : {}),
        ...(reply === undefined ? {} : { reply }),
      });
  }

  /** Whether a received message may be read: signed right, or no secret set. Counts and warns. */
  accept(msg: Msg): boolean {
    if (!this.signer || this.signer.verify(msg)) return true;
    this.stats.rejected++;
    // A forger (or a gateway with another secret) could flood the log: one line per interval.
    this.rejectWarning.warn(
      this.logger,
      { subject: msg.subject, rejected: this.stats.rejected },
      'rate-limit cluster message refused: missing or wrong signature (not a gateway, or rateLimits.clusterSecret differs)',
    );
    return false;
  }

  /**
   * Whether a signed message stamped `t` (sender's wall clock) is recent enough to act on: older
   * (or further ahead) than signedMaxAgeMs is a replay, or a clock beyond repair. Always true
   * without a secret.
   */
  fresh(t: number | undefined, subject: string): boolean {
    if (!this.signer) return true;
    if (t !== undefined && Math.abs(this.wall() - t) <= this.maxAgeMs) return true;
    this.replay(subject, t === undefined ? 'no time' : 'too old or too far ahead');
    return false;
  }

  /**
   * Whether a signed request (stamped `t`, answered to `inbox`) is to be answered: fresh, and
   * the first time this inbox asks. Always true without a secret.
   */
  answerOnce(inbox: string, t: number | undefined, subject: string): boolean {
    if (!this.signer) return true;
    if (!this.fresh(t, subject)) return false;
    const now = this.wall();
    for (const [seen, until] of this.answered) {
      if (until > now) break;
      this.answered.delete(seen);
    }
    if (this.answered.has(inbox) || this.answered.size >= MAX_ANSWERED_REQUESTS) {
      this.replay(subject, this.answered.has(inbox) ? 'already answered' : 'too many requests');
      return false;
    }
    // Entries are filed in arrival order with the same lifetime: the oldest expire first.
    this.answered.set(inbox, now + 2 * this.maxAgeMs);
    return true;
  }

  /** Counts a signed message refused as a replay (and warns, throttled). */
  replay(subject: string, why: string): void {
    this.stats.replays++;
    this.replayWarning.warn(
      this.logger,
      { subject, why, replays: this.stats.replays },
      'rate-limit cluster message refused as a replay',
    );
  }
}

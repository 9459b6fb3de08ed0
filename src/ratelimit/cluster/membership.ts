import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { decodeHeartbeat, encode, type Heartbeat } from './messages.js';

/** Cluster membership heartbeats for eventual mode (`RateLimitsOptions.eventual`). */
export interface MembershipOptions {
  /** Heartbeat period: a healed partition is noticed within one (§5.2). Default 500 ms. */
  heartbeatMs?: number;
  /** A peer silent for this many heartbeats is no longer counted. Default 3. */
  missedHeartbeats?: number;
  /** A peer whose wall clock differs from ours by more is logged (once, until it is back under). Default 500 ms. */
  maxSkewMs?: number;
}

interface Peer {
  lastHeard: number;
  /** Wall-clock difference peer − us at the last heartbeat (transit time included). */
  skewMs: number;
  /** Its skew is above maxSkewMs (warned). */
  skewed: boolean;
}

/**
 * Which gateway nodes are alive: every node publishes a heartbeat on `<prefix>.rl.node` carrying
 * its last batch number; peers heard within `missedHeartbeats` periods count. The count sizes the
 * `local` fallback's share (ceil(limit / nodes)); the batch number lets peers notice batches they
 * missed.
 */
export class Membership {
  private readonly peers = new Map<string, Peer>();
  private readonly heartbeatMs: number;
  private readonly staleMs: number;
  private readonly skewLimitMs: number;
  private timer: NodeJS.Timeout | null = null;
  private sub: Subscription | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly origin: string,
    /** The last batch this node published. */
    private readonly lastSeq: () => number,
    private readonly onHeartbeat: (heartbeat: Heartbeat) => void,
    private readonly logger: Logger,
    options: MembershipOptions = {},
    private readonly clock: () => number = Date.now,
    /** Carried in heartbeats: the digest of the runtime policy changes (undefined: none). */
    private readonly policyDigest: () => string | undefined = () => undefined,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 500;
    this.staleMs = this.heartbeatMs * (options.missedHeartbeats ?? 3);
    this.skewLimitMs = options.maxSkewMs ?? 500;
  }

  start(): void {
    this.sub = this.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err) return;
        const heartbeat = decodeHeartbeat(msg.data);
        if (!heartbeat || heartbeat.o === this.origin) return;
        if (heartbeat.bye) {
          if (this.peers.delete(heartbeat.o))
            this.logger.info({ peer: heartbeat.o }, 'rate-limit peer left');
        } else {
          const now = this.clock();
          const known = this.peers.get(heartbeat.o);
          if (!known) this.logger.info({ peer: heartbeat.o }, 'rate-limit peer joined');
          const skewMs = heartbeat.t - now;
          const skewed = Math.abs(skewMs) > this.skewLimitMs;
          // Skewed clocks move hits in time (protocol/ratelimit.md §4): say so once per episode.
          if (skewed && !known?.skewed)
            this.logger.warn(
              { peer: heartbeat.o, skewMs, maxSkewMs: this.skewLimitMs },
              'rate-limit peer clock skew above maxSkewMs',
            );
          else if (!skewed && known?.skewed)
            this.logger.info(
              { peer: heartbeat.o, skewMs },
              'rate-limit peer clock skew back under maxSkewMs',
            );
          this.peers.set(heartbeat.o, { lastHeard: now, skewMs, skewed });
        }
        this.onHeartbeat(heartbeat);
      },
    });
    this.beat();
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  private beat(): void {
    const digest = this.policyDigest();
    this.publish(
      digest === undefined
        ? { o: this.origin, s: this.lastSeq(), t: this.clock() }
        : { o: this.origin, s: this.lastSeq(), t: this.clock(), p: digest },
    );
    const now = this.clock();
    for (const [id, peer] of this.peers) {
      if (now - peer.lastHeard > this.staleMs) {
        this.peers.delete(id);
        this.logger.warn({ peer: id }, 'rate-limit peer silent; no longer counted');
      }
    }
  }

  private publish(heartbeat: Heartbeat): void {
    try {
      this.nc.publish(this.subject, encode(heartbeat));
    } catch {
      // Closed or draining: peers will notice the silence.
    }
  }

  /** Live nodes, this one included. */
  nodes(): number {
    const now = this.clock();
    let alive = 1;
    for (const peer of this.peers.values()) if (now - peer.lastHeard <= this.staleMs) alive++;
    return alive;
  }

  /**
   * How far a peer's wall clock runs ahead of ours, from its last heartbeat (ms; 0 when unknown).
   * The transit time makes it read slightly low, which dates the peer's hits slightly later:
   * the safe side.
   */
  offsetOf(peer: string): number {
    return this.peers.get(peer)?.skewMs ?? 0;
  }

  /** Largest wall-clock difference seen to a live peer (ms, absolute). */
  maxSkewMs(): number {
    let max = 0;
    for (const peer of this.peers.values()) max = Math.max(max, Math.abs(peer.skewMs));
    return max;
  }

  peerIds(): string[] {
    return [...this.peers.keys()];
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.publish({ o: this.origin, s: this.lastSeq(), t: this.clock(), bye: true });
    this.sub?.unsubscribe();
    this.sub = null;
  }
}

import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { ThrottledWarning } from '../../cluster/throttled-warning.js';
import { ClusterGuard, SIGNED_MAX_AGE_MS } from './guard.js';
import { decodeHeartbeat, encode, type Heartbeat } from './messages.js';

/** Cluster membership heartbeats for eventual mode (`RateLimitsOptions.eventual`). */
export interface MembershipOptions {
  /** Heartbeat period: a healed partition is noticed within one (§5.2). Default 500 ms. */
  heartbeatMs?: number;
  /** A peer silent for this many heartbeats is no longer counted. Default 3. */
  missedHeartbeats?: number;
  /** A peer whose wall clock differs from ours by more is logged (once, until it is back under). Default 500 ms. */
  maxSkewMs?: number;
  /**
   * Peer gateways (origins) remembered at once, by membership and by the eventual tier each; a
   * new one beyond it is ignored (`ignoredOrigins`, a warning per 10 s) until one leaves (bye) or
   * is forgotten. Every process start is a new origin: size it for the gateways plus their
   * restarts within the longest eventual horizon + 10 min. Default 256 (`DEFAULT_MAX_ORIGINS`).
   */
  maxOrigins?: number;
  /**
   * With a cluster secret: signed heartbeats and sync/replay requests whose sender time differs
   * from ours by more than this are refused as replays (`replays`); so is a heartbeat not newer
   * (`n`) than the last one taken from its origin. Also the most clock skew between gateways
   * that a secret tolerates. Default 60 000 ms (`SIGNED_MAX_AGE_MS`).
   */
  signedMaxAgeMs?: number;
}

/** Default of `eventual.maxOrigins`. */
export const DEFAULT_MAX_ORIGINS = 256;

interface Peer {
  lastHeard: number;
  /** Wall-clock difference peer − us at the last heartbeat (transit time included). */
  skewMs: number;
  /** Its skew is above maxSkewMs (warned). */
  skewed: boolean;
  /** The count (`n`) of its last heartbeat taken (−1: it sent none). */
  count: number;
}

/**
 * Which gateway nodes are alive: every node publishes a heartbeat on `<prefix>.rl.node` carrying
 * its last batch number; peers heard within `missedHeartbeats` periods count. The count sizes the
 * `local` fallback's share (ceil(limit / nodes)); the batch number lets peers notice batches they
 * missed.
 */
export class Membership {
  private readonly peers = new Map<string, Peer>();
  /**
   * With a cluster secret: peers that left or fell silent, with their last heartbeat count, for
   * signedMaxAgeMs (a replay of their heartbeats must not bring them back; older ones are stale).
   */
  private readonly gone = new Map<string, { count: number; until: number }>();
  private readonly maxOrigins: number;
  private readonly originWarning = new ThrottledWarning();
  private readonly maxAgeMs: number;
  private beats = 0;
  /** New peers ignored because maxOrigins peers were live. */
  ignoredOrigins = 0;
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
    /** Signs heartbeats and checks received ones (a pass-through without a cluster secret). */
    private readonly guard: ClusterGuard = new ClusterGuard(null, logger),
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 500;
    this.staleMs = this.heartbeatMs * (options.missedHeartbeats ?? 3);
    this.skewLimitMs = options.maxSkewMs ?? 500;
    this.maxOrigins = options.maxOrigins ?? DEFAULT_MAX_ORIGINS;
    this.maxAgeMs = options.signedMaxAgeMs ?? SIGNED_MAX_AGE_MS;
  }

  start(): void {
    this.sub = this.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (!err) this.receive(msg);
      },
    });
    this.beat();
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  /**
   * With a cluster secret, whether a signed heartbeat is new: sent within signedMaxAgeMs, and
   * counted above the last one taken from its origin (a replayed heartbeat, or a replayed bye,
   * changes nothing).
   */
  private current(heartbeat: Heartbeat, subject: string): boolean {
    if (!this.guard.signing) return true;
    if (!this.guard.fresh(heartbeat.t, subject)) return false;
    const last = this.peers.get(heartbeat.o)?.count ?? this.gone.get(heartbeat.o)?.count ?? -1;
    if (heartbeat.n !== undefined && heartbeat.n > last) return true;
    this.guard.replay(subject, 'heartbeat not newer than the last one');
    return false;
  }

  private leave(id: string, count: number): void {
    this.peers.delete(id);
    if (this.guard.signing) this.gone.set(id, { count, until: this.clock() + this.maxAgeMs });
  }

  private receive(msg: Msg): void {
    if (!this.guard.accept(msg)) return;
    const heartbeat = decodeHeartbeat(msg.data);
    if (!heartbeat || heartbeat.o === this.origin || !this.current(heartbeat, msg.subject)) return;
    const count = heartbeat.n ?? -1;
    if (heartbeat.bye) {
      const left = this.peers.has(heartbeat.o);
      this.leave(heartbeat.o, count);
      if (left) this.logger.info({ peer: heartbeat.o }, 'rate-limit peer left');
    } else {
      const now = this.clock();
      const known = this.peers.get(heartbeat.o);
      if (!known && this.peers.size >= this.maxOrigins) {
        this.ignoredOrigins++;
        this.originWarning.warn(
          this.logger,
          { peer: heartbeat.o, maxOrigins: this.maxOrigins, ignoredOrigins: this.ignoredOrigins },
          'rate-limit peer ignored: eventual.maxOrigins peers already live',
        );
        return;
      }
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
      this.peers.set(heartbeat.o, { lastHeard: now, skewMs, skewed, count });
    }
    this.onHeartbeat(heartbeat);
  }

  private beat(): void {
    const digest = this.policyDigest();
    const heartbeat: Heartbeat = {
      o: this.origin,
      s: this.lastSeq(),
      t: this.clock(),
      n: ++this.beats,
    };
    if (digest !== undefined) heartbeat.p = digest;
    this.publish(heartbeat);
    const now = this.clock();
    for (const [id, peer] of this.peers) {
      if (now - peer.lastHeard > this.staleMs) {
        this.leave(id, peer.count);
        this.logger.warn({ peer: id }, 'rate-limit peer silent; no longer counted');
      }
    }
    for (const [id, gone] of this.gone) if (gone.until <= now) this.gone.delete(id);
  }

  private publish(heartbeat: Heartbeat): void {
    try {
      this.guard.publish(this.nc, this.subject, encode(heartbeat));
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
    this.publish({
      o: this.origin,
      s: this.lastSeq(),
      t: this.clock(),
      n: ++this.beats,
      bye: true,
    });
    this.sub?.unsubscribe();
    this.sub = null;
  }
}

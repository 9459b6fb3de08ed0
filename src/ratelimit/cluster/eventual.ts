import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Subjects } from '../../nats/subjects.js';
import { natsInbox } from '../../nats/connection.js';
import type { EventualTier } from '../limiter.js';
import type { Policy } from '../policy.js';
import {
  decodeReplayed,
  decodeReplayRequest,
  decodeSyncRequest,
  encode,
  type Heartbeat,
  type Hit,
  type HitBatch,
  type ReplayDone,
} from './messages.js';

/** Where remote hits go (the RateLimiter). */
export interface HitSink {
  /** Records a hit another node allowed, at its origin time; stale or unknown hits are dropped. */
  applyRemote(
    policyId: string,
    key: string,
    at: number,
    cost: number,
  ): 'applied' | 'over' | 'stale' | 'unknown';
  /** How long hits of a policy matter (its window), or null when the policy is unknown. */
  horizonOf(policyId: string): number | null;
  /** The longest horizon of the eventual policies (0 when there are none). */
  longestHorizonMs(): number;
}

/** Eventual mode: hit batching, warm-up and replay (`RateLimitsOptions.eventual`). */
export interface EventualOptions {
  /** Hits wait at most this long before their batch is published. Default 5 ms. */
  flushMs?: number;
  /** A batch is published early once its hits reach about this many bytes. Default 32 KiB. */
  maxBatchBytes?: number;
  /** Ask peers for their recent batches on start (and backfill peers first heard mid-stream). Default true. */
  warmup?: boolean;
  /** Own hits kept for peers that missed them, at most. Default 200 000. */
  retainHits?: number;
  /** How long to wait for a sync or replay answer. Default 2000 ms. */
  replayTimeoutMs?: number;
}

interface Retained {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly hits: number;
  /** After this (wall clock) no hit of the batch can change a decision. */
  readonly expiresAt: number;
}

/** What we know of one peer's batches: all ≤ watermark handled, plus some above it. */
interface OriginState {
  watermark: number;
  readonly above: Set<number>;
  /** A replay for this origin is in flight until then (wall clock); 0 when none. */
  replayUntil: number;
  lastHeard: number;
}

/** Counters of the eventual tier: hit batches published and received, duplicates, gaps, replays. */
export interface EventualStats {
  published: number;
  publishedHits: number;
  received: number;
  appliedHits: number;
  staleHits: number;
  unknownPolicyHits: number;
  duplicates: number;
  gaps: number;
  replayRequests: number;
  replayedBatches: number;
  syncs: number;
  /** True when the node started without warm-up (counts start empty; see protocol/ratelimit.md). */
  coldStart: boolean;
  /** Cold start: hits this node admitted before one longest horizon had passed (its overshoot is at most these). */
  coldAdmissions: number;
  /** Peers' hits that arrived for a key already at its limit here: cluster-wide overshoot as this node sees it. */
  overLimitHits: number;
}

/**
 * How long an origin stays remembered after its last message, beyond the longest horizon. An
 * origin is forgotten only once every hit we applied from it has been stale for this long: if it
 * speaks again (a partition longer than that) and replays from batch 1, each replayed hit we had
 * already counted is older than its horizon and is dropped, never counted twice.
 */
export const FORGET_ORIGIN_MS = 10 * 60_000;

/**
 * The `eventual` mode over NATS core: every node counts locally and publishes the hits it allowed
 * in batches (origin id, per-origin sequence, origin timestamps). Receivers skip their own batches,
 * drop duplicates by sequence and stale hits by age, and ask the origin to replay batches they
 * missed (a gap in the sequence, a partition that healed). A starting node asks every peer for its
 * recent batches, so it does not start with empty counters.
 */
export class EventualCluster implements EventualTier {
  private pending: Hit[] = [];
  private pendingBytes = 0;
  private pendingExpiry = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  private readonly retained: Retained[] = [];
  private retainedHits = 0;
  private readonly origins = new Map<string, OriginState>();
  private readonly subs: Subscription[] = [];
  private readonly flushMs: number;
  private readonly maxBatchBytes: number;
  private readonly warmup: boolean;
  private readonly retainHits: number;
  private readonly replayTimeoutMs: number;
  private closed = false;
  readonly stats: EventualStats = {
    published: 0,
    publishedHits: 0,
    received: 0,
    appliedHits: 0,
    staleHits: 0,
    unknownPolicyHits: 0,
    duplicates: 0,
    gaps: 0,
    replayRequests: 0,
    replayedBatches: 0,
    syncs: 0,
    coldStart: false,
    coldAdmissions: 0,
    overLimitHits: 0,
  };
  /** Cold start: the end of the window in which this node's counts lack its peers' (wall clock); 0 when warm. */
  private coldUntil = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    readonly origin: string,
    private readonly sink: HitSink,
    private readonly logger: Logger,
    options: EventualOptions = {},
    private readonly wall: () => number = Date.now,
    /** How far an origin's wall clock runs ahead of ours (ms; 0 when unknown). */
    private readonly clockOffset: (origin: string) => number = () => 0,
  ) {
    this.flushMs = options.flushMs ?? 5;
    this.maxBatchBytes = options.maxBatchBytes ?? 32_768;
    this.warmup = options.warmup ?? true;
    this.retainHits = options.retainHits ?? 200_000;
    this.replayTimeoutMs = options.replayTimeoutMs ?? 2000;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Subscribes, then (with warm-up) asks every peer for its recent batches. */
  start(): void {
    this.subs.push(
      this.nc.subscribe(this.subjects.rlHits, {
        callback: (err, msg) => {
          if (err) return;
          const batch = decodeReplayed(msg.data);
          if (batch && !('done' in batch)) this.receive(batch, true);
        },
      }),
      this.nc.subscribe(this.subjects.rlReplay(this.origin), {
        callback: (err, msg) => {
          const request = err ? null : decodeReplayRequest(msg.data);
          if (request && msg.reply) this.answer(msg.reply, request.from, request.to);
        },
      }),
      this.nc.subscribe(this.subjects.rlSync, {
        callback: (err, msg) => {
          const request = err ? null : decodeSyncRequest(msg.data);
          if (!request || request.o === this.origin || !msg.reply) return;
          // Our unpublished hits become a batch first, so the answer covers everything counted
          // so far (the asker also gets that batch live and drops the second copy by its seq).
          this.flush();
          this.answer(msg.reply, 1, this.seq);
        },
      }),
    );
    if (this.warmup) this.sync();
    else {
      this.stats.coldStart = true;
      this.coldUntil = this.wall() + this.sink.longestHorizonMs();
      this.logger.warn(
        'eventual rate limits start without warm-up: counts are empty until peers publish (overshoot up to one limit per window)',
      );
    }
  }

  // ---- publishing -------------------------------------------------------------------------

  committed(policy: Policy, key: string, at: number, cost: number): void {
    if (this.closed) return;
    if (this.coldUntil !== 0) this.countCold(at, cost);
    const storageKey = policy.storageKey(key);
    this.pending.push([policy.id, storageKey, at, cost]);
    this.pendingBytes += policy.id.length + storageKey.length + 24;
    const expiry = at + policy.horizonMs;
    if (expiry > this.pendingExpiry) this.pendingExpiry = expiry;
    if (this.pendingBytes >= this.maxBatchBytes) this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), this.flushMs);
      this.flushTimer.unref();
    }
  }

  /** Counts admissions of the cold window; once it is over, logs what it may have cost. */
  private countCold(at: number, cost: number): void {
    if (at < this.coldUntil) {
      this.stats.coldAdmissions += cost;
      return;
    }
    this.coldUntil = 0;
    this.logger.warn(
      { coldAdmissions: this.stats.coldAdmissions, overLimitHits: this.stats.overLimitHits },
      'eventual rate limits: cold-start window over; hits admitted without the peers’ counts may have overshot (at most one limit per key)',
    );
  }

  /** Publishes the pending hits as one batch (and keeps it for replays). */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    const batch: HitBatch = { o: this.origin, s: ++this.seq, h: this.pending };
    const data = encode(batch);
    const hits = this.pending.length;
    this.retained.push({ seq: batch.s, data, hits, expiresAt: this.pendingExpiry });
    this.retainedHits += hits;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingExpiry = 0;
    this.trim();
    this.stats.published++;
    this.stats.publishedHits += hits;
    try {
      this.nc.publish(this.subjects.rlHits, data);
    } catch (err) {
      // Closed: peers will replay from the retained copy if we come back.
      this.logger.debug({ err: (err as Error).message }, 'rate-limit batch not published');
    }
  }

  /** Drops retained batches nobody can need: expired, or beyond the retention cap. */
  private trim(): void {
    const now = this.wall();
    let drop = 0;
    while (drop < this.retained.length) {
      const batch = this.retained[drop]!;
      if (batch.expiresAt > now && this.retainedHits <= this.retainHits) break;
      this.retainedHits -= batch.hits;
      drop++;
    }
    if (drop > 0) this.retained.splice(0, drop);
  }

  /** Sends retained batches [from, to] to `reply`, then the end marker. */
  private answer(reply: string, from: number, to: number): void {
    this.trim();
    const upTo = Math.min(to, this.seq);
    const now = this.wall();
    try {
      for (const batch of this.retained) {
        if (batch.seq < from) continue;
        if (batch.seq > upTo) break;
        // Expired batches behind a longer-lived one: nothing in them can count any more.
        if (batch.expiresAt <= now) continue;
        this.nc.publish(reply, batch.data);
      }
      const done: ReplayDone = { o: this.origin, done: true, to: upTo };
      this.nc.publish(reply, encode(done));
    } catch {
      // Closed: the asker times out and moves on.
    }
  }

  // ---- receiving --------------------------------------------------------------------------

  private originState(id: string, seqSeen: number, live: boolean): OriginState {
    let state = this.origins.get(id);
    if (!state) {
      // Without warm-up a peer first heard mid-stream is taken from here on.
      const watermark = this.warmup || !live ? 0 : Math.max(0, seqSeen - 1);
      state = { watermark, above: new Set(), replayUntil: 0, lastHeard: this.wall() };
      this.origins.set(id, state);
    }
    return state;
  }

  /** A batch from the live subject or a replay: applied once, however often it arrives. */
  private receive(batch: HitBatch, live: boolean): void {
    if (batch.o === this.origin) return;
    const state = this.originState(batch.o, batch.s, live);
    state.lastHeard = this.wall();
    if (batch.s <= state.watermark || state.above.has(batch.s)) {
      this.stats.duplicates++;
      return;
    }
    this.stats.received++;
    if (!live) this.stats.replayedBatches++;
    // The origin's times, moved onto our clock by its offset (measured from its heartbeats).
    const offset = this.clockOffset(batch.o);
    for (const [policy, key, at, cost] of batch.h) {
      const outcome = this.sink.applyRemote(policy, key, at - offset, cost);
      if (outcome === 'over') {
        this.stats.appliedHits++;
        this.stats.overLimitHits++;
      } else if (outcome === 'applied') this.stats.appliedHits++;
      else if (outcome === 'stale') this.stats.staleHits++;
      else this.stats.unknownPolicyHits++;
    }
    state.above.add(batch.s);
    this.advance(state);
    if (batch.s > state.watermark + 1 && live) this.missing(batch.o, state, batch.s - 1);
  }

  private advance(state: OriginState): void {
    while (state.above.delete(state.watermark + 1)) state.watermark++;
  }

  /** A heartbeat says which batch the peer published last: anything we lack is asked for. */
  heartbeat(heartbeat: Heartbeat): void {
    if (heartbeat.bye) return;
    const state = this.originState(heartbeat.o, heartbeat.s + 1, true);
    state.lastHeard = this.wall();
    if (heartbeat.s <= state.watermark) return;
    // The batch may still be on its way on the hits subject: look again shortly.
    const expected = heartbeat.s;
    setTimeout(
      () => {
        if (!this.closed && state.watermark < expected) this.missing(heartbeat.o, state, expected);
      },
      Math.max(20, this.flushMs * 4),
    ).unref();
  }

  /** Asks `origin` for the batches after our watermark up to `to` (one replay at a time). */
  private missing(origin: string, state: OriginState, to: number): void {
    const now = this.wall();
    if (state.replayUntil > now) return;
    this.stats.gaps++;
    this.stats.replayRequests++;
    state.replayUntil = now + this.replayTimeoutMs;
    const from = state.watermark + 1;
    this.collect(this.subjects.rlReplay(origin), encode({ from, to }), () => {
      state.replayUntil = 0;
    });
  }

  /** Asks every peer for its retained batches (a node that starts, or rejoins). */
  sync(): void {
    this.stats.syncs++;
    this.collect(this.subjects.rlSync, encode({ o: this.origin }), () => undefined);
  }

  /** Publishes a request whose answers (batches, then an end marker per origin) come to an inbox. */
  private collect(subject: string, request: Uint8Array, finished: () => void): void {
    const inbox = natsInbox(this.nc);
    const sub = this.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return;
        const message = decodeReplayed(msg.data);
        if (!message) return;
        if ('done' in message) this.replayDone(message);
        else this.receive(message, false);
      },
    });
    const timer = setTimeout(() => {
      sub.unsubscribe();
      finished();
    }, this.replayTimeoutMs);
    timer.unref();
    try {
      this.nc.publish(subject, request, { reply: inbox });
    } catch {
      clearTimeout(timer);
      sub.unsubscribe();
      finished();
    }
  }

  /** Everything up to `to` that the origin still had was sent before this: the rest is gone (stale). */
  private replayDone(done: ReplayDone): void {
    if (done.o === this.origin) return;
    const state = this.originState(done.o, 0, false);
    if (done.to > state.watermark) {
      for (const seq of state.above) if (seq <= done.to) state.above.delete(seq);
      state.watermark = done.to;
      this.advance(state);
    }
    state.replayUntil = 0;
  }

  /**
   * Forgets origins silent for longer than the longest horizon plus FORGET_ORIGIN_MS: every hit
   * applied from them is stale by then (a replay after that cannot count one twice).
   */
  forgetSilent(): void {
    const now = this.wall();
    const after = this.sink.longestHorizonMs() + FORGET_ORIGIN_MS;
    for (const [id, state] of this.origins)
      if (now - state.lastHeard > after) this.origins.delete(id);
    this.trim();
  }

  /** Origins remembered (memory diagnostics). */
  get originCount(): number {
    return this.origins.size;
  }

  /** Retained own batches and hits (memory diagnostics). */
  get retainedSize(): { batches: number; hits: number } {
    return { batches: this.retained.length, hits: this.retainedHits };
  }

  close(): void {
    this.flush();
    this.closed = true;
    for (const sub of this.subs) sub.unsubscribe();
    this.subs.length = 0;
  }
}

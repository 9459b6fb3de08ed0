import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Subjects } from '../../nats/subjects.js';
import { natsInbox } from '../../nats/connection.js';
import type { EventualLink } from '../tiers/links.js';
import type { Policy } from '../policy.js';
import {
  DEFAULT_MAX_KEYS_PER_ORIGIN,
  FORGET_ORIGIN_MS,
  type EventualOptions,
  type EventualStats,
} from './eventual-options.js';
import { ClusterGuard } from './guard.js';
import {
  decodeReplayed,
  decodeReplayRequest,
  decodeSyncRequest,
  encode,
  type Heartbeat,
  type Hit,
  type HitBatch,
  type ReplayDone,
  type ReplayRequest,
  type SyncRequest,
} from './messages.js';
import { DEFAULT_MAX_ORIGINS, type MembershipOptions } from './membership.js';
import { advance, Origins, type OriginState } from './origins.js';
import { RetainedBatches } from './retained.js';
import { HitIntake, type HitSink } from './hit-intake.js';

export {
  DEFAULT_MAX_KEYS_PER_ORIGIN,
  FORGET_ORIGIN_MS,
  MAX_OUT_OF_ORDER_BATCHES,
  type EventualOptions,
  type EventualStats,
} from './eventual-options.js';
export type { HitSink } from './hit-intake.js';

/**
 * The `eventual` mode over NATS core: every node counts locally and publishes the hits it allowed
 * in batches (origin id, per-origin sequence, origin timestamps). Receivers skip their own batches,
 * drop duplicates by sequence and stale hits by age, and ask the origin to replay batches they
 * missed (a gap in the sequence, a partition that healed). A starting node asks every peer for its
 * recent batches, so it does not start with empty counters.
 */
export class EventualCluster implements EventualLink {
  private pending: Hit[] = [];
  private pendingBytes = 0;
  private pendingExpiry = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  private readonly retained: RetainedBatches;
  private readonly origins: Origins;
  private readonly subs: Subscription[] = [];
  private readonly flushMs: number;
  private readonly maxBatchBytes: number;
  private readonly warmup: boolean;
  private readonly replayTimeoutMs: number;
  private readonly maxBatchHits: number;
  private readonly maxReceivedBatchBytes: number;
  private readonly maxKeyLength: number;
  private readonly intake: HitIntake;
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
    overBudgetHits: 0,
    longKeyHits: 0,
    unsharedHits: 0,
    oversizedBatches: 0,
    ignoredOrigins: 0,
  };
  /** Cold start: the end of the window in which this node's counts lack its peers' (wall clock); 0 when warm. */
  private coldUntil = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    readonly origin: string,
    private readonly sink: HitSink,
    private readonly logger: Logger,
    options: EventualOptions & MembershipOptions = {},
    private readonly wall: () => number = Date.now,
    /** How far an origin's wall clock runs ahead of ours (ms; 0 when unknown). */
    clockOffset: (origin: string) => number = () => 0,
    /** Signs what is sent and checks what is received (a pass-through without a cluster secret). */
    private readonly guard: ClusterGuard = new ClusterGuard(null, logger),
  ) {
    this.flushMs = options.flushMs ?? 5;
    this.maxBatchBytes = options.maxBatchBytes ?? 32_768;
    this.warmup = options.warmup ?? true;
    this.retained = new RetainedBatches(options.retainHits ?? 200_000, wall);
    this.replayTimeoutMs = options.replayTimeoutMs ?? 2000;
    const maxKeysPerOrigin = options.maxKeysPerOrigin ?? DEFAULT_MAX_KEYS_PER_ORIGIN;
    this.origins = new Origins(
      options.maxOrigins ?? DEFAULT_MAX_ORIGINS,
      maxKeysPerOrigin,
      this.warmup,
      wall,
      this.stats,
      logger,
    );
    this.maxBatchHits = options.maxBatchHits ?? 10_000;
    this.maxReceivedBatchBytes = options.maxReceivedBatchBytes ?? 1_048_576;
    this.maxKeyLength = options.maxKeyLength ?? 1024;
    this.intake = new HitIntake(sink, this.stats, logger, clockOffset, {
      maxKeysPerOrigin,
      maxBatchHits: this.maxBatchHits,
      maxReceivedBatchBytes: this.maxReceivedBatchBytes,
      maxKeyLength: this.maxKeyLength,
    });
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Subscribes, then (with warm-up) asks every peer for its recent batches. */
  start(): void {
    this.subs.push(
      this.nc.subscribe(this.subjects.rlHits, {
        callback: (err, msg) => {
          if (!err) this.onBatch(msg, true);
        },
      }),
      this.nc.subscribe(this.subjects.rlReplay(this.origin), {
        callback: (err, msg) => {
          if (err || !msg.reply || !this.guard.accept(msg)) return;
          const request = decodeReplayRequest(msg.data);
          if (request && this.guard.answerOnce(msg.reply, request.t, msg.subject))
            this.answer(msg.reply, request.from, request.to);
        },
      }),
      this.nc.subscribe(this.subjects.rlSync, {
        callback: (err, msg) => {
          if (err || !msg.reply || !this.guard.accept(msg)) return;
          const request = decodeSyncRequest(msg.data);
          if (!request || request.o === this.origin) return;
          if (!this.guard.answerOnce(msg.reply, request.t, msg.subject)) return;
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
    // Peers would drop it (maxKeyLength), and it could make the batch too big for them.
    if (storageKey.length > this.maxKeyLength) {
      this.stats.unsharedHits++;
      return;
    }
    this.pending.push([policy.id, storageKey, at, cost]);
    this.pendingBytes += policy.id.length + storageKey.length + 24;
    const expiry = at + policy.horizonMs;
    if (expiry > this.pendingExpiry) this.pendingExpiry = expiry;
    if (this.pendingBytes >= this.maxBatchBytes || this.pending.length >= this.maxBatchHits)
      this.flush();
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
    this.retained.add(batch.s, data, hits, this.pendingExpiry);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingExpiry = 0;
    this.retained.trim();
    this.stats.published++;
    this.stats.publishedHits += hits;
    try {
      this.guard.publish(this.nc, this.subjects.rlHits, data);
    } catch (err) {
      // Closed: peers will replay from the retained copy if we come back.
      this.logger.debug({ err: (err as Error).message }, 'rate-limit batch not published');
    }
  }

  /** Sends retained batches [from, to] to `reply`, then the end marker. */
  private answer(reply: string, from: number, to: number): void {
    this.retained.trim();
    const upTo = Math.min(to, this.seq);
    const now = this.wall();
    try {
      // Signed for this inbox (one HMAC per batch sent).
      this.retained.forEachLive(from, upTo, now, (data) =>
        this.guard.publish(this.nc, reply, data),
      );
      const done: ReplayDone = { o: this.origin, done: true, to: upTo };
      this.guard.publish(this.nc, reply, encode(done));
    } catch {
      // Closed: the asker times out and moves on.
    }
  }

  // ---- receiving --------------------------------------------------------------------------

  /** A message on the hits subject or a sync/replay inbox: checked, bounded, then applied. */
  private onBatch(msg: Msg, live: boolean): void {
    if (!this.guard.accept(msg)) return;
    if (msg.data.length > this.maxReceivedBatchBytes) {
      this.intake.oversized(msg.subject, { bytes: msg.data.length }, 'maxReceivedBatchBytes');
      return;
    }
    const message = decodeReplayed(msg.data);
    if (!message) return;
    if (!('done' in message)) this.receive(message, live);
    else if (!live) this.replayDone(message);
  }

  /** A batch from the live subject or a replay: applied once, however often it arrives. */
  private receive(batch: HitBatch, live: boolean): void {
    if (batch.o === this.origin) return;
    const state = this.origins.state(batch.o, batch.s, live);
    if (!state) return;
    state.lastHeard = this.wall();
    if (batch.s <= state.watermark || state.above.has(batch.s)) {
      this.stats.duplicates++;
      return;
    }
    if (batch.h.length > this.maxBatchHits) {
      // Handled (not asked for again), but none of its hits count.
      this.intake.oversized(`${batch.o}#${batch.s}`, { hits: batch.h.length }, 'maxBatchHits');
    } else {
      this.stats.received++;
      if (!live) this.stats.replayedBatches++;
      this.intake.apply(batch, state);
    }
    state.above.add(batch.s);
    advance(state);
    if (batch.s > state.watermark + 1 && live) this.missing(batch.o, state, batch.s - 1);
  }

  /** A heartbeat says which batch the peer published last: anything we lack is asked for. */
  heartbeat(heartbeat: Heartbeat): void {
    if (heartbeat.bye) {
      const known = this.origins.get(heartbeat.o);
      if (known) known.left = true;
      return;
    }
    const state = this.origins.state(heartbeat.o, heartbeat.s + 1, true);
    if (!state) return;
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
    const request: ReplayRequest = { from, to, t: this.wall() };
    this.collect(this.subjects.rlReplay(origin), encode(request), () => {
      state.replayUntil = 0;
    });
  }

  /** Asks every peer for its retained batches (a node that starts, or rejoins). */
  sync(): void {
    this.stats.syncs++;
    const request: SyncRequest = { o: this.origin, t: this.wall() };
    this.collect(this.subjects.rlSync, encode(request), () => undefined);
  }

  /** Publishes a request whose answers (batches, then an end marker per origin) come to an inbox. */
  private collect(subject: string, request: Uint8Array, finished: () => void): void {
    const inbox = natsInbox(this.nc);
    const sub = this.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (!err) this.onBatch(msg, false);
      },
    });
    const timer = setTimeout(() => {
      sub.unsubscribe();
      finished();
    }, this.replayTimeoutMs);
    timer.unref();
    try {
      this.guard.publish(this.nc, subject, request, inbox);
    } catch {
      clearTimeout(timer);
      sub.unsubscribe();
      finished();
    }
  }

  /** Everything up to `to` that the origin still had was sent before this: the rest is gone (stale). */
  private replayDone(done: ReplayDone): void {
    if (done.o === this.origin) return;
    const state = this.origins.state(done.o, 0, false);
    if (!state) return;
    if (done.to > state.watermark) {
      for (const seq of state.above) if (seq <= done.to) state.above.delete(seq);
      state.watermark = done.to;
      advance(state);
    }
    state.replayUntil = 0;
  }

  /**
   * Forgets origins silent for longer than the longest horizon plus FORGET_ORIGIN_MS: every hit
   * applied from them is stale by then (a replay after that cannot count one twice).
   */
  forgetSilent(): void {
    this.origins.forgetSilent(this.sink.longestHorizonMs() + FORGET_ORIGIN_MS);
    this.retained.trim();
  }

  /** Origins remembered (memory diagnostics). */
  get originCount(): number {
    return this.origins.size;
  }

  /** Retained own batches and hits (memory diagnostics). */
  get retainedSize(): { batches: number; hits: number } {
    return this.retained.size;
  }

  close(): void {
    this.flush();
    this.closed = true;
    for (const sub of this.subs) sub.unsubscribe();
    this.subs.length = 0;
  }
}

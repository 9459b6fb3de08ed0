import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { ThrottledWarning } from '../../cluster/throttled-warning.js';
import type { Subjects } from '../../nats/subjects.js';
import { natsInbox } from '../../nats/connection.js';
import type { EventualLink, KeyBudget } from '../tiers/links.js';
import type { Policy } from '../policy.js';
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

/** Where remote hits go (the RateLimiter). */
export interface HitSink {
  /**
   * Records a hit another node allowed, at its origin time; stale or unknown hits are dropped,
   * and so is a hit that would make a new key beyond its origin's `budget` (`refused`).
   */
  applyRemote(
    policyId: string,
    key: string,
    at: number,
    cost: number,
    budget?: KeyBudget,
  ): 'applied' | 'over' | 'stale' | 'unknown' | 'refused';
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
  /**
   * Keys a peer's hits may create here and have held at once (its key budget); hits that would
   * create more are dropped (`overBudgetHits`, a warning per 10 s). Hits for keys already held
   * always count. Default 100 000 (`DEFAULT_MAX_KEYS_PER_ORIGIN`).
   */
  maxKeysPerOrigin?: number;
  /**
   * Hits in one batch, at most: a node publishes a batch once it has this many, and a received
   * batch with more is dropped whole (`oversizedBatches`). The same on every gateway. Default 10 000.
   */
  maxBatchHits?: number;
  /**
   * Bytes of one received batch message, at most; a bigger one is dropped unread
   * (`oversizedBatches`). At least 4 × `maxBatchBytes`. Default 1 MiB (NATS's default max_payload).
   */
  maxReceivedBatchBytes?: number;
  /**
   * Longest key (`<dimension>:<value>`, characters) shared with peers: a hit with a longer key
   * counts on its own gateway only (not published, `unsharedHits`; dropped on receipt,
   * `longKeyHits`). Bounds the memory of one remote key. Default 1024.
   */
  maxKeyLength?: number;
}

/** Default of `eventual.maxKeysPerOrigin`. */
export const DEFAULT_MAX_KEYS_PER_ORIGIN = 100_000;

/**
 * Out-of-order batches remembered per origin (above its watermark, waiting for a gap to be
 * replayed). Beyond it the oldest gap is given up (its batches taken as gone), so one origin's
 * sequence numbers cannot grow our memory without bound.
 */
export const MAX_OUT_OF_ORDER_BATCHES = 4096;

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
  /** It said bye: it will not speak again, so it goes first when maxOrigins is reached. */
  left: boolean;
  /** The keys its hits created here (maxKeysPerOrigin). */
  readonly budget: KeyBudget;
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
  /** Peers' hits dropped: they would have created a key beyond their origin's maxKeysPerOrigin. */
  overBudgetHits: number;
  /** Peers' hits dropped for a key longer than maxKeyLength. */
  longKeyHits: number;
  /** Own hits not published: key longer than maxKeyLength (they count on this node only). */
  unsharedHits: number;
  /** Received batches dropped whole: over maxBatchHits hits or maxReceivedBatchBytes bytes. */
  oversizedBatches: number;
  /** Messages from a new origin ignored because maxOrigins origins were already known. */
  ignoredOrigins: number;
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
export class EventualCluster implements EventualLink {
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
  private readonly maxOrigins: number;
  private readonly maxKeysPerOrigin: number;
  private readonly maxBatchHits: number;
  private readonly maxReceivedBatchBytes: number;
  private readonly maxKeyLength: number;
  private readonly budgetWarning = new ThrottledWarning();
  private readonly hitsWarning = new ThrottledWarning();
  private readonly bytesWarning = new ThrottledWarning();
  private readonly originWarning = new ThrottledWarning();
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
    private readonly clockOffset: (origin: string) => number = () => 0,
    /** Signs what is sent and checks what is received (a pass-through without a cluster secret). */
    private readonly guard: ClusterGuard = new ClusterGuard(null, logger),
  ) {
    this.flushMs = options.flushMs ?? 5;
    this.maxBatchBytes = options.maxBatchBytes ?? 32_768;
    this.warmup = options.warmup ?? true;
    this.retainHits = options.retainHits ?? 200_000;
    this.replayTimeoutMs = options.replayTimeoutMs ?? 2000;
    this.maxOrigins = options.maxOrigins ?? DEFAULT_MAX_ORIGINS;
    this.maxKeysPerOrigin = options.maxKeysPerOrigin ?? DEFAULT_MAX_KEYS_PER_ORIGIN;
    this.maxBatchHits = options.maxBatchHits ?? 10_000;
    this.maxReceivedBatchBytes = options.maxReceivedBatchBytes ?? 1_048_576;
    this.maxKeyLength = options.maxKeyLength ?? 1024;
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
    this.retained.push({ seq: batch.s, data, hits, expiresAt: this.pendingExpiry });
    this.retainedHits += hits;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingExpiry = 0;
    this.trim();
    this.stats.published++;
    this.stats.publishedHits += hits;
    try {
      this.guard.publish(this.nc, this.subjects.rlHits, data);
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
        // Signed for this inbox (one HMAC per batch sent).
        this.guard.publish(this.nc, reply, batch.data);
      }
      const done: ReplayDone = { o: this.origin, done: true, to: upTo };
      this.guard.publish(this.nc, reply, encode(done));
    } catch {
      // Closed: the asker times out and moves on.
    }
  }

  // ---- receiving --------------------------------------------------------------------------

  /**
   * What we know of an origin; a new one is remembered only while fewer than maxOrigins are
   * (one that said bye makes room): null when it is to be ignored.
   */
  private originState(id: string, seqSeen: number, live: boolean): OriginState | null {
    let state = this.origins.get(id);
    if (!state) {
      if (this.origins.size >= this.maxOrigins && !this.forgetDeparted()) {
        this.stats.ignoredOrigins++;
        this.originWarning.warn(
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

  /** A message on the hits subject or a sync/replay inbox: checked, bounded, then applied. */
  private onBatch(msg: Msg, live: boolean): void {
    if (!this.guard.accept(msg)) return;
    if (msg.data.length > this.maxReceivedBatchBytes) {
      this.oversized(msg.subject, { bytes: msg.data.length }, 'maxReceivedBatchBytes');
      return;
    }
    const message = decodeReplayed(msg.data);
    if (!message) return;
    if (!('done' in message)) this.receive(message, live);
    else if (!live) this.replayDone(message);
  }

  private oversized(
    subject: string,
    size: Record<string, unknown>,
    limit: 'maxBatchHits' | 'maxReceivedBatchBytes',
  ): void {
    this.stats.oversizedBatches++;
    const warning = limit === 'maxBatchHits' ? this.hitsWarning : this.bytesWarning;
    warning.warn(
      this.logger,
      {
        subject,
        ...size,
        maxBatchHits: this.maxBatchHits,
        maxReceivedBatchBytes: this.maxReceivedBatchBytes,
        oversizedBatches: this.stats.oversizedBatches,
      },
      `rate-limit hit batch dropped: over eventual.${limit}`,
    );
  }

  /** A batch from the live subject or a replay: applied once, however often it arrives. */
  private receive(batch: HitBatch, live: boolean): void {
    if (batch.o === this.origin) return;
    const state = this.originState(batch.o, batch.s, live);
    if (!state) return;
    state.lastHeard = this.wall();
    if (batch.s <= state.watermark || state.above.has(batch.s)) {
      this.stats.duplicates++;
      return;
    }
    if (batch.h.length > this.maxBatchHits) {
      // Handled (not asked for again), but none of its hits count.
      this.oversized(`${batch.o}#${batch.s}`, { hits: batch.h.length }, 'maxBatchHits');
    } else {
      this.stats.received++;
      if (!live) this.stats.replayedBatches++;
      this.apply(batch, state);
    }
    state.above.add(batch.s);
    this.advance(state);
    if (batch.s > state.watermark + 1 && live) this.missing(batch.o, state, batch.s - 1);
  }

  private apply(batch: HitBatch, state: OriginState): void {
    // The origin's times, moved onto our clock by its offset (measured from its heartbeats).
    const offset = this.clockOffset(batch.o);
    let refused = 0;
    for (const [policy, key, at, cost] of batch.h) {
      if (key.length > this.maxKeyLength) {
        this.stats.longKeyHits++;
        refused++;
        continue;
      }
      const outcome = this.sink.applyRemote(policy, key, at - offset, cost, state.budget);
      if (outcome === 'over') {
        this.stats.appliedHits++;
        this.stats.overLimitHits++;
      } else if (outcome === 'applied') this.stats.appliedHits++;
      else if (outcome === 'stale') this.stats.staleHits++;
      else if (outcome === 'refused') {
        this.stats.overBudgetHits++;
        refused++;
      } else this.stats.unknownPolicyHits++;
    }
    if (refused > 0)
      this.budgetWarning.warn(
        this.logger,
        {
          origin: batch.o,
          keys: state.budget.keys,
          maxKeysPerOrigin: this.maxKeysPerOrigin,
          maxKeyLength: this.maxKeyLength,
          overBudgetHits: this.stats.overBudgetHits,
          longKeyHits: this.stats.longKeyHits,
        },
        'rate-limit hits from a peer dropped: new keys beyond eventual.maxKeysPerOrigin, or keys longer than eventual.maxKeyLength',
      );
  }

  private advance(state: OriginState): void {
    while (state.above.delete(state.watermark + 1)) state.watermark++;
    if (state.above.size <= MAX_OUT_OF_ORDER_BATCHES) return;
    // Too many batches wait behind a gap: give the oldest gap up (its batches count as gone).
    let lowest = Number.POSITIVE_INFINITY;
    for (const seq of state.above) if (seq < lowest) lowest = seq;
    state.watermark = lowest - 1;
    while (state.above.delete(state.watermark + 1)) state.watermark++;
  }

  /** A heartbeat says which batch the peer published last: anything we lack is asked for. */
  heartbeat(heartbeat: Heartbeat): void {
    if (heartbeat.bye) {
      const known = this.origins.get(heartbeat.o);
      if (known) known.left = true;
      return;
    }
    const state = this.originState(heartbeat.o, heartbeat.s + 1, true);
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
    const state = this.originState(done.o, 0, false);
    if (!state) return;
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

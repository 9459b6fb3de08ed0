import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { natsInbox } from '../../nats/connection.js';
import {
  decodePolicyChange,
  decodePolicyState,
  decodePolicySyncRequest,
  encode,
  type Heartbeat,
  type PolicyChange,
  type PolicyState,
} from './messages.js';
import type { PolicyLedger } from './policy-ledger.js';
import { ClusterGuard } from './guard.js';
import type { Signer } from './signing.js';

/** Counters of runtime policy changes shared between gateways. */
export interface PolicySyncStats {
  /** Changes received (live or in a sync answer) that were newer than ours and applied. */
  applied: number;
  /** Changes received that were not newer than what we hold (duplicates, replays, losers). */
  stale: number;
  /** Messages refused for a missing or wrong signature. */
  rejected: number;
  /** Sync requests sent (at start, and when a peer's heartbeat shows another ledger). */
  syncs: number;
  /** Sync requests answered. */
  answered: number;
}

/** Longest wait for sync answers. */
const SYNC_WAIT_MS = 2000;

/**
 * Runtime policy changes across gateways (protocol/ratelimit.md §5.4): each change made here is
 * published, signed, on `<p>.rl.policy`; every node keeps the newest change per policy id (the
 * ledger) and applies a received one only when it is newer. A starting node asks every peer for
 * its ledger on `<p>.rl.policy.sync`, and heartbeats carry a digest of the ledger: a node whose
 * peer shows another digest asks that peer (after a partition heals, both sides do), so every
 * node converges on the same changes, last writer wins. Without a secret nothing is published
 * or accepted: a change then applies to the node it was made on only.
 */
export class PolicySync {
  private readonly subs: Subscription[] = [];
  /** A sync asked of a peer is pending until then (wall clock). */
  private readonly asking = new Map<string, number>();
  private lastRejectLog = 0;
  private readonly syncSubject: string;
  readonly stats: PolicySyncStats = { applied: 0, stale: 0, rejected: 0, syncs: 0, answered: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly origin: string,
    private readonly ledger: PolicyLedger,
    /** Applies a change the ledger accepted (newer than ours). */
    private readonly apply: (change: PolicyChange) => void,
    private readonly signer: Signer | null,
    private readonly logger: Logger,
    private readonly wall: () => number = Date.now,
    /** Answers each signed sync request once, while fresh (replays of a captured one are refused). */
    private readonly guard: ClusterGuard = new ClusterGuard(signer, logger, undefined, wall),
  ) {
    this.syncSubject = `${subject}.sync`;
  }

  get enabled(): boolean {
    return this.signer !== null;
  }

  get ledgerSize(): number {
    return this.ledger.size;
  }

  start(): void {
    if (!this.signer) {
      this.logger.info(
        'rate-limit policy changes stay on the gateway they are made on: set rateLimits.clusterSecret to share them',
      );
      return;
    }
    this.subs.push(
      this.nc.subscribe(this.subject, {
        callback: (err, msg) => {
          if (!err) this.onChange(msg);
        },
      }),
      this.nc.subscribe(this.syncSubject, {
        callback: (err, msg) => {
          if (!err) this.onSyncRequest(msg);
        },
      }),
    );
    this.ask();
  }

  /** The digest heartbeats carry (undefined when sharing is off). */
  digest(): string | undefined {
    return this.signer ? this.ledger.digest() : undefined;
  }

  /** A peer's heartbeat: another ledger digest means one of us lacks changes; ask it for its ledger. */
  heartbeat(heartbeat: Heartbeat): void {
    if (
      !this.signer ||
      heartbeat.bye ||
      heartbeat.p === undefined ||
      heartbeat.p === this.ledger.digest()
    )
      return;
    this.ask(heartbeat.o);
  }

  /** Publishes a change made here. */
  publish(change: PolicyChange): boolean {
    if (!this.signer) return false;
    const data = encode(change);
    try {
      this.nc.publish(this.subject, data, { headers: this.signer.headers(this.subject, data) });
      return true;
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'policy change not published to the cluster',
      );
      return false;
    }
  }

  private verified(msg: Msg): boolean {
    if (this.signer?.verify(msg)) return true;
    this.stats.rejected++;
    const now = this.wall();
    // A forger (or a gateway with another secret) could flood the log: at most one line per 10 s.
    if (now - this.lastRejectLog >= 10_000) {
      this.lastRejectLog = now;
      this.logger.warn(
        { subject: msg.subject, rejected: this.stats.rejected },
        'rate-limit policy message refused: missing or wrong signature (rateLimits.clusterSecret differs?)',
      );
    }
    return false;
  }

  private onChange(msg: Msg): void {
    if (!this.verified(msg)) return;
    const change = decodePolicyChange(msg.data);
    if (change && change.o !== this.origin) this.receive(change);
  }

  /** A change from a peer: applied when newer than ours (the ledger decides). */
  private receive(change: PolicyChange): void {
    if (!this.ledger.accept(change)) {
      this.stats.stale++;
      return;
    }
    this.stats.applied++;
    this.apply(change);
  }

  private onSyncRequest(msg: Msg): void {
    if (!msg.reply || !this.verified(msg)) return;
    const request = decodePolicySyncRequest(msg.data);
    if (
      !request ||
      request.o === this.origin ||
      (request.to !== undefined && request.to !== this.origin) ||
      !this.guard.answerOnce(msg.reply, request.t, msg.subject)
    )
      return;
    this.stats.answered++;
    const state: PolicyState = { o: this.origin, changes: this.ledger.changes() };
    const data = encode(state);
    try {
      this.nc.publish(msg.reply, data, { headers: this.signer!.headers(msg.reply, data) });
    } catch {
      // Closed: the asker times out and asks again at the next differing heartbeat.
    }
  }

  /** Asks one peer (or, without `to`, every peer) for its ledger and merges the answers. */
  private ask(to?: string): void {
    const signer = this.signer!;
    const key = to ?? '*';
    const now = this.wall();
    if ((this.asking.get(key) ?? 0) > now) return;
    this.asking.set(key, now + SYNC_WAIT_MS);
    this.stats.syncs++;
    const inbox = natsInbox(this.nc);
    const sub = this.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err || !this.verified(msg)) return;
        const state = decodePolicyState(msg.data);
        if (!state) return;
        for (const change of state.changes) this.receive(change);
        // The one peer asked has answered: another difference may be asked about at once.
        if (to !== undefined) {
          this.asking.delete(key);
          sub.unsubscribe();
        }
      },
    });
    const timer = setTimeout(() => {
      sub.unsubscribe();
      this.asking.delete(key);
    }, SYNC_WAIT_MS);
    timer.unref();
    const t = this.wall();
    const data = encode(to === undefined ? { o: this.origin, t } : { o: this.origin, to, t });
    try {
      this.nc.publish(this.syncSubject, data, {
        reply: inbox,
        headers: signer.headers(this.syncSubject, data, inbox),
      });
    } catch {
      clearTimeout(timer);
      sub.unsubscribe();
      this.asking.delete(key);
    }
  }

  close(): void {
    for (const sub of this.subs) sub.unsubscribe();
    this.subs.length = 0;
  }
}

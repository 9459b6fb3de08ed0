import { RequestError, TimeoutError, type Msg, type Subscription } from '@nats-io/nats-core';
import type { ClusterComponent, ClusterLink } from '../../cluster/link.js';
import { isNoResponders } from '../../nats/request-errors.js';
import { topicToken } from '../../nats/topic-token.js';
import { ServiceError } from '../../worker/define.js';
import { fail, RELAY_ERRORS } from './state.js';
import { parseReply, parseRequest, type RelayRequest, type RelayReply } from './wire.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the transport needs from the relay: run an operation on a group owned here. */
export interface RelayOwner {
  /** Runs `request` on the group `groupId` owned here; throws ServiceError with the client's text. */
  execute(request: RelayRequest): unknown;
  /** Other nodes holding channels of members of groups owned here. */
  remoteNodes(): string[];
  /** `node` is gone: its members' channels ended. */
  nodeGone(node: string): void;
}

/** Counters of the relay's NATS side (health). */
export interface RelayClusterCounters {
  /** Operations forwarded to another gateway's group. */
  forwarded: number;
  /** Operations other gateways sent to groups owned here. */
  served: number;
  /** Requests from NATS dropped or refused as malformed or too large. */
  dropped: number;
  /** Creates that lost a concurrent claim to another gateway. */
  claimsLost: number;
  /** Nodes found gone (no responders on their node subject) while holding members' channels. */
  nodesGone: number;
}

/** A group subject this node subscribes: while it claims the id, then as its owner. */
interface Claim {
  readonly groupId: string;
  readonly at: number;
  state: 'claiming' | 'owner';
  /** A better concurrent claim was seen: this node backs off. */
  lost: boolean;
  sub: Subscription | null;
}

function isTimeout(err: unknown): boolean {
  return (
    err instanceof TimeoutError ||
    (err instanceof RequestError && err.cause instanceof TimeoutError)
  );
}

/** Whether claim (at, node) `a` comes before `b`: the lower claim time wins, then the lower node id. */
export function claimBefore(
  a: { at: number; node: string },
  b: { at: number; node: string },
): boolean {
  return a.at < b.at || (a.at === b.at && a.node < b.node);
}

/**
 * Relay groups across gateways (protocol/relay.md): the owner of a group subscribes
 * `<p>.relay.group.<token(service:group)>` and answers every operation on it; other gateways send
 * their operations there by request. Creating a group first claims its subject so that ids stay
 * unique in the cluster.
 */
export class RelayCluster implements ClusterComponent {
  private link: ClusterLink | null = null;
  private readonly claims = new Map<string, Claim>();
  readonly counters: RelayClusterCounters = {
    forwarded: 0,
    served: 0,
    dropped: 0,
    claimsLost: 0,
    nodesGone: 0,
  };
  private nodeSub: Subscription | null = null;
  private nodeTimer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly service: string,
    private readonly owner: RelayOwner,
    private readonly options: {
      maxRequestBytes: number;
      requestTimeoutMs: number;
      claimSettleMs: number;
      claimRoundMs: number;
      claimAttempts: number;
      nodeCheckMs: number;
    },
  ) {}

  get connected(): boolean {
    return this.link !== null;
  }

  start(link: ClusterLink): void {
    this.link = link;
    // Groups created before the cluster connected are served from now on.
    for (const claim of this.claims.values()) claim.sub ??= this.listen(link, claim);
    // Owners ask here whether this node (and so its members' channels) is still alive.
    this.nodeSub = link.nc.subscribe(link.subjects.relayNode(topicToken(link.nodeId)), {
      callback: (err, msg) => {
        if (!err) this.answer(msg, { ok: true, result: {} });
      },
    });
    this.nodeTimer = setInterval(() => {
      this.checkNodes(link).catch((err: unknown) => {
        link.logger.warn({ err }, 'relay node check failed');
      });
    }, this.options.nodeCheckMs);
    this.nodeTimer.unref();
  }

  stop(): void {
    if (this.nodeTimer) clearInterval(this.nodeTimer);
    this.nodeTimer = null;
    this.nodeSub?.unsubscribe();
    this.nodeSub = null;
    for (const claim of this.claims.values()) {
      claim.sub?.unsubscribe();
      claim.sub = null;
    }
    this.link = null;
  }

  /**
   * Asks every node holding members' channels whether it is alive: "no responders" means it
   * stopped or died without telling (kill -9), and its members leave as if their channels ended.
   * Timeouts and outages decide nothing.
   */
  private async checkNodes(link: ClusterLink): Promise<void> {
    if (this.checking || this.link !== link || !link.connected()) return;
    this.checking = true;
    try {
      await Promise.all(
        this.owner.remoteNodes().map(async (node) => {
          try {
            await link.nc.request(link.subjects.relayNode(topicToken(node)), new Uint8Array(0), {
              timeout: this.options.requestTimeoutMs,
            });
          } catch (err) {
            if (!isNoResponders(err) || this.link !== link) return;
            this.counters.nodesGone++;
            link.logger.info({ node }, 'relay members of a gone gateway leave their groups');
            this.owner.nodeGone(node);
          }
        }),
      );
    } finally {
      this.checking = false;
    }
  }

  /** Resolves with `value` once the server has everything sent so far (new subscriptions). */
  async flushed<T>(value: T): Promise<T> {
    await this.link?.nc.flush();
    return value;
  }

  /** Whether this node is creating `groupId` right now. */
  claiming(groupId: string): boolean {
    return this.claims.get(groupId)?.state === 'claiming';
  }

  /**
   * Claims `groupId` for this node (protocol/relay.md §3): subscribe its subject, then ask it;
   * nobody answering twice, `claimSettleMs` apart, makes the id ours. Rejects with 'Group already
   * exists' when a live owner or a better concurrent claim holds it.
   */
  async claim(groupId: string): Promise<void> {
    const link = this.link;
    const claim: Claim = { groupId, at: Date.now(), state: 'claiming', lost: false, sub: null };
    this.claims.set(groupId, claim);
    if (!link) {
      claim.state = 'owner';
      return;
    }
    try {
      claim.sub = this.listen(link, claim);
      await link.nc.flush();
      const body = encoder.encode(
        JSON.stringify({
          op: 'claim',
          group_id: groupId,
          user_id: '',
          node: link.nodeId,
          at: claim.at,
        }),
      );
      let quietRounds = 0;
      for (let attempt = 0; attempt < this.options.claimAttempts; attempt++) {
        if (claim.lost) break;
        let reply: RelayReply | 'none' | 'silent';
        try {
          const msg = await link.nc.request(this.subject(link, groupId), body, {
            timeout: this.options.claimRoundMs,
          });
          reply = parseReply(msg.data) ?? fail(RELAY_ERRORS.ownerUnavailable, 503);
        } catch (err) {
          if (isNoResponders(err)) reply = 'none';
          // A claimant that just yielded may still have had interest on our server when we
          // asked, and dropped the request: ask again (only "no responders" ever wins).
          else if (isTimeout(err)) reply = 'silent';
          else throw err;
        }
        if (claim.lost) break;
        if (reply === 'none') {
          // Nobody else holds or claims it. Once more after route interest has spread, in case
          // another server had not yet heard of a concurrent claimant's subscription.
          if (++quietRounds === 2) {
            claim.state = 'owner';
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, this.options.claimSettleMs));
          continue;
        }
        if (reply === 'silent') continue;
        if (!reply.ok) throw new ServiceError(reply.error, reply.code);
        // A worse claimant yielded: ask again.
      }
      if (claim.lost) fail(RELAY_ERRORS.alreadyExists, 409);
      fail(RELAY_ERRORS.ownerUnavailable, 503);
    } catch (err) {
      if (this.claims.get(groupId) === claim) this.claims.delete(groupId);
      claim.sub?.unsubscribe();
      if (err instanceof ServiceError) throw err;
      if (isTimeout(err)) fail(RELAY_ERRORS.ownerUnavailable, 503);
      throw err;
    }
  }

  /** The group is gone (deleted, or its create failed): stop answering for it. */
  release(groupId: string): void {
    const claim = this.claims.get(groupId);
    if (!claim) return;
    this.claims.delete(groupId);
    claim.sub?.unsubscribe();
  }

  /**
   * Sends `request` to the owner of its group and returns its result; no owner → 'Group not
   * found', exactly as for a group that never existed.
   */
  async forward(request: RelayRequest): Promise<unknown> {
    const link = this.link ?? fail(RELAY_ERRORS.groupNotFound, 422);
    const body = encoder.encode(JSON.stringify(request));
    if (body.length > this.options.maxRequestBytes) fail(RELAY_ERRORS.messageTooLarge, 413);
    this.counters.forwarded++;
    let msg: Msg;
    try {
      msg = await link.nc.request(this.subject(link, request.group_id), body, {
        timeout: this.options.requestTimeoutMs,
      });
    } catch (err) {
      if (isNoResponders(err)) fail(RELAY_ERRORS.groupNotFound, 422);
      link.logger.warn(
        { err, group: request.group_id, op: request.op },
        'relay owner did not answer',
      );
      fail(RELAY_ERRORS.ownerUnavailable, 503);
    }
    const reply = parseReply(msg.data);
    if (!reply) {
      this.counters.dropped++;
      fail(RELAY_ERRORS.ownerUnavailable, 502);
    }
    if (!reply.ok) throw new ServiceError(reply.error, reply.code);
    return reply.result;
  }

  /** Tells the owner without waiting for an answer (a member's channels ended here). */
  notify(request: RelayRequest): void {
    const link = this.link;
    if (!link) return;
    try {
      link.nc.publish(
        this.subject(link, request.group_id),
        encoder.encode(JSON.stringify(request)),
      );
    } catch (err) {
      link.logger.warn({ err, group: request.group_id }, 'relay notice not sent');
    }
  }

  private subject(link: ClusterLink, groupId: string): string {
    return link.subjects.relayGroup(topicToken(`${this.service}:${groupId}`));
  }

  private listen(link: ClusterLink, claim: Claim): Subscription {
    return link.nc.subscribe(this.subject(link, claim.groupId), {
      callback: (err, msg) => {
        if (!err) this.receive(link, claim, msg);
      },
    });
  }

  private receive(link: ClusterLink, claim: Claim, msg: Msg): void {
    if (msg.data.length > this.options.maxRequestBytes) {
      return this.refuse(link, msg, RELAY_ERRORS.messageTooLarge, 413, 'too large');
    }
    let raw: unknown;
    try {
      raw = JSON.parse(decoder.decode(msg.data));
    } catch {
      return this.refuse(link, msg, RELAY_ERRORS.badRequest, 400, 'not JSON');
    }
    const request = parseRequest(raw);
    if (typeof request === 'string')
      return this.refuse(link, msg, RELAY_ERRORS.badRequest, 400, request);
    if (request.group_id !== claim.groupId) {
      return this.refuse(link, msg, RELAY_ERRORS.badRequest, 400, "group_id is not the subject's");
    }
    if (request.op === 'claim') return this.answerClaim(link, claim, msg, request);
    if (claim.state === 'claiming' || this.claims.get(claim.groupId) !== claim) {
      return this.answer(msg, { ok: false, error: RELAY_ERRORS.groupNotFound, code: 422 });
    }
    this.counters.served++;
    try {
      const result = this.owner.execute(request);
      this.answer(msg, { ok: true, result: result ?? {} });
    } catch (err) {
      if (err instanceof ServiceError) {
        this.answer(msg, { ok: false, error: err.message, code: err.status });
      } else {
        link.logger.error({ err, group: claim.groupId, op: request.op }, 'relay operation failed');
        this.answer(msg, { ok: false, error: 'Internal Server Error', code: 500 });
      }
    }
  }

  private answerClaim(link: ClusterLink, claim: Claim, msg: Msg, request: RelayRequest): void {
    const theirs = { at: request.at ?? 0, node: request.node };
    // Released meanwhile (deleted, or our create failed): not ours, let the claimant ask again.
    if (this.claims.get(claim.groupId) !== claim) {
      return this.answer(msg, { ok: true, result: { yield: true } });
    }
    if (claim.state === 'owner' || claimBefore({ at: claim.at, node: link.nodeId }, theirs)) {
      return this.answer(msg, { ok: false, error: RELAY_ERRORS.alreadyExists, code: 409 });
    }
    // A better concurrent claim: back off (our create answers 409) and let it ask again.
    claim.lost = true;
    this.counters.claimsLost++;
    this.claims.delete(claim.groupId);
    claim.sub?.unsubscribe();
    claim.sub = null;
    this.answer(msg, { ok: true, result: { yield: true } });
  }

  private refuse(link: ClusterLink, msg: Msg, error: string, code: number, why: string): void {
    this.counters.dropped++;
    link.logger.warn(
      { subject: msg.subject, bytes: msg.data.length, why },
      'relay request refused',
    );
    this.answer(msg, { ok: false, error, code });
  }

  private answer(msg: Msg, reply: RelayReply): void {
    if (!msg.reply) return;
    try {
      msg.respond(encoder.encode(JSON.stringify(reply)));
    } catch {
      // The connection is closing: the requester times out.
    }
  }
}

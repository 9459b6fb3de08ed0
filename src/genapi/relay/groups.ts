import { randomBytes } from 'node:crypto';
import type { Channel } from '../../channel/types.js';
import type { PubSub } from '../../channel/pubsub.js';
import { OptionError } from '../../config/errors.js';
import { syncResponse } from '../response.js';
import { RelayCluster } from './cluster.js';
import { DELIVERY, LocalMembers } from './local.js';
import { fail, RELAY_ERRORS, RelayState, type GroupInfo, type MemberStatus } from './state.js';
import { WIRE_LIMITS, type RelayRequest } from './wire.js';

/** Options of the relay groups service (`relay: {...}` in the gen_api options). */
export interface RelayOptions {
  /** The service name clients call. Default "relay". */
  service?: string;
  /** Groups this gateway may own (create); more answer 'Too many relay groups on this gateway' (429). Default 10 000. */
  maxGroups?: number;
  /** Members of one group; more answer 'Group is full' (409). Default 1 000. */
  maxMembers?: number;
  /** Longest group id, in UTF-8 bytes; longer ones answer 'Group id is too long'. Default 128. */
  maxGroupIdBytes?: number;
  /** Largest operation sent to or accepted from another gateway (a relay message with its envelope), in bytes; larger ones answer 'Relay message is too large' (413). Default 256 KiB. */
  maxRequestBytes?: number;
  /** How long a gateway waits for a group's owner to answer (below the 5 s function timeout). Default 4 000 ms. */
  requestTimeoutMs?: number;
  /** The pause between the two quiet rounds of a create's claim (protocol/relay.md §3). Default 50 ms. */
  claimSettleMs?: number;
  /** How long one claim round waits for an answer before asking again. Default 250 ms. */
  claimRoundMs?: number;
  /** Claim rounds before a create gives up with 'Relay group owner did not answer'. Default 8. */
  claimAttempts?: number;
  /** How often an owner checks that the gateways holding its members' channels are alive; members on a gone gateway leave. Default 5 000 ms. */
  nodeCheckMs?: number;
}

/** Defaults of `RelayOptions` (gen_api's `relay` option). */
export const RELAY_DEFAULTS = {
  service: 'relay',
  maxGroups: 10_000,
  maxMembers: 1_000,
  maxGroupIdBytes: 128,
  maxRequestBytes: 256 * 1024,
  requestTimeoutMs: 4_000,
  claimSettleMs: 50,
  claimRoundMs: 250,
  claimAttempts: 8,
  nodeCheckMs: 5_000,
} as const;

/** Relay counters (health). */
export interface RelayStats {
  /** Groups this gateway owns. */
  groups: number;
  /** Groups with channels on this gateway. */
  localGroups: number;
  forwarded: number;
  served: number;
  dropped: number;
  claimsLost: number;
  nodesGone: number;
  pushed: number;
  deliveriesDropped: number;
}

/**
 * Relay groups (PhoenixGenApi's RelayServer) across gateways: a group lives on the gateway that
 * created it (its owner, which keeps the state and decides every operation); the others forward
 * their callers' operations to it over NATS. Members' channels stay on their own gateway, and
 * relay messages reach them through the gateway's PubSub on the group's internal topic. Without a
 * cluster every group is owned here and the same path runs in-process.
 */
export class RelayGroups {
  readonly service: string;
  private readonly state: RelayState;
  private readonly local: LocalMembers;
  /** The NATS side: add it with `gateway.addClusterComponent`. */
  readonly cluster: RelayCluster;
  private readonly limits: Required<Omit<RelayOptions, 'service'>>;

  constructor(
    /** The event relay messages are pushed on (the gen_api event). */
    event: string,
    /** The gateway's PubSub (across gateways once the cluster connects). */
    pubsub: PubSub,
    private readonly nodeId: string,
    options: RelayOptions = {},
    private readonly now: () => Date = () => new Date(),
  ) {
    const { service, ...limits } = { ...RELAY_DEFAULTS, ...options };
    if (typeof service !== 'string' || service === '' || /[\s.*>]/.test(service))
      throw new OptionError(`relay.service must be a service name, got ${JSON.stringify(service)}`);
    for (const [key, value] of Object.entries(limits)) {
      const least = key === 'claimSettleMs' ? 0 : 1;
      if (!Number.isSafeInteger(value) || value < least)
        throw new OptionError(
          `relay.${key} must be an integer ≥ ${least}, got ${JSON.stringify(value)}`,
        );
    }
    this.service = service;
    this.limits = limits;
    this.state = new RelayState(limits, now);
    this.local = new LocalMembers(pubsub, event, WIRE_LIMITS.maxRecipients, (groupId, userId) =>
      this.channelsEnded(groupId, userId),
    );
    this.cluster = new RelayCluster(
      service,
      {
        execute: (r) => this.execute(r),
        remoteNodes: () => this.state.remoteNodes(nodeId),
        nodeGone: (node) => this.state.nodeGone(node),
      },
      limits,
    );
  }

  /** Groups owned here. */
  get size(): number {
    return this.state.size;
  }

  stats(): RelayStats {
    const { forwarded, served, dropped, claimsLost, nodesGone } = this.cluster.counters;
    return {
      groups: this.state.size,
      localGroups: this.local.size,
      forwarded,
      served,
      dropped,
      claimsLost,
      nodesGone,
      pushed: this.local.counters.pushed,
      deliveriesDropped: this.local.counters.dropped,
    };
  }

  create(
    groupId: string,
    type: string,
    creator: string,
    channel: Channel | null,
  ): void | Promise<void> {
    this.checkId(groupId);
    if (this.cluster.claiming(groupId)) fail(RELAY_ERRORS.alreadyExists, 409);
    this.state.checkCreate(groupId, type);
    const finish = (): void => {
      const topic = `phx_relay:${this.service}:${groupId}:${randomBytes(16).toString('base64url')}`;
      this.state.create(groupId, type, creator, topic);
      if (channel) this.local.register(groupId, topic, creator, channel, false);
    };
    if (!this.cluster.connected) {
      this.cluster.claim(groupId).catch(() => undefined); // registers the group subject for later
      return finish();
    }
    return this.cluster.claim(groupId).then(() => {
      try {
        finish();
      } catch (err) {
        this.cluster.release(groupId);
        throw err;
      }
    });
  }

  join(
    groupId: string,
    userId: string,
    channel: Channel | null,
  ): MemberStatus | Promise<MemberStatus> {
    const joined = this.then(
      this.call({ op: 'join', group_id: groupId, user_id: userId, channel: channel !== null }),
      (result) => {
        // From another gateway: trust only a well-formed answer for this very group.
        const { status, topic } = (result ?? {}) as { status?: unknown; topic?: unknown };
        if (
          (status !== 'active' && status !== 'pending') ||
          typeof topic !== 'string' ||
          !topic.startsWith(`phx_relay:${this.service}:${groupId}:`) ||
          topic.length > groupId.length + this.service.length + 64
        )
          fail(RELAY_ERRORS.ownerUnavailable, 502);
        if (channel) this.local.register(groupId, topic, userId, channel, true);
        return status;
      },
    );
    // Forwarded: answer once our server has the new topic subscription, so that relays sent
    // after the client saw its join reach it.
    return joined instanceof Promise
      ? joined.then((status) => this.cluster.flushed(status))
      : joined;
  }

  leave(groupId: string, userId: string): void | Promise<void> {
    return this.then(this.call({ op: 'leave', group_id: groupId, user_id: userId }), () => {
      // Forget here at once (the owner's 'left' delivery does it on every node).
      this.local.forgetUserIn(groupId, userId);
    });
  }

  accept(groupId: string, actor: string, target: string): void | Promise<void> {
    return this.done(this.call({ op: 'accept', group_id: groupId, user_id: actor, target }));
  }

  mute(groupId: string, actor: string, target: string, muted: boolean): void | Promise<void> {
    const op = muted ? 'mute' : 'unmute';
    return this.done(this.call({ op, group_id: groupId, user_id: actor, target }));
  }

  delete(groupId: string, actor: string): void | Promise<void> {
    return this.done(this.call({ op: 'delete', group_id: groupId, user_id: actor }));
  }

  info(groupId: string, actor: string): GroupInfo | Promise<GroupInfo> {
    return this.call({ op: 'info', group_id: groupId, user_id: actor }) as
      GroupInfo | Promise<GroupInfo>;
  }

  /** Sends `message` from `sender`; returns PhoenixGenApi's `{status, recipients_count}`. */
  relay(
    groupId: string,
    sender: string,
    requestId: unknown,
    message: unknown,
  ):
    | { status: 'relayed'; recipients_count: number }
    | Promise<{ status: 'relayed'; recipients_count: number }> {
    return this.call({
      op: 'relay',
      group_id: groupId,
      user_id: sender,
      request_id: requestId,
      message,
    }) as { status: 'relayed'; recipients_count: number };
  }

  /**
   * Runs an operation on a group owned here (from this gateway or, through the cluster, from
   * another one): the one place the group rules are applied. Throws ServiceError.
   */
  private execute(request: RelayRequest): unknown {
    const { group_id: groupId, user_id: userId } = request;
    switch (request.op) {
      case 'join': {
        const status = this.state.join(groupId, userId, request.channel ? request.node : null);
        return { status, topic: this.state.get(groupId)!.topic };
      }
      case 'leave': {
        this.state.leave(groupId, userId);
        const group = this.state.get(groupId)!;
        this.local.send(group.topic, DELIVERY.left, { user_id: userId });
        return {};
      }
      case 'accept':
        this.state.accept(groupId, userId, request.target!);
        return {};
      case 'mute':
      case 'unmute':
        this.state.mute(groupId, userId, request.target!, request.op === 'mute');
        return {};
      case 'delete': {
        const group = this.state.delete(groupId, userId);
        this.cluster.release(groupId);
        this.local.send(group.topic, DELIVERY.gone, {});
        return {};
      }
      case 'info':
        return this.state.info(groupId, userId);
      case 'relay': {
        const { recipients } = this.state.relay(groupId, userId);
        // Across gateways the message travels over NATS: bound it (a forwarded one already was).
        if (
          this.cluster.connected &&
          request.node === this.nodeId &&
          Buffer.byteLength(JSON.stringify(request.message ?? null)) > this.limits.maxRequestBytes
        )
          fail(RELAY_ERRORS.messageTooLarge, 413);
        const push = syncResponse(request.request_id, {
          group_id: groupId,
          from_user_id: userId,
          message: request.message,
          timestamp: this.now().toISOString(),
        });
        this.local.send(this.state.get(groupId)!.topic, DELIVERY.relay, { to: recipients, push });
        return { status: 'relayed', recipients_count: recipients.length };
      }
      case 'ended':
        this.state.channelsEnded(groupId, userId, request.node);
        return undefined;
      case 'claim':
        return fail(RELAY_ERRORS.badRequest, 400);
    }
  }

  /** Here if the group is owned here, else at its owner (or 'Group not found' without a cluster). */
  private call(request: Omit<RelayRequest, 'node'>): unknown {
    this.checkId(request.group_id);
    const full: RelayRequest = { ...request, node: this.nodeId };
    if (this.state.get(request.group_id)) return this.execute(full);
    return this.cluster.forward(full);
  }

  private channelsEnded(groupId: string, userId: string): void {
    const request: RelayRequest = {
      op: 'ended',
      group_id: groupId,
      user_id: userId,
      node: this.nodeId,
    };
    if (this.state.get(groupId)) this.execute(request);
    else this.cluster.notify(request);
  }

  private checkId(groupId: string): void {
    if (Buffer.byteLength(groupId) > this.limits.maxGroupIdBytes) fail(RELAY_ERRORS.groupIdTooLong);
  }

  private then<T>(value: unknown, next: (value: unknown) => T): T | Promise<T> {
    return value instanceof Promise ? value.then(next) : next(value);
  }

  private done(value: unknown): void | Promise<void> {
    return this.then(value, () => undefined);
  }
}

import type { Channel } from '../channel/types.js';
import { defineService, fn, ServiceError, type ServiceDefinition } from '../worker/define.js';
import type { RequestContext } from '../worker/context.js';
import { syncResponse } from './response.js';

export type GroupType = 'public' | 'private' | 'strict_private';
export type MemberStatus = 'active' | 'pending' | 'muted';
export type MemberRole = 'admin' | 'member';

interface Member {
  roles: Set<MemberRole>;
  status: MemberStatus;
  joinedAt: string;
}

interface Group {
  readonly id: string;
  readonly type: GroupType;
  readonly creator: string;
  readonly members: Map<string, Member>;
  /** user_id → the channels their relay messages go to. */
  readonly channels: Map<string, Set<Channel>>;
}

/** Client-facing relay errors (PhoenixGenApi §1.7); 4xx so the client sees the text. */
export const RELAY_ERRORS = {
  groupNotFound: 'Group not found',
  notMember: 'Not a member of this group',
  pending: 'Pending membership: wait for acceptance',
  muted: 'You are muted and cannot send messages',
  alreadyExists: 'Group already exists',
  alreadyMember: 'Already a member of this group',
  notAdmin: 'Only group admins can do this',
  notPending: 'That member is not pending',
  notStrict: 'Only strict_private groups have muting',
  cannotMute: 'That member cannot be muted',
  notMuted: 'That member is not muted',
  badType: 'Group type must be public, private or strict_private',
} as const;

function fail(message: string, code = 422): never {
  throw new ServiceError(message, code);
}

/**
 * Relay groups (PhoenixGenApi's RelayServer), node-local: members of a group send messages that
 * every active or muted member's channels receive on the gen_api event — pending members receive
 * nothing (⚠ PhoenixGenApi delivered to them too). Joining registers the caller's channel; when
 * that channel ends the member leaves (the creator stays a member, as in PhoenixGenApi).
 */
export class RelayGroups {
  private readonly groups = new Map<string, Group>();

  constructor(
    /** The event relay messages are pushed on (the gen_api event). */
    private readonly event: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get size(): number {
    return this.groups.size;
  }

  create(groupId: string, type: string, creator: string, channel: Channel | null): void {
    if (type !== 'public' && type !== 'private' && type !== 'strict_private')
      fail(RELAY_ERRORS.badType);
    if (this.groups.has(groupId)) fail(RELAY_ERRORS.alreadyExists, 409);
    const group: Group = { id: groupId, type, creator, members: new Map(), channels: new Map() };
    group.members.set(creator, {
      roles: new Set(['admin']),
      status: 'active',
      joinedAt: this.now().toISOString(),
    });
    this.groups.set(groupId, group);
    if (channel) this.register(group, creator, channel, false);
  }

  join(groupId: string, userId: string, channel: Channel | null): MemberStatus {
    const group = this.group(groupId);
    const member = group.members.get(userId);
    let status: MemberStatus;
    if (group.type === 'public') {
      if (member?.status === 'active') fail(RELAY_ERRORS.alreadyMember, 409);
      status = 'active';
    } else {
      if (member?.status === 'active' || member?.status === 'pending')
        fail(RELAY_ERRORS.alreadyMember, 409);
      status = 'pending';
    }
    if (member) member.status = status;
    else
      group.members.set(userId, {
        roles: new Set(['member']),
        status,
        joinedAt: this.now().toISOString(),
      });
    if (channel) this.register(group, userId, channel, true);
    return status;
  }

  leave(groupId: string, userId: string): void {
    const group = this.group(groupId);
    if (!group.members.has(userId)) fail(RELAY_ERRORS.notMember, 403);
    this.remove(group, userId);
  }

  accept(groupId: string, actor: string, target: string): void {
    const group = this.group(groupId);
    this.requireActive(group, actor, group.type === 'strict_private');
    const member = group.members.get(target);
    if (!member) fail(RELAY_ERRORS.notMember, 403);
    if (member.status !== 'pending') fail(RELAY_ERRORS.notPending);
    member.status = 'active';
  }

  mute(groupId: string, actor: string, target: string, muted: boolean): void {
    const group = this.group(groupId);
    if (group.type !== 'strict_private') fail(RELAY_ERRORS.notStrict);
    this.requireActive(group, actor, true);
    const member = group.members.get(target);
    if (!member) fail(RELAY_ERRORS.notMember, 403);
    if (muted) {
      if (member.status !== 'active') fail(RELAY_ERRORS.cannotMute);
      member.status = 'muted';
    } else {
      if (member.status !== 'muted') fail(RELAY_ERRORS.notMuted);
      member.status = 'active';
    }
  }

  /** Deleting needs an admin (⚠ PhoenixGenApi let anyone delete). */
  delete(groupId: string, actor: string): void {
    const group = this.group(groupId);
    this.requireActive(group, actor, true);
    this.groups.delete(groupId);
  }

  /** Members only (⚠ PhoenixGenApi showed any group to anyone). */
  info(
    groupId: string,
    actor: string,
  ): {
    group_id: string;
    group_type: GroupType;
    members: { user_id: string; roles: MemberRole[]; status: MemberStatus; joined_at: string }[];
  } {
    const group = this.group(groupId);
    if (!group.members.has(actor)) fail(RELAY_ERRORS.notMember, 403);
    return {
      group_id: group.id,
      group_type: group.type,
      members: [...group.members].map(([userId, member]) => ({
        user_id: userId,
        roles: [...member.roles],
        status: member.status,
        joined_at: member.joinedAt,
      })),
    };
  }

  /** Sends `message` from `sender`; returns PhoenixGenApi's `{status, recipients_count}`. */
  relay(
    groupId: string,
    sender: string,
    requestId: unknown,
    message: unknown,
  ): { status: 'relayed'; recipients_count: number } {
    const group = this.group(groupId);
    const member = group.members.get(sender);
    if (!member) fail(RELAY_ERRORS.notMember, 403);
    if (member.status === 'pending') fail(RELAY_ERRORS.pending, 403);
    if (member.status === 'muted') fail(RELAY_ERRORS.muted, 403);
    const payload = syncResponse(requestId, {
      group_id: groupId,
      from_user_id: sender,
      message,
      timestamp: this.now().toISOString(),
    });
    let recipients = 0;
    for (const [userId, state] of group.members) {
      if (state.status === 'pending') continue;
      recipients++;
      for (const channel of group.channels.get(userId) ?? []) channel.push(this.event, payload);
    }
    return { status: 'relayed', recipients_count: recipients };
  }

  private group(groupId: string): Group {
    return this.groups.get(groupId) ?? fail(RELAY_ERRORS.groupNotFound, 422);
  }

  private requireActive(group: Group, actor: string, admin: boolean): void {
    const member = group.members.get(actor);
    if (!member) fail(RELAY_ERRORS.notMember, 403);
    if (member.status !== 'active' || (admin && !member.roles.has('admin')))
      fail(RELAY_ERRORS.notAdmin, 403);
  }

  /** Registers a channel for delivery; a monitored registration leaves the group when the channel ends. */
  private register(group: Group, userId: string, channel: Channel, monitored: boolean): void {
    let set = group.channels.get(userId);
    if (!set) {
      set = new Set();
      group.channels.set(userId, set);
    }
    if (set.has(channel)) return;
    set.add(channel);
    channel.signal.addEventListener(
      'abort',
      () => {
        const current = this.groups.get(group.id);
        const channels = current?.channels.get(userId);
        if (!current || !channels) return;
        channels.delete(channel);
        if (channels.size > 0) return;
        current.channels.delete(userId);
        if (monitored && userId !== current.creator) current.members.delete(userId);
      },
      { once: true },
    );
  }

  private remove(group: Group, userId: string): void {
    group.members.delete(userId);
    group.channels.delete(userId);
  }
}

function caller(ctx: RequestContext): string {
  if (ctx.userId === null) fail('Authentication required', 401);
  return ctx.userId;
}

function originChannel(ctx: RequestContext): Channel | null {
  const origin = ctx.origin as Channel | undefined;
  return origin && typeof origin.push === 'function' && origin.signal instanceof AbortSignal
    ? origin
    : null;
}

/** Relay groups as an in-process gen_api service (register with `genApi.register`). */
export function relayService(relay: RelayGroups, name = 'relay'): ServiceDefinition {
  return defineService({
    name,
    version: '1.0.0',
    description: 'relay groups (node-local)',
    functions: {
      create_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', type: { type: 'string', default_value: 'public' } },
        handler: ({ group_id, type }, ctx) => {
          relay.create(group_id, type, caller(ctx), originChannel(ctx));
          return { group_id, type };
        },
      }),
      join_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) => ({
          group_id,
          status: relay.join(group_id, caller(ctx), originChannel(ctx)),
        }),
      }),
      leave_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) => {
          relay.leave(group_id, caller(ctx));
          return { group_id };
        },
      }),
      accept_member: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', user_id: 'string' },
        handler: ({ group_id, user_id }, ctx) => {
          relay.accept(group_id, caller(ctx), user_id);
          return { group_id, user_id, status: 'active' };
        },
      }),
      mute_member: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', user_id: 'string' },
        handler: ({ group_id, user_id }, ctx) => {
          relay.mute(group_id, caller(ctx), user_id, true);
          return { group_id, user_id, status: 'muted' };
        },
      }),
      unmute_member: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', user_id: 'string' },
        handler: ({ group_id, user_id }, ctx) => {
          relay.mute(group_id, caller(ctx), user_id, false);
          return { group_id, user_id, status: 'active' };
        },
      }),
      delete_group: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) => {
          relay.delete(group_id, caller(ctx));
          return { group_id };
        },
      }),
      group_info: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string' },
        handler: ({ group_id }, ctx) => relay.info(group_id, caller(ctx)),
      }),
      relay: fn({
        permission: 'any_authenticated',
        args: { group_id: 'string', message: 'any' },
        handler: ({ group_id, message }, ctx) =>
          relay.relay(group_id, caller(ctx), ctx.requestId, message),
      }),
    },
  });
}

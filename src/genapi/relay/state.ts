import { ServiceError } from '../../worker/define.js';

export type GroupType = 'public' | 'private' | 'strict_private';
export type MemberStatus = 'active' | 'pending' | 'muted';
export type MemberRole = 'admin' | 'member';

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
  // Limits and cluster failures (gen-gateway additions).
  groupIdTooLong: 'Group id is too long',
  tooManyGroups: 'Too many relay groups on this gateway',
  groupFull: 'Group is full',
  messageTooLarge: 'Relay message is too large',
  ownerUnavailable: 'Relay group owner did not answer',
  badRequest: 'Bad relay request',
} as const;

export function fail(message: string, code = 422): never {
  throw new ServiceError(message, code);
}

/** `group_info`'s result. */
export interface GroupInfo {
  group_id: string;
  group_type: GroupType;
  members: { user_id: string; roles: MemberRole[]; status: MemberStatus; joined_at: string }[];
}

/** What the owner's state decided for a relay: the members to deliver to and the count. */
export interface RelayDecision {
  recipients: string[];
}

interface Member {
  roles: Set<MemberRole>;
  status: MemberStatus;
  joinedAt: string;
  /** Nodes holding a monitored channel of this member (a join's channel): it leaves when none is left. */
  nodes: Set<string>;
}

/** One group, as held by its owner node. */
export interface OwnedGroup {
  readonly id: string;
  readonly type: GroupType;
  readonly creator: string;
  /** The internal PubSub topic relay messages travel on (unguessable: clients cannot join it). */
  readonly topic: string;
  readonly members: Map<string, Member>;
}

export function isGroupType(type: unknown): type is GroupType {
  return type === 'public' || type === 'private' || type === 'strict_private';
}

/**
 * The groups this node owns and PhoenixGenApi's RelayServer rules on them. Pure state: no
 * channels, no transport. Every operation names the acting user (from the gateway, never the
 * client) and, where channels matter, the node the channel lives on.
 */
export class RelayState {
  private readonly groups = new Map<string, OwnedGroup>();
  /** Node → how many members have a monitored channel there (to check those nodes are alive). */
  private readonly nodeRefs = new Map<string, number>();

  constructor(
    private readonly limits: { maxGroups: number; maxMembers: number },
    private readonly now: () => Date,
  ) {}

  get size(): number {
    return this.groups.size;
  }

  get(groupId: string): OwnedGroup | undefined {
    return this.groups.get(groupId);
  }

  ids(): IterableIterator<string> {
    return this.groups.keys();
  }

  /** Checks that a group could be created here (before the cluster claim). */
  checkCreate(groupId: string, type: unknown): asserts type is GroupType {
    if (!isGroupType(type)) fail(RELAY_ERRORS.badType);
    if (this.groups.has(groupId)) fail(RELAY_ERRORS.alreadyExists, 409);
    if (this.groups.size >= this.limits.maxGroups) fail(RELAY_ERRORS.tooManyGroups, 429);
  }

  create(groupId: string, type: unknown, creator: string, topic: string): OwnedGroup {
    this.checkCreate(groupId, type);
    const group: OwnedGroup = { id: groupId, type, creator, topic, members: new Map() };
    group.members.set(creator, {
      roles: new Set(['admin']),
      status: 'active',
      joinedAt: this.now().toISOString(),
      nodes: new Set(),
    });
    this.groups.set(groupId, group);
    return group;
  }

  /** `node`: the node of the joining channel (null: no channel, the member stays until it leaves). */
  join(groupId: string, userId: string, node: string | null): MemberStatus {
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
    if (member) {
      member.status = status;
      if (node !== null) this.addNode(member, node);
    } else {
      if (group.members.size >= this.limits.maxMembers) fail(RELAY_ERRORS.groupFull, 409);
      const added: Member = {
        roles: new Set(['member']),
        status,
        joinedAt: this.now().toISOString(),
        nodes: new Set(),
      };
      if (node !== null) this.addNode(added, node);
      group.members.set(userId, added);
    }
    return status;
  }

  leave(groupId: string, userId: string): void {
    const group = this.group(groupId);
    if (!group.members.has(userId)) fail(RELAY_ERRORS.notMember, 403);
    this.removeMember(group, userId);
  }

  /** The last monitored channel of `userId` on `node` ended: the member leaves (not the creator). */
  channelsEnded(groupId: string, userId: string, node: string): void {
    const group = this.groups.get(groupId);
    const member = group?.members.get(userId);
    if (!group || !member || !member.nodes.delete(node)) return;
    this.unrefNode(node);
    if (member.nodes.size === 0 && userId !== group.creator) this.removeMember(group, userId);
  }

  /** Nodes other than `self` holding members' channels. */
  remoteNodes(self: string): string[] {
    return [...this.nodeRefs.keys()].filter((node) => node !== self);
  }

  /** `node` is gone (its channels with it): as if each of its members' channels ended. */
  nodeGone(node: string): number {
    if (!this.nodeRefs.has(node)) return 0;
    let ended = 0;
    for (const group of this.groups.values()) {
      for (const [userId, member] of [...group.members]) {
        if (!member.nodes.has(node)) continue;
        this.channelsEnded(group.id, userId, node);
        ended++;
      }
    }
    return ended;
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
  delete(groupId: string, actor: string): OwnedGroup {
    const group = this.group(groupId);
    this.requireActive(group, actor, true);
    this.groups.delete(groupId);
    for (const member of group.members.values())
      for (const node of member.nodes) this.unrefNode(node);
    return group;
  }

  /** Members only (⚠ PhoenixGenApi showed any group to anyone). */
  info(groupId: string, actor: string): GroupInfo {
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

  /** Checks the sender; the recipients are the active and muted members (pending ones get nothing). */
  relay(groupId: string, sender: string): RelayDecision {
    const group = this.group(groupId);
    const member = group.members.get(sender);
    if (!member) fail(RELAY_ERRORS.notMember, 403);
    if (member.status === 'pending') fail(RELAY_ERRORS.pending, 403);
    if (member.status === 'muted') fail(RELAY_ERRORS.muted, 403);
    const recipients: string[] = [];
    for (const [userId, state] of group.members)
      if (state.status !== 'pending') recipients.push(userId);
    return { recipients };
  }

  private addNode(member: Member, node: string): void {
    if (member.nodes.has(node)) return;
    member.nodes.add(node);
    this.nodeRefs.set(node, (this.nodeRefs.get(node) ?? 0) + 1);
  }

  private unrefNode(node: string): void {
    const refs = (this.nodeRefs.get(node) ?? 0) - 1;
    if (refs > 0) this.nodeRefs.set(node, refs);
    else this.nodeRefs.delete(node);
  }

  private removeMember(group: OwnedGroup, userId: string): void {
    const member = group.members.get(userId);
    if (!member) return;
    group.members.delete(userId);
    for (const node of member.nodes) this.unrefNode(node);
  }

  private group(groupId: string): OwnedGroup {
    return this.groups.get(groupId) ?? fail(RELAY_ERRORS.groupNotFound, 422);
  }

  private requireActive(group: OwnedGroup, actor: string, admin: boolean): void {
    const member = group.members.get(actor);
    if (!member) fail(RELAY_ERRORS.notMember, 403);
    if (member.status !== 'active' || (admin && !member.roles.has('admin')))
      fail(RELAY_ERRORS.notAdmin, 403);
  }
}

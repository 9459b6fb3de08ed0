/**
 * Relay groups across gateways (protocol/relay.md): three real gateway processes, each on its own
 * server of a 3-server NATS cluster, and real `phoenix` clients on the gen_api channel. A group
 * lives on the gateway that created it; members on other gateways get the same replies, errors,
 * deliveries and recipients_count as on one gateway.
 */
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../support/gateway-process.js';
import { NatsCluster } from '../support/nats.js';
import { replyOf } from '../support/phoenix-client.js';
import { heartbeatRoundTrip } from '../support/genapi-phoenix.js';
import { eventually, until } from '../support/wait.js';

const TOPIC = 'gen_api:lobby';
const EVENT = 'phoenix_gen_api';
// Owners check every 300 ms that the gateways of their members are alive (default 5 s).
const CONFIG = { demo: true, genApi: { relay: { nodeCheckMs: 300 } } };

interface Response {
  request_id: unknown;
  result: unknown;
  success: boolean;
  error: unknown;
  async: boolean;
  has_more: boolean;
  can_retry: boolean;
}

interface RelayMessage {
  group_id: string;
  from_user_id: string;
  message: unknown;
  timestamp: string;
}

let counter = 0;
const sockets: Socket[] = [];

/** A user on one gateway: a phoenix socket and its gen_api channel, with what it received. */
class Member {
  /** Every push on the gen_api event, in arrival order. */
  readonly pushes: Response[] = [];

  private constructor(
    readonly user: string,
    readonly socket: Socket,
    readonly channel: Channel,
  ) {}

  static async on(gw: GatewayProcess, user: string): Promise<Member> {
    const socket = new Socket(gw.socketUrl, {
      transport: WebSocket as unknown as TransportConstructor,
      params: { user_id: user },
    });
    sockets.push(socket);
    socket.connect();
    await until(() => socket.isConnected(), `${user}'s socket open`);
    const channel = socket.channel(TOPIC, {});
    const member = new Member(user, socket, channel);
    channel.on(EVENT, (payload) => member.pushes.push(payload as Response));
    const join = await replyOf(channel.join());
    expect(join.status).toBe('ok');
    return member;
  }

  /** Relay messages received (pushes whose result names a sender). */
  get messages(): RelayMessage[] {
    return this.pushes
      .map((push) => push.result as Partial<RelayMessage> | null)
      .filter((result): result is RelayMessage => typeof result?.from_user_id === 'string');
  }

  /** Calls a relay function and returns its response (not the relay message it may also get). */
  async call(requestType: string, args: object): Promise<Response> {
    const requestId = `r${++counter}`;
    const reply = await replyOf(
      this.channel.push(EVENT, {
        request_id: requestId,
        service: 'relay',
        request_type: requestType,
        args,
      }),
    );
    expect(reply.status).toBe('ok');
    return until(
      () =>
        this.pushes.find(
          (push) =>
            push.request_id === requestId &&
            typeof (push.result as { from_user_id?: unknown } | null)?.from_user_id !== 'string',
        ),
      `the response to ${requestType} ${JSON.stringify(args)} for ${this.user}`,
    );
  }

  /** Calls and expects success; returns the result. */
  async ok(requestType: string, args: object): Promise<Record<string, unknown>> {
    const response = await this.call(requestType, args);
    expect(response, `${this.user} ${requestType}`).toMatchObject({ success: true, error: null });
    return response.result as Record<string, unknown>;
  }

  /** Waits for the relay message `message` and returns it. */
  received(message: unknown): Promise<RelayMessage> {
    return until(
      () => this.messages.find((m) => JSON.stringify(m.message) === JSON.stringify(message)),
      `${this.user} receives ${JSON.stringify(message)}`,
    );
  }

  leave(): Promise<unknown> {
    return replyOf(this.channel.leave());
  }
}

let nats: NatsCluster;
let a: GatewayProcess;
let b: GatewayProcess;
let c: GatewayProcess;
let groupCounter = 0;
const gid = (name: string): string => `${name}-${++groupCounter}`;

beforeAll(async () => {
  nats = await NatsCluster.start();
  [a, b, c] = (await Promise.all(
    nats.urls.map((url) => GatewayProcess.start({ config: CONFIG, nats: url })),
  )) as [GatewayProcess, GatewayProcess, GatewayProcess];
}, 90_000);
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});
afterAll(async () => {
  for (const gw of [a, b, c]) if (gw) await gw.stop().catch(() => undefined);
  await nats?.dispose();
});

describe('relay groups across gateways', () => {
  it('members on A, B and C receive every member relay, with the cluster-wide recipients_count', async () => {
    const group = gid('pub');
    const alice = await Member.on(a, 'alice');
    const bob = await Member.on(b, 'bob');
    const carol = await Member.on(c, 'carol');
    expect(await alice.ok('create_group', { group_id: group, type: 'public' })).toEqual({
      group_id: group,
      type: 'public',
    });
    expect(await bob.ok('join_group', { group_id: group })).toEqual({
      group_id: group,
      status: 'active',
    });
    expect(await carol.ok('join_group', { group_id: group })).toEqual({
      group_id: group,
      status: 'active',
    });
    for (const sender of [alice, bob, carol]) {
      const text = `hello from ${sender.user}`;
      const sent = await sender.call('relay', { group_id: group, message: text });
      expect(sent).toMatchObject({
        success: true,
        result: { status: 'relayed', recipients_count: 3 },
      });
      for (const member of [alice, bob, carol]) {
        const got = await member.received(text);
        expect(got).toMatchObject({ group_id: group, from_user_id: sender.user });
        expect(got.timestamp).toMatch(/Z$/);
        const push = member.pushes.find((p) => p.result === got)!;
        expect(push).toMatchObject({
          request_id: sent.request_id,
          success: true,
          async: false,
          has_more: false,
          error: null,
          can_retry: false,
        });
      }
    }
    // Exactly once each.
    for (const member of [alice, bob, carol]) {
      await heartbeatRoundTrip(member.socket);
      expect(member.messages).toHaveLength(3);
    }
    expect(await carol.ok('group_info', { group_id: group })).toMatchObject({
      group_id: group,
      group_type: 'public',
      members: [
        { user_id: 'alice', roles: ['admin'], status: 'active' },
        { user_id: 'bob', roles: ['member'], status: 'active' },
        { user_id: 'carol', roles: ['member'], status: 'active' },
      ],
    });
  });

  it('private group: a pending member on C gets nothing; a member on B accepts it', async () => {
    const group = gid('priv');
    const alice = await Member.on(a, 'alice');
    const bob = await Member.on(b, 'bob');
    const carol = await Member.on(c, 'carol');
    await alice.ok('create_group', { group_id: group, type: 'private' });
    expect(await bob.ok('join_group', { group_id: group })).toMatchObject({ status: 'pending' });
    expect(await carol.ok('join_group', { group_id: group })).toMatchObject({ status: 'pending' });
    expect(await bob.call('relay', { group_id: group, message: 'let me in' })).toMatchObject({
      success: false,
      error: 'Pending membership: wait for acceptance',
      result: null,
    });
    await alice.ok('accept_member', { group_id: group, user_id: 'bob' });
    expect(await alice.call('relay', { group_id: group, message: 'secret' })).toMatchObject({
      result: { recipients_count: 2 },
    });
    await bob.received('secret');
    // bob (B) accepts carol (C): both forwarded to the owner on A.
    expect(await bob.ok('accept_member', { group_id: group, user_id: 'carol' })).toEqual({
      group_id: group,
      user_id: 'carol',
      status: 'active',
    });
    expect(await alice.call('relay', { group_id: group, message: 'welcome' })).toMatchObject({
      result: { recipients_count: 3 },
    });
    // The owner publishes deliveries in order: had carol got 'secret', it would be here first.
    await carol.received('welcome');
    expect(carol.messages.map((m) => m.message)).toEqual(['welcome']);
  });

  it('strict_private: the admin mutes and unmutes a member on another gateway from a third one', async () => {
    const group = gid('strict');
    const admin = await Member.on(b, 'admin1');
    const dave = await Member.on(c, 'dave');
    const erin = await Member.on(a, 'erin');
    await admin.ok('create_group', { group_id: group, type: 'strict_private' });
    await dave.ok('join_group', { group_id: group });
    await erin.ok('join_group', { group_id: group });
    // The admin's second socket, on A: its operations go to the owner, B.
    const adminOnA = await Member.on(a, 'admin1');
    await adminOnA.ok('accept_member', { group_id: group, user_id: 'dave' });
    expect(await dave.call('accept_member', { group_id: group, user_id: 'erin' })).toMatchObject({
      success: false,
      error: 'Only group admins can do this',
    });
    await adminOnA.ok('accept_member', { group_id: group, user_id: 'erin' });
    expect(await adminOnA.ok('mute_member', { group_id: group, user_id: 'dave' })).toEqual({
      group_id: group,
      user_id: 'dave',
      status: 'muted',
    });
    expect(await dave.call('relay', { group_id: group, message: 'can I?' })).toMatchObject({
      success: false,
      error: 'You are muted and cannot send messages',
    });
    // Muted members still receive and count.
    expect(await erin.call('relay', { group_id: group, message: 'to all' })).toMatchObject({
      result: { recipients_count: 3 },
    });
    await dave.received('to all');
    await admin.received('to all');
    expect(await adminOnA.call('mute_member', { group_id: group, user_id: 'dave' })).toMatchObject({
      success: false,
      error: 'That member cannot be muted',
    });
    await adminOnA.ok('unmute_member', { group_id: group, user_id: 'dave' });
    expect(await dave.call('relay', { group_id: group, message: 'back' })).toMatchObject({
      result: { status: 'relayed', recipients_count: 3 },
    });
    await erin.received('back');
  });

  it('a member whose channel ends on a non-owner gateway leaves; leave_group from another gateway', async () => {
    const group = gid('leave');
    const alice = await Member.on(a, 'alice');
    const bob = await Member.on(b, 'bob');
    const carol = await Member.on(c, 'carol');
    await alice.ok('create_group', { group_id: group });
    await bob.ok('join_group', { group_id: group });
    await carol.ok('join_group', { group_id: group });
    await bob.leave();
    await eventually(async () => {
      const info = await alice.ok('group_info', { group_id: group });
      expect((info.members as { user_id: string }[]).map((m) => m.user_id)).toEqual([
        'alice',
        'carol',
      ]);
    }, 'bob left when his channel on B ended');
    expect(await carol.ok('leave_group', { group_id: group })).toEqual({ group_id: group });
    expect(await carol.call('relay', { group_id: group, message: 'x' })).toMatchObject({
      success: false,
      error: 'Not a member of this group',
    });
    expect(await alice.call('relay', { group_id: group, message: 'alone' })).toMatchObject({
      result: { recipients_count: 1 },
    });
    await alice.received('alone');
    await heartbeatRoundTrip(carol.socket);
    expect(carol.messages).toEqual([]);
  });

  it('the creator stays a member when its channel ends; delete from another gateway', async () => {
    const group = gid('del');
    const alice = await Member.on(c, 'alice');
    const bob = await Member.on(a, 'bob');
    await alice.ok('create_group', { group_id: group });
    await bob.ok('join_group', { group_id: group });
    expect(await bob.call('delete_group', { group_id: group })).toMatchObject({
      success: false,
      error: 'Only group admins can do this',
    });
    const aliceOnB = await Member.on(b, 'alice');
    await alice.leave();
    expect(await aliceOnB.ok('group_info', { group_id: group })).toMatchObject({
      members: [{ user_id: 'alice' }, { user_id: 'bob' }],
    });
    expect(await aliceOnB.ok('delete_group', { group_id: group })).toEqual({ group_id: group });
    for (const [member, op, args] of [
      [bob, 'group_info', {}],
      [bob, 'relay', { message: 'm' }],
      [aliceOnB, 'join_group', {}],
    ] as const) {
      expect(await member.call(op, { group_id: group, ...args })).toMatchObject({
        success: false,
        error: 'Group not found',
        can_retry: false,
      });
    }
    // The id is free again, anywhere.
    await bob.ok('create_group', { group_id: group });
  });

  it('every error reads exactly as on one gateway', async () => {
    /** One scripted session; `where(i)` says on which gateway the i-th user is. */
    async function script(where: (i: number) => GatewayProcess, tag: string): Promise<unknown[]> {
      const group = gid(`err-${tag}`);
      const [owner, u1, u2] = (await Promise.all(
        ['owner', 'u1', 'u2'].map((user, i) => Member.on(where(i), user)),
      )) as [Member, Member, Member];
      const out: unknown[] = [];
      const record = async (m: Member, op: string, args: object): Promise<void> => {
        const { request_id: _id, ...rest } = await m.call(op, { group_id: group, ...args });
        out.push([m.user, op, rest]);
      };
      await record(u1, 'join_group', {});
      await record(u1, 'group_info', {});
      await record(owner, 'create_group', { type: 'strict_private' });
      await record(u1, 'create_group', {});
      await record(owner, 'create_group', { type: 'nope' });
      await record(u1, 'group_info', {});
      await record(u1, 'relay', { message: 1 });
      await record(u1, 'join_group', {});
      await record(u1, 'join_group', {});
      await record(u1, 'relay', { message: 1 });
      await record(u2, 'accept_member', { user_id: 'u1' });
      await record(owner, 'accept_member', { user_id: 'nobody' });
      await record(owner, 'unmute_member', { user_id: 'u1' });
      await record(owner, 'accept_member', { user_id: 'u1' });
      await record(owner, 'accept_member', { user_id: 'u1' });
      await record(u1, 'mute_member', { user_id: 'owner' });
      await record(owner, 'mute_member', { user_id: 'u1' });
      await record(u1, 'relay', { message: 1 });
      await record(u2, 'leave_group', {});
      await record(u1, 'delete_group', {});
      await record(owner, 'delete_group', {});
      await record(owner, 'relay', { message: 1 });
      for (const socket of sockets.splice(0)) socket.disconnect();
      return JSON.parse(JSON.stringify(out).replaceAll(group, '<group>')) as unknown[];
    }
    const single = await script(() => a, 'single');
    const spread = await script((i) => [a, b, c][i]!, 'spread');
    expect(spread).toEqual(single);
    expect(single).toContainEqual([
      'u1',
      'join_group',
      expect.objectContaining({ success: false, error: 'Group not found' }),
    ]);
  });

  it('concurrent creates of one id on three gateways: exactly one wins, every time', async () => {
    const racers = await Promise.all([
      Member.on(a, 'racer-a'),
      Member.on(b, 'racer-b'),
      Member.on(c, 'racer-c'),
    ]);
    const wins = new Map<string, number>();
    for (let round = 0; round < 30; round++) {
      const group = gid('race');
      const results = await Promise.all(
        racers.map((m) => m.call('create_group', { group_id: group })),
      );
      const winners = results.flatMap((r, i) => (r.success ? [racers[i]!] : []));
      if (winners.length !== 1) {
        for (const gw of [a, b, c])
          console.log(
            gw.process
              .stdout()
              .split('\n')
              .filter((l) => /"level":[45]0/.test(l))
              .join('\n'),
          );
      }
      expect(winners, `round ${round}: ${JSON.stringify(results)}`).toHaveLength(1);
      for (const r of results.filter((r) => !r.success)) {
        expect(r).toMatchObject({ error: 'Group already exists', can_retry: false });
      }
      const winner = winners[0]!;
      wins.set(winner.user, (wins.get(winner.user) ?? 0) + 1);
      // Everyone agrees on the owner: the others join the winner's group.
      for (const loser of racers.filter((m) => m !== winner))
        await loser.ok('join_group', { group_id: group });
      expect(await winner.ok('group_info', { group_id: group })).toMatchObject({
        members: [{ user_id: winner.user, roles: ['admin'] }, {}, {}],
      });
    }
    expect([...wins.values()].reduce((x, y) => x + y, 0)).toBe(30);
  }, 120_000);

  it('a non-owner gateway dies: its members leave the groups owned elsewhere', async () => {
    const e = await GatewayProcess.start({ config: CONFIG, nats: nats.urls[1] });
    let killed = false;
    try {
      const group = gid('orphans');
      const alice = await Member.on(a, 'alice');
      const bob = await Member.on(e, 'bob');
      const carol = await Member.on(c, 'carol');
      await alice.ok('create_group', { group_id: group });
      await bob.ok('join_group', { group_id: group });
      await carol.ok('join_group', { group_id: group });
      expect(await carol.call('relay', { group_id: group, message: 'all' })).toMatchObject({
        result: { recipients_count: 3 },
      });
      await e.kill();
      killed = true;
      await eventually(async () => {
        const info = await alice.ok('group_info', { group_id: group });
        expect((info.members as { user_id: string }[]).map((m) => m.user_id)).toEqual([
          'alice',
          'carol',
        ]);
      }, 'bob left with his gateway');
      expect(await carol.call('relay', { group_id: group, message: 'fewer' })).toMatchObject({
        result: { recipients_count: 2 },
      });
      // bob, back on another gateway, joins again.
      const bobAgain = await Member.on(b, 'bob');
      expect(await bobAgain.ok('join_group', { group_id: group })).toMatchObject({
        status: 'active',
      });
    } finally {
      if (!killed) await e.kill();
    }
  }, 60_000);

  it("the owner gateway dies: its groups are gone ('Group not found'), ids can be created again", async () => {
    const d = await GatewayProcess.start({ config: CONFIG, nats: nats.urls[0] });
    let killed = false;
    try {
      const group = gid('doomed');
      const owner = await Member.on(d, 'owner');
      const bob = await Member.on(b, 'bob');
      await owner.ok('create_group', { group_id: group });
      await bob.ok('join_group', { group_id: group });
      expect(await bob.call('relay', { group_id: group, message: 'hi' })).toMatchObject({
        result: { recipients_count: 2 },
      });
      await d.kill();
      killed = true;
      await eventually(async () => {
        expect(await bob.call('relay', { group_id: group, message: 'anyone?' })).toMatchObject({
          success: false,
          error: 'Group not found',
        });
      }, 'the dead owner no longer answers');
      await bob.ok('create_group', { group_id: group });
    } finally {
      if (!killed) await d.kill();
    }
  }, 60_000);
});

/**
 * Relay groups over NATS, from the protocol's side (protocol/relay.md): a plain NATS client that
 * knows only the document takes part in a group, malformed or oversized requests and forged
 * deliveries are refused and counted without harming the gateway, the limits answer their errors
 * across gateways, and a gateway that stops takes its groups with it. Two in-process gateways on a
 * real nats-server.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { ApiClient, type ApiResponse } from '../support/genapi-client.js';
import { NatsServer } from '../support/nats.js';
import { eventually, until } from '../support/wait.js';
import { topicToken } from '../../src/nats/topic-token.js';

const LIMITS = { maxMembers: 3, maxGroups: 5, maxRequestBytes: 2048 };
let nats: NatsServer;
let a: GenApiApp;
let b: GenApiApp;
let raw: NatsConnection;
const clients: ApiClient[] = [];
let counter = 0;
let groups = 0;
const gid = (name: string): string => `${name}-${++groups}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

beforeAll(async () => {
  nats = await NatsServer.start();
  [a, b] = (await Promise.all(
    [0, 1].map(() => startGenApiApp({ nats: nats.url, genApi: { relay: LIMITS } })),
  )) as [GenApiApp, GenApiApp];
  raw = await connect({ servers: nats.url });
}, 30_000);
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});
afterAll(async () => {
  await raw?.close();
  await a?.close();
  await b?.close();
  await nats?.dispose();
});

async function user(app: GenApiApp, id: string): Promise<ApiClient> {
  const client = await ApiClient.connect(app.wsUrl(`user_id=${id}`));
  clients.push(client);
  return client;
}

/** Calls a relay function; resolves with its response (not a relay message with the same id). */
async function call(client: ApiClient, requestType: string, args: object): Promise<ApiResponse> {
  const requestId = `n${++counter}`;
  client.call({ request_id: requestId, service: 'relay', request_type: requestType, args });
  return client.until(
    () =>
      client
        .pushes(requestId)
        .find(
          (p) => typeof (p.result as { from_user_id?: unknown } | null)?.from_user_id !== 'string',
        ),
    `${requestType} response`,
  );
}

const subject = (groupId: string): string => `genapi.relay.group.${topicToken(`relay:${groupId}`)}`;

async function ask(groupId: string, body: unknown): Promise<unknown> {
  const data =
    typeof body === 'string' ? encoder.encode(body) : encoder.encode(JSON.stringify(body));
  const msg = await raw.request(subject(groupId), data, { timeout: 5_000 });
  return JSON.parse(decoder.decode(msg.data)) as unknown;
}

describe('relay groups over NATS', () => {
  it('a plain NATS client that follows protocol/relay.md joins, relays and sees deliveries', async () => {
    const group = gid('plain');
    const alice = await user(a, 'alice');
    expect((await call(alice, 'create_group', { group_id: group })).success).toBe(true);
    const joined = (await ask(group, {
      op: 'join',
      group_id: group,
      user_id: 'zed',
      node: 'go-program',
      channel: false,
    })) as { ok: boolean; result: { status: string; topic: string } };
    expect(joined).toMatchObject({ ok: true, result: { status: 'active' } });
    expect(joined.result.topic).toMatch(new RegExp(`^phx_relay:relay:${group}:`));
    // Deliveries travel on the cluster PubSub subject of the group topic.
    const deliveries: unknown[] = [];
    const sub = raw.subscribe(`genapi.topic.${topicToken(joined.result.topic)}`, {
      callback: (_err, msg) => {
        deliveries.push(JSON.parse(decoder.decode(msg.data)));
      },
    });
    await raw.flush();
    expect(
      await ask(group, {
        op: 'relay',
        group_id: group,
        user_id: 'zed',
        node: 'go-program',
        request_id: 'go-1',
        message: { text: 'from Go' },
      }),
    ).toEqual({ ok: true, result: { status: 'relayed', recipients_count: 2 } });
    const pushed = await alice.until(() => alice.pushes('go-1')[0], 'alice gets the relay');
    expect(pushed).toMatchObject({
      success: true,
      result: { group_id: group, from_user_id: 'zed', message: { text: 'from Go' } },
    });
    await until(() => deliveries.length === 1, 'the delivery on NATS');
    expect(deliveries[0]).toMatchObject({ event: 'relay', payload: { to: ['alice', 'zed'] } });
    expect(await ask(group, { op: 'info', group_id: group, user_id: 'nobody', node: 'x' })).toEqual(
      {
        ok: false,
        error: 'Not a member of this group',
        code: 403,
      },
    );
    sub.unsubscribe();
  });

  it('malformed, oversized and mismatched requests are refused and counted; the owner keeps serving', async () => {
    const group = gid('bad');
    const alice = await user(a, 'alice');
    await call(alice, 'create_group', { group_id: group });
    const before = a.genApi.relay!.stats().dropped;
    const bad = { ok: false, error: 'Bad relay request', code: 400 };
    expect(await ask(group, 'not json')).toEqual(bad);
    expect(await ask(group, [1, 2])).toEqual(bad);
    expect(await ask(group, { op: 'nuke', group_id: group, user_id: 'x', node: 'n' })).toEqual(bad);
    expect(
      await ask(group, { op: 'info', group_id: 'other', user_id: 'alice', node: 'n' }),
    ).toEqual(bad);
    expect(
      await ask(group, { op: 'info', group_id: group, user_id: 'x'.repeat(2000), node: 'n' }),
    ).toEqual({ ok: false, error: 'Relay message is too large', code: 413 });
    // Without a reply subject: dropped and counted, nothing else.
    raw.publish(subject(group), encoder.encode('{"op":'));
    await raw.flush();
    await eventually(
      () => expect(a.genApi.relay!.stats().dropped - before).toBe(6),
      'every bad request counted',
    );
    expect((await call(alice, 'relay', { group_id: group, message: 'still here' })).result).toEqual(
      {
        status: 'relayed',
        recipients_count: 1,
      },
    );
  });

  it('a forged delivery on a group topic is dropped and counted, members get nothing', async () => {
    const group = gid('forged');
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    await call(alice, 'create_group', { group_id: group });
    const joined = (await ask(group, {
      op: 'join',
      group_id: group,
      user_id: 'spy',
      node: 'x',
    })) as {
      result: { topic: string };
    };
    await call(bob, 'join_group', { group_id: group });
    const topicSubject = `genapi.topic.${topicToken(joined.result.topic)}`;
    const before = b.genApi.relay!.stats().deliveriesDropped;
    for (const body of [
      { event: 'relay', payload: { to: 'bob', push: {} } },
      { event: 'relay', payload: { to: ['bob'], push: 3 } },
      { event: 'left', payload: {} },
      { event: 'mystery', payload: {} },
    ])
      raw.publish(topicSubject, encoder.encode(JSON.stringify(body)));
    await raw.flush();
    await eventually(
      () => expect(b.genApi.relay!.stats().deliveriesDropped - before).toBe(4),
      'forged deliveries counted on B',
    );
    // bob is still a registered member on B: a real relay reaches him.
    await call(alice, 'relay', { group_id: group, message: 'real' });
    await bob.until(
      () => bob.received.some((r) => JSON.stringify(r.frame).includes('"real"')),
      'bob gets the real relay',
    );
    const relayed = bob.received.filter((r) => JSON.stringify(r.frame).includes('from_user_id'));
    expect(relayed).toHaveLength(1);
  });

  it('limits answer the same errors across gateways', async () => {
    const group = gid('full');
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const carol = await user(b, 'carol');
    const dave = await user(b, 'dave');
    await call(alice, 'create_group', { group_id: group });
    await call(bob, 'join_group', { group_id: group });
    await call(carol, 'join_group', { group_id: group });
    expect(await call(dave, 'join_group', { group_id: group })).toMatchObject({
      success: false,
      error: 'Group is full',
    });
    const big = 'x'.repeat(LIMITS.maxRequestBytes);
    for (const sender of [bob, alice])
      expect(await call(sender, 'relay', { group_id: group, message: big })).toMatchObject({
        success: false,
        error: 'Relay message is too large',
      });
    expect(await call(bob, 'join_group', { group_id: 'g'.repeat(129) })).toMatchObject({
      success: false,
      error: 'Group id is too long',
    });
    // B owns at most 5 groups.
    const own = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        call(dave, 'create_group', { group_id: gid(`many${i}`) }),
      ),
    );
    expect(own.filter((r) => r.success)).toHaveLength(5);
    expect(own.find((r) => !r.success)).toMatchObject({
      error: 'Too many relay groups on this gateway',
    });
    // Deleting frees the places.
    for (const r of own.filter((r) => r.success))
      await call(dave, 'delete_group', { group_id: (r.result as { group_id: string }).group_id });
    expect(b.genApi.relay!.size).toBe(0);
  });

  it("a gateway that stops takes its groups: 'Group not found' elsewhere, the id is free again", async () => {
    const c = await startGenApiApp({ nats: nats.url, genApi: { relay: true } });
    let closed = false;
    try {
      const group = gid('stop');
      const owner = await user(c, 'owner');
      const bob = await user(b, 'bob');
      await call(owner, 'create_group', { group_id: group });
      expect(await call(bob, 'join_group', { group_id: group })).toMatchObject({
        result: { status: 'active' },
      });
      await c.close();
      closed = true;
      expect(await call(bob, 'relay', { group_id: group, message: 'hello?' })).toMatchObject({
        success: false,
        error: 'Group not found',
      });
      expect((await call(bob, 'create_group', { group_id: group })).success).toBe(true);
    } finally {
      if (!closed) await c.close();
    }
  });
});

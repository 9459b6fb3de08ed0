/**
 * Relay groups (PhoenixGenApi §8.2) through the gen_api channel: membership rules per group type,
 * delivery to active and muted members only (pending members receive nothing: the ⚠ fix), the
 * client-visible error strings, and cleanup when a member's channel ends.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import { until } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

const T = 'gen_api';
const E = 'phoenix_gen_api';
let app: GenApiApp;
const clients: RawClient[] = [];
let counter = 0;

beforeAll(async () => {
  app = await startGenApiApp({ genApi: { relay: true } });
});
afterAll(() => app.close());
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

async function user(id: string): Promise<RawClient> {
  const client = await RawClient.connect(app.wsUrl(`user_id=${id}`));
  clients.push(client);
  await client.join(T, '1');
  return client;
}

/**
 * Calls a relay function; returns its response push (the last push for the request before the
 * reply — a sender also receives its own relay message, which carries the same request_id).
 */
async function call(
  client: RawClient,
  requestType: string,
  args: object,
): Promise<Record<string, unknown>> {
  const ref = `c${++counter}`;
  const requestId = `req-${counter}`;
  client.send([
    '1',
    ref,
    T,
    E,
    { request_id: requestId, service: 'relay', request_type: requestType, args },
  ]);
  const others: unknown[][] = [];
  let response: Record<string, unknown> | null = null;
  for (;;) {
    const frame = (await client.next()) as unknown[];
    if (frame[3] === 'phx_reply' && frame[1] === ref) {
      expect(frame).toEqual(['1', ref, T, 'phx_reply', { status: 'ok', response: requestType }]);
      break;
    }
    const payload = frame[4] as Record<string, unknown>;
    if (
      frame[3] === E &&
      payload.request_id === requestId &&
      (payload.result as { from_user_id?: unknown } | null)?.from_user_id === undefined
    ) {
      response = payload;
    } else {
      others.push(frame);
    }
  }
  client.frames.unshift(...(others as never[]));
  if (!response) throw new Error(`no response push for ${requestType}`);
  return response;
}

function messages(client: RawClient): Record<string, unknown>[] {
  return client.frames
    .map((frame) => (frame as unknown[])[4] as { result?: { from_user_id?: string } })
    .filter((payload) => payload?.result?.from_user_id !== undefined);
}

describe('relay groups', () => {
  it('public group: members join active; a message reaches every member (sender included)', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    expect(await call(alice, 'create_group', { group_id: 'pub', type: 'public' })).toMatchObject({
      success: true,
      result: { group_id: 'pub' },
    });
    expect(await call(bob, 'join_group', { group_id: 'pub' })).toMatchObject({
      result: { status: 'active' },
    });
    const sent = await call(alice, 'relay', { group_id: 'pub', message: 'Hello everyone!' });
    expect(sent).toMatchObject({
      success: true,
      result: { status: 'relayed', recipients_count: 2 },
    });
    const delivered = (await bob.next()) as unknown[];
    expect(delivered[3]).toBe(E);
    expect(delivered[4]).toMatchObject({
      request_id: sent.request_id,
      success: true,
      async: false,
      has_more: false,
      error: null,
      can_retry: false,
      result: {
        group_id: 'pub',
        from_user_id: 'alice',
        message: 'Hello everyone!',
        timestamp: expect.stringMatching(/Z$/) as unknown,
      },
    });
    expect(messages(alice)).toHaveLength(1);
  });

  it('private group: pending members receive nothing and cannot send until accepted', async () => {
    const owner = await user('owner');
    const carol = await user('carol');
    await call(owner, 'create_group', { group_id: 'priv', type: 'private' });
    expect(await call(carol, 'join_group', { group_id: 'priv' })).toMatchObject({
      result: { status: 'pending' },
    });
    expect(await call(owner, 'relay', { group_id: 'priv', message: 'secret' })).toMatchObject({
      result: { recipients_count: 1 },
    });
    await carol.nothing(150);
    expect(await call(carol, 'relay', { group_id: 'priv', message: 'let me in' })).toMatchObject({
      success: false,
      error: 'Pending membership: wait for acceptance',
      can_retry: false,
    });
    expect(
      await call(owner, 'accept_member', { group_id: 'priv', user_id: 'carol' }),
    ).toMatchObject({ result: { status: 'active' } });
    expect(await call(owner, 'relay', { group_id: 'priv', message: 'welcome' })).toMatchObject({
      result: { recipients_count: 2 },
    });
    await until(() => messages(carol).length === 1, 'carol gets the message');
    expect(messages(carol)[0]).toMatchObject({ result: { message: 'welcome' } });
  });

  it('strict_private: only admins accept and mute; muted members receive but cannot send', async () => {
    const admin = await user('admin1');
    const dave = await user('dave');
    const erin = await user('erin');
    await call(admin, 'create_group', { group_id: 'strict', type: 'strict_private' });
    await call(dave, 'join_group', { group_id: 'strict' });
    await call(erin, 'join_group', { group_id: 'strict' });
    await call(admin, 'accept_member', { group_id: 'strict', user_id: 'dave' });
    expect(
      await call(dave, 'accept_member', { group_id: 'strict', user_id: 'erin' }),
    ).toMatchObject({ error: 'Only group admins can do this' });
    expect(await call(admin, 'mute_member', { group_id: 'strict', user_id: 'dave' })).toMatchObject(
      { result: { status: 'muted' } },
    );
    expect(await call(dave, 'relay', { group_id: 'strict', message: 'hi' })).toMatchObject({
      error: 'You are muted and cannot send messages',
    });
    expect(
      await call(admin, 'relay', { group_id: 'strict', message: 'announcement' }),
    ).toMatchObject({ result: { recipients_count: 2 } });
    await until(() => messages(dave).length === 1, 'muted dave still receives');
    await erin.nothing(150);
    expect(messages(erin)).toHaveLength(0);
    expect(
      await call(admin, 'unmute_member', { group_id: 'strict', user_id: 'dave' }),
    ).toMatchObject({ result: { status: 'active' } });
    expect(await call(dave, 'relay', { group_id: 'strict', message: 'back' })).toMatchObject({
      success: true,
    });
  });

  it('errors: unknown group, non-member, duplicate, non-admin delete, bad type', async () => {
    const frank = await user('frank');
    const gina = await user('gina');
    expect(await call(frank, 'relay', { group_id: 'nope', message: 'x' })).toMatchObject({
      success: false,
      error: 'Group not found',
    });
    await call(frank, 'create_group', { group_id: 'g1' });
    expect(await call(frank, 'create_group', { group_id: 'g1' })).toMatchObject({
      error: 'Group already exists',
    });
    expect(await call(gina, 'relay', { group_id: 'g1', message: 'x' })).toMatchObject({
      error: 'Not a member of this group',
    });
    expect(await call(gina, 'group_info', { group_id: 'g1' })).toMatchObject({
      error: 'Not a member of this group',
    });
    await call(gina, 'join_group', { group_id: 'g1' });
    expect(await call(gina, 'join_group', { group_id: 'g1' })).toMatchObject({
      error: 'Already a member of this group',
    });
    expect(await call(gina, 'delete_group', { group_id: 'g1' })).toMatchObject({
      error: 'Only group admins can do this',
    });
    expect(await call(frank, 'create_group', { group_id: 'g2', type: 'secret' })).toMatchObject({
      error: 'Group type must be public, private or strict_private',
    });
    expect(await call(frank, 'delete_group', { group_id: 'g1' })).toMatchObject({ success: true });
    expect(await call(gina, 'relay', { group_id: 'g1', message: 'x' })).toMatchObject({
      error: 'Group not found',
    });
  });

  it('a member whose channel ends leaves the group; the creator stays', async () => {
    const host = await user('host');
    const guest = await user('guest');
    await call(host, 'create_group', { group_id: 'temp' });
    await call(guest, 'join_group', { group_id: 'temp' });
    expect(
      ((await call(host, 'group_info', { group_id: 'temp' })).result as { members: unknown[] })
        .members,
    ).toHaveLength(2);
    guest.close();
    await guest.closed;
    await until(() => app.gateway.stats.sockets === clients.length - 1, 'guest socket gone');
    const info = await call(host, 'group_info', { group_id: 'temp' });
    expect(
      (info.result as { members: { user_id: string }[] }).members.map((m) => m.user_id),
    ).toEqual(['host']);
    expect(await call(host, 'relay', { group_id: 'temp', message: 'alone' })).toMatchObject({
      result: { recipients_count: 1 },
    });
  });
});

/**
 * The gen_api channel options of protocol/gen_api.md §1, each through the real `phoenix` 1.8
 * client against an embedded gateway: custom `topics`, `event` and `cancelEvent`; the
 * unknown-event error reply; `overrideUserId: false`, `overrideDeviceId: false`,
 * `trustClientRoles`, `requireVerifiedUserId: false`; and `maxPayloadBytes` measured on the
 * client's frame.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel, Socket } from 'phoenix';
import { defineService, fn } from '../../src/worker/define.js';
import type { GenApiOptions } from '../../src/genapi/gen-api.js';
import { startGenApiApp, type GenApiApp } from '../support/genapi-app.js';
import {
  exchange,
  joinedChannel,
  phoenixSocket,
  resp,
  type Entry,
} from '../support/genapi-phoenix.js';
import { setTimeout as pause } from 'node:timers/promises';
import { replyOf, waitFor } from '../support/phoenix-client.js';

const svc = defineService({
  name: 'opts',
  functions: {
    who: fn({
      handler: (_args, ctx) => ({ user_id: ctx.userId, device_id: ctx.deviceId, roles: ctx.roles }),
    }),
    admin_only: fn({ permission: { role: ['admin'] }, handler: () => 'secret' }),
    echo: fn({ handler: (args) => args }),
    endless: fn({
      response: 'stream',
      timeout: 5_000,
      async handler(_args, ctx) {
        for (let i = 1; !ctx.signal.aborted; i++) {
          await ctx.stream.write(i);
          await pause(20); // the handler's own pace between chunks
        }
      },
    }),
  },
});

const apps: GenApiApp[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  for (const app of apps.splice(0)) await app.close();
});

async function open(
  genApi: GenApiOptions,
  params: Record<string, unknown>,
  topic = 'gen_api:opts',
  event = 'phoenix_gen_api',
) {
  const app = await startGenApiApp({ local: [svc], genApi });
  apps.push(app);
  const socket = await phoenixSocket(app.port, params);
  sockets.push(socket);
  const joined = await joinedChannel(socket, topic, event);
  return { app, socket, ...joined };
}

const who = (id: string, extra: object = {}) => ({
  request_id: id,
  service: 'opts',
  request_type: 'who',
  args: {},
  ...extra,
});

describe('topics, event and cancelEvent', () => {
  it('custom values: joins only the configured topics; requests, pushes and cancels use the configured events; the defaults are unknown events', async () => {
    const { socket, channel, log, join } = await open(
      { topics: ['api', 'api:*'], event: 'api', cancelEvent: 'api_cancel' },
      { user_id: 'u1' },
      'api:lobby',
      'api',
    );
    expect(join).toEqual({ status: 'ok', response: {} });
    // The default topic is not served.
    const other = socket.channel('gen_api:lobby', {});
    expect(await replyOf(other.join())).toEqual({
      status: 'error',
      response: { reason: 'unmatched topic' },
    });
    const bare = await joinedChannel(socket, 'api', 'api');
    expect(bare.join.status).toBe('ok');

    expect(await exchange(channel, log, 'api', who('c1'), 2)).toEqual([
      ['on', resp('c1', { result: { user_id: 'u1', device_id: null, roles: [] } })],
      ['push ok', 'who'],
    ]);
    // Responses come on the configured event only: nothing on the default one.
    let onDefault = 0;
    channel.on('phoenix_gen_api', () => onDefault++);
    expect(await exchange(channel, log, 'phoenix_gen_api', who('c2'), 1)).toEqual([
      ['push error', { reason: 'unknown event phoenix_gen_api' }],
    ]);

    // Cancel on the configured cancel event; the default cancel event is unknown.
    log.length = 0;
    channel.push('api', { request_id: 's1', service: 'opts', request_type: 'endless', args: {} });
    await waitFor(() => log.length >= 4, 'a few chunks');
    expect(await replyOf(channel.push('phoenix_gen_api_cancel', { request_id: 's1' }))).toEqual({
      status: 'error',
      response: { reason: 'unknown event phoenix_gen_api_cancel' },
    });
    expect(await replyOf(channel.push('api_cancel', { request_id: 's1' }))).toEqual({
      status: 'ok',
      response: { cancelled: true },
    });
    await waitFor(
      () => log.some(([, p]) => (p as { has_more?: boolean }).has_more === false),
      'the end push',
    );
    expect(log.at(-1)).toEqual(['on', resp('s1', { async: true })]);
    expect(onDefault).toBe(0);
  });

  it('defaults: an unknown event gets {"reason":"unknown event <e>"} as an error reply and the channel stays usable', async () => {
    const { channel, log } = await open({}, { user_id: 'u1' });
    expect(await replyOf(channel.push('whatever', { request_id: 'x' }))).toEqual({
      status: 'error',
      response: { reason: 'unknown event whatever' },
    });
    expect(await exchange(channel, log, 'phoenix_gen_api', who('after'), 2)).toEqual([
      ['on', resp('after', { result: { user_id: 'u1', device_id: null, roles: [] } })],
      ['push ok', 'who'],
    ]);
  });
});

describe('identity options', () => {
  const run = async (channel: Channel, log: Entry[], id: string, extra: object = {}) => {
    const entries = await exchange(channel, log, 'phoenix_gen_api', who(id, extra), 2);
    expect(entries[1]).toEqual(['push ok', 'who']);
    return (entries[0]![1] as { result: unknown }).result;
  };

  it("default: the socket's user_id and device_id win over the payload's", async () => {
    const { channel, log } = await open({}, { user_id: 'sock-user', device_id: 'sock-dev' });
    expect(
      await run(channel, log, 'i1', { user_id: 'payload-user', device_id: 'payload-dev' }),
    ).toEqual({ user_id: 'sock-user', device_id: 'sock-dev', roles: [] });
  });

  it("overrideUserId false: the payload's user_id wins; the socket's when the payload has none", async () => {
    const { channel, log } = await open(
      { overrideUserId: false },
      { user_id: 'sock-user', device_id: 'sock-dev' },
    );
    expect(
      await run(channel, log, 'i2', { user_id: 'payload-user', device_id: 'payload-dev' }),
    ).toEqual({ user_id: 'payload-user', device_id: 'sock-dev', roles: [] });
    expect(await run(channel, log, 'i3')).toEqual({
      user_id: 'sock-user',
      device_id: 'sock-dev',
      roles: [],
    });
  });

  it("overrideDeviceId false: the payload's device_id wins; the socket's when the payload has none", async () => {
    const { channel, log } = await open(
      { overrideDeviceId: false },
      { user_id: 'sock-user', device_id: 'sock-dev' },
    );
    expect(
      await run(channel, log, 'i4', { user_id: 'payload-user', device_id: 'payload-dev' }),
    ).toEqual({ user_id: 'sock-user', device_id: 'payload-dev', roles: [] });
    expect(await run(channel, log, 'i5')).toEqual({
      user_id: 'sock-user',
      device_id: 'sock-dev',
      roles: [],
    });
  });

  it('trustClientRoles: payload roles count only for sockets without roles; off by default', async () => {
    const admin = {
      request_id: 'r',
      service: 'opts',
      request_type: 'admin_only',
      args: {},
      user_roles: ['admin'],
    };
    const trusted = await open({ trustClientRoles: true }, { user_id: 'u1' });
    expect(
      await exchange(
        trusted.channel,
        trusted.log,
        'phoenix_gen_api',
        { ...admin, request_id: 't1' },
        2,
      ),
    ).toEqual([
      ['on', resp('t1', { result: 'secret' })],
      ['push ok', 'admin_only'],
    ]);
    expect(await run(trusted.channel, trusted.log, 't2', { user_roles: ['admin', '', 7] })).toEqual(
      { user_id: 'u1', device_id: null, roles: ['admin'] },
    );

    const withRoles = await open({ trustClientRoles: true }, { user_id: 'u2', roles: ['member'] });
    expect(
      await exchange(
        withRoles.channel,
        withRoles.log,
        'phoenix_gen_api',
        { ...admin, request_id: 't3' },
        2,
      ),
    ).toEqual([
      ['on', resp('t3', { success: false, error: 'Permission denied' })],
      ['push ok', 'admin_only'],
    ]);
    expect(await run(withRoles.channel, withRoles.log, 't4', { user_roles: ['admin'] })).toEqual({
      user_id: 'u2',
      device_id: null,
      roles: ['member'],
    });

    const untrusted = await open({}, { user_id: 'u3' });
    expect(
      await exchange(
        untrusted.channel,
        untrusted.log,
        'phoenix_gen_api',
        { ...admin, request_id: 't5' },
        2,
      ),
    ).toEqual([
      ['on', resp('t5', { success: false, error: 'Permission denied' })],
      ['push ok', 'admin_only'],
    ]);
  });

  it("requireVerifiedUserId false: a socket without user_id may call; the payload's user_id is ignored", async () => {
    const { channel, log } = await open({ requireVerifiedUserId: false }, { device_id: 'd1' });
    expect(await run(channel, log, 'v1')).toEqual({ user_id: null, device_id: 'd1', roles: [] });
    expect(await run(channel, log, 'v2', { user_id: 'claimed' })).toEqual({
      user_id: null,
      device_id: 'd1',
      roles: [],
    });
  });

  it('trustClientUserId / trustClientDeviceId: the payload fills what the socket lacks; without them it cannot', async () => {
    const plain = await open({}, { user_id: 'u1' });
    expect(await run(plain.channel, plain.log, 'd1', { device_id: 'picked-by-client' })).toEqual({
      user_id: 'u1',
      device_id: null,
      roles: [],
    });
    const trusted = await open(
      { requireVerifiedUserId: false, trustClientUserId: true, trustClientDeviceId: true },
      {},
    );
    expect(
      await run(trusted.channel, trusted.log, 'd2', { user_id: 'claimed', device_id: 'dev' }),
    ).toEqual({ user_id: 'claimed', device_id: 'dev', roles: [] });
  });

  it('requireVerifiedUserId (default): a socket without user_id gets Authentication required', async () => {
    const { channel, log } = await open({}, { device_id: 'd1' });
    expect(
      await exchange(channel, log, 'phoenix_gen_api', who('v3', { user_id: 'claimed' }), 2),
    ).toEqual([
      ['on', resp('v3', { success: false, error: 'Authentication required' })],
      ['push error', 'Authentication required'],
    ]);
  });
});

describe('maxPayloadBytes', () => {
  it("a request frame over the limit: Invalid request with the frame's size; one at the limit passes", async () => {
    const { channel, log } = await open({ maxPayloadBytes: 300 }, { user_id: 'u1' });
    const topic = 'gen_api:opts';
    const frameBytes = (payload: object, ref: string) =>
      Buffer.byteLength(
        JSON.stringify([channel.joinRef(), ref, topic, 'phoenix_gen_api', payload]),
      );
    const big = {
      request_id: 'big',
      service: 'opts',
      request_type: 'echo',
      args: { text: 'x'.repeat(300) },
    };
    log.length = 0;
    const push = channel.push('phoenix_gen_api', big);
    for (const status of ['ok', 'error'])
      push.receive(status, (response) => log.push([`push ${status}`, response]));
    await waitFor(() => log.length >= 2, 'the error push and reply');
    const size = frameBytes(big, String((push as unknown as { ref: string }).ref));
    const message = `Request payload exceeds maximum size of 300 bytes (got ${size} bytes)`;
    expect(log).toEqual([
      ['on', resp('big', { success: false, error: `Invalid request: ${message}` })],
      ['push error', message],
    ]);

    // Pad a request to exactly 300 bytes on the wire: it passes.
    const base = { request_id: 'fit', service: 'opts', request_type: 'echo', args: { text: '' } };
    const nextRef = String(Number((push as unknown as { ref: string }).ref) + 1);
    const fit = { ...base, args: { text: 'y'.repeat(300 - frameBytes(base, nextRef)) } };
    expect(frameBytes(fit, nextRef)).toBe(300);
    expect(await exchange(channel, log, 'phoenix_gen_api', fit, 2)).toEqual([
      ['on', resp('fit', { result: fit.args })],
      ['push ok', 'echo'],
    ]);
  });
});

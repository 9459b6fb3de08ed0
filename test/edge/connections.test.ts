/**
 * Edge defaults at the handshake, through raw upgrades and LongPoll requests against an embedded
 * gateway: `checkOrigin: true` against `publicHosts` (not the Host header), connection caps
 * (total 503, per IP and per user 429, concurrent handshakes included, LongPoll too), the client
 * address behind `trustedProxies`, and `maxTopicBytes` on joins.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { defineChannel, ok, type Assigns } from '../../src/channel/types.js';
import type { SocketOptions } from '../../src/config/socket-options.js';
import type { SocketMount } from '../../src/socket/mount.js';
import { RawClient } from '../support/ws-client.js';
import { lp } from '../support/longpoll-client.js';
import { eventually } from '../support/wait.js';

const room = defineChannel({ join: () => ok() });
const gateways: Gateway[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const gateway of gateways.splice(0)) await gateway.close();
});

/** A gateway with one `/socket` mount whose hook takes `user_id` from the params (tests only). */
async function start(options: SocketOptions<Assigns> = {}) {
  const gateway = createGateway({ logger: false });
  gateways.push(gateway);
  const seen: string[] = [];
  const mount: SocketMount<Assigns> = gateway.socket('/socket', {
    connect: ({ params, peer }) => {
      seen.push(peer.address);
      return { assigns: { user_id: typeof params.user_id === 'string' ? params.user_id : null } };
    },
    ...options,
  });
  mount.channel('room:*', room);
  const { port } = await gateway.listen(0, '127.0.0.1');
  const ws = (query = '') => `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0${query}`;
  const longpoll = (query = '') => `http://127.0.0.1:${port}/socket/longpoll?vsn=2.0.0${query}`;
  return { gateway, mount, port, ws, longpoll, seen };
}

async function hold(url: string, headers?: Record<string, string>): Promise<RawClient> {
  const client = await RawClient.connect(url, headers ? { headers } : {});
  clients.push(client);
  return client;
}

describe('checkOrigin: true checks configured public hosts, not the Host header', () => {
  it('default public hosts: a DNS-rebound Origin matching its own Host header is 403; localhost passes', async () => {
    const { ws } = await start();
    const rebound = await RawClient.handshake(ws(), {
      headers: { origin: 'http://rebind.evil.example:4000', host: 'rebind.evil.example:4000' },
    });
    expect(rebound.status).toBe(403);
    for (const origin of ['http://localhost:4000', 'http://127.0.0.1:5173']) {
      expect((await RawClient.handshake(ws(), { headers: { origin } })).status).toBe(101);
    }
    // Non-browser clients send no Origin and are not checked.
    expect((await RawClient.handshake(ws())).status).toBe(101);
  });

  it('publicHosts: only the configured hosts (and "*." subdomains) pass, on both transports', async () => {
    const { ws, longpoll } = await start({ publicHosts: ['app.example.com', '*.cdn.example'] });
    const status = async (origin: string) =>
      (await RawClient.handshake(ws(), { headers: { origin } })).status;
    expect(await status('https://app.example.com')).toBe(101);
    expect(await status('https://eu.cdn.example')).toBe(101);
    expect(await status('http://localhost:4000')).toBe(403);
    expect(await status('https://app.example.com.evil.example')).toBe(403);
    const refused = await lp(longpoll(), { headers: { origin: 'http://localhost' } });
    expect(refused.body).toEqual({ status: 403 });
    const allowed = await lp(longpoll(), { headers: { origin: 'https://app.example.com' } });
    expect(allowed.body).toMatchObject({ status: 410 });
  });

  it('"conn" and lists keep their meaning; a bad public host fails at mount time', async () => {
    const { ws, port } = await start({ checkOrigin: 'conn' });
    expect(
      (await RawClient.handshake(ws(), { headers: { origin: `http://127.0.0.1:${port}` } })).status,
    ).toBe(101);
    expect(
      (await RawClient.handshake(ws(), { headers: { origin: 'http://127.0.0.1:1' } })).status,
    ).toBe(403);
    const listed = await start({ checkOrigin: ['//other.example'] });
    expect(
      (await RawClient.handshake(listed.ws(), { headers: { origin: 'http://other.example' } }))
        .status,
    ).toBe(101);
    expect(() =>
      createGateway({ logger: false }).socket('/x', { publicHosts: ['https://a.example'] }),
    ).toThrow('publicHosts: "https://a.example" is not a host name');
  });
});

describe('connection caps', () => {
  it('maxConnections: the next upgrade is 503 "too many connections"; a freed slot is reusable', async () => {
    const { ws, mount } = await start({ maxConnections: 2 });
    const first = await hold(ws());
    await hold(ws());
    const refused = await RawClient.handshake(ws());
    expect(refused.status).toBe(503);
    first.close();
    await eventually(() => expect(mount.caps.count).toBe(1), 'the closed socket released');
    await hold(ws());
    expect(mount.caps.count).toBe(2);
  });

  it('maxConnectionsPerIp: 429 for the same client IP, other IPs unaffected (via trustedProxies)', async () => {
    const { ws, seen } = await start({ maxConnectionsPerIp: 1, trustedProxies: ['127.0.0.1'] });
    const a = { 'x-forwarded-for': '203.0.113.1' };
    await hold(ws(), a);
    const again = await RawClient.handshake(ws(), { headers: a });
    expect(again.status).toBe(429);
    expect(again.body).toBe('');
    await hold(ws(), { 'x-forwarded-for': '203.0.113.2' });
    // The connect hook saw the forwarded client addresses.
    expect(seen).toEqual(['203.0.113.1', '203.0.113.2']);
  });

  it('maxConnectionsPerUser: 429 for a third socket of the same assigns user_id; off by default', async () => {
    const { ws } = await start({ maxConnectionsPerUser: 2 });
    await hold(ws('&user_id=u1'));
    await hold(ws('&user_id=u1'));
    expect((await RawClient.handshake(ws('&user_id=u1'))).status).toBe(429);
    await hold(ws('&user_id=u2'));
    const open = await start();
    for (let i = 0; i < 5; i++) await hold(open.ws('&user_id=same'));
  });

  it('concurrent handshakes behind a slow connect hook cannot overshoot the cap', async () => {
    const gateway = createGateway({ logger: false });
    gateways.push(gateway);
    const mount = gateway.socket('/socket', {
      maxConnections: 3,
      connect: async () => {
        await new Promise((resolve) => setTimeout(resolve, 50)); // all 10 are inside the hook
        return { assigns: {} };
      },
    });
    const { port } = await gateway.listen(0, '127.0.0.1');
    const url = `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`;
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => hold(url)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    expect(
      outcomes
        .filter((o): o is PromiseRejectedResult => o.status === 'rejected')
        .map((o) => String(o.reason)),
    ).toEqual(Array(7).fill('Error: unexpected HTTP 503'));
    expect(mount.caps.count).toBe(3);
  });

  it('LongPoll sessions count too: 503 with an empty body, 429 with body {"status":403}', async () => {
    const { longpoll, mount } = await start({ maxConnections: 2, maxConnectionsPerUser: 1 });
    expect((await lp(longpoll('&user_id=u1'))).body).toMatchObject({ status: 410 });
    const perUser = await lp(longpoll('&user_id=u1'));
    expect([perUser.http, perUser.body]).toEqual([429, { status: 403 }]);
    expect((await lp(longpoll('&user_id=u2'))).body).toMatchObject({ status: 410 });
    const full = await lp(longpoll('&user_id=u3'));
    expect([full.http, full.text]).toEqual([503, '']);
    expect(mount.caps.count).toBe(2);
  });

  it('options are validated by name; null turns a cap off', () => {
    const gateway = createGateway({ logger: false });
    expect(() => gateway.socket('/a', { maxConnections: 0 })).toThrow(
      'maxConnections must be a positive integer, got 0',
    );
    expect(() => gateway.socket('/b', { maxConnectionsPerIp: 1.5 })).toThrow(
      'maxConnectionsPerIp must be a positive integer, got 1.5',
    );
    expect(() => gateway.socket('/c', { trustedProxies: ['nope'] })).toThrow(
      'trustedProxies: "nope" is not an IP address or CIDR range',
    );
    const open = gateway.socket('/d', { maxConnections: null, maxConnectionsPerIp: null });
    expect([open.options.maxConnections, open.options.maxConnectionsPerIp]).toEqual([null, null]);
    const defaults = gateway.socket('/e');
    expect([
      defaults.options.maxConnections,
      defaults.options.maxConnectionsPerIp,
      defaults.options.maxConnectionsPerUser,
      defaults.options.maxTopicBytes,
      defaults.options.trustedProxies,
    ]).toEqual([100_000, 10_000, null, 255, []]);
  });
});

describe('maxTopicBytes', () => {
  it('a join of a longer topic is refused with a clear reason; the limit itself joins', async () => {
    const { ws } = await start({ maxTopicBytes: 20 });
    const client = await hold(ws());
    const longest = 'room:' + 'x'.repeat(15);
    expect(await client.request(['1', '1', longest, 'phx_join', {}])).toEqual([
      '1',
      '1',
      longest,
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    // 'é' is two bytes in UTF-8: 14 + 2 > 15 left.
    const tooLong = 'room:' + 'x'.repeat(14) + 'é';
    expect(await client.request(['2', '2', tooLong, 'phx_join', {}])).toEqual([
      '2',
      '2',
      tooLong,
      'phx_reply',
      { status: 'error', response: { reason: 'topic too long (max 20 bytes)' } },
    ]);
  });

  it('default 255 bytes', async () => {
    const { ws } = await start();
    const client = await hold(ws());
    const topic = 'room:' + 'y'.repeat(251);
    expect(((await client.request(['1', '1', topic, 'phx_join', {}])) as unknown[])[4]).toEqual({
      status: 'error',
      response: { reason: 'topic too long (max 255 bytes)' },
    });
  });
});

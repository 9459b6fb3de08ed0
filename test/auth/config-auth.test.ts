/**
 * The config file's `auth` section wired into a gateway (src/auth/config.ts through
 * startGateway): identity from the token only (params never set it, in the demo too), a bare
 * 403 on both transports for every refusal (logged and counted by reason), the socket closed
 * with 4001 when its token expires and the real `phoenix` client reconnecting with a fresh one
 * from its params function, `access_token` refreshes, and join rules without code. Tokens are
 * real Phoenix tokens, minted by the test's own signer (test/auth/etf-encode.ts).
 */
import { Writable } from 'node:stream';
import { LongPoll, Socket, type Channel } from 'phoenix';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startGateway, type RunningGateway } from '../../src/server.js';
import type { GatewayConfig } from '../../src/config/file.js';
import { RawClient } from '../support/ws-client.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { resp } from '../support/genapi-exec.js';
import { signToken, t, testKey } from './etf-encode.js';
import { whoami } from './whoami.js';

const SECRET = 'a-secret-key-base-of-at-least-64-bytes-for-the-gateway-tests-0123456789';
const SALT = 'user socket';
const KEY = testKey(SECRET, SALT);

/** A Phoenix token for `data`, signed `agoMs` ago with `maxAge` seconds. */
const token = (data: ReturnType<typeof t.bin>, agoMs = 0, maxAge = 86_400) =>
  signToken(KEY, data, Date.now() - agoMs, maxAge);
const userToken = (id: string, agoMs = 0, maxAge = 86_400) => token(t.bin(id), agoMs, maxAge);

let running: RunningGateway | null = null;
let lines: Record<string, unknown>[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  await running?.gateway.close();
  running = null;
  lines = [];
});

async function start(config: GatewayConfig): Promise<number> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  running = await startGateway({
    config,
    fromFile: true,
    port: 0,
    logger: pino({ level: 'info' }, sink),
  });
  return running.address.port;
}

const phoenixAuth = (extra: Record<string, unknown> = {}): GatewayConfig => ({
  demo: true,
  auth: { phoenixToken: { secretKeyBase: SECRET, salt: SALT, maxAge: null }, ...extra },
});

const wsUrl = (port: number, query: string) =>
  `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&${query}`;

describe('auth.phoenixToken in the gateway', () => {
  it('identity comes from the token only: params cannot set it, in the demo too', async () => {
    const port = await start(phoenixAuth());
    const map = token(
      t.map(
        [t.atom('user_id'), t.int(42)],
        [t.atom('device_id'), t.bin('phone')],
        [t.atom('roles'), t.list(t.bin('admin'))],
      ),
    );
    expect(await whoami(port, `token=${map}&user_id=evil&device_id=x`)).toEqual([
      resp('who', { result: { user_id: '42', device_id: 'phone', roles: ['admin'] } }),
    ]);
  });

  it('the authToken (subprotocol) works as the token; the param wins when both are given', async () => {
    const port = await start(phoenixAuth());
    const bearer = (tok: string) =>
      `base64url.bearer.phx.${Buffer.from(tok).toString('base64url')}`;
    const viaBearer = await RawClient.handshake(wsUrl(port, ''), {
      protocols: ['phoenix', bearer(userToken('7'))],
    });
    expect(viaBearer.status).toBe(101);
    const badBearer = await RawClient.handshake(wsUrl(port, ''), {
      protocols: ['phoenix', bearer('not-a-token')],
    });
    expect(badBearer.status).toBe(403);
    const paramWins = await RawClient.handshake(wsUrl(port, `token=${userToken('8')}`), {
      protocols: ['phoenix', bearer('not-a-token')],
    });
    expect(paramWins.status).toBe(101);
  });

  it('a refused connect is a bare 403 on both transports (LongPoll: in the body, as Phoenix), logged and counted by reason', async () => {
    const admin = 'an-admin-token-0123456789';
    const port = await start({ ...phoenixAuth(), admin: { token: admin } });
    const cases = {
      missing: '',
      // Not a Phoenix token at all: Phoenix says :invalid too (malformed is for a signed payload
      // that does not decode).
      garbage: 'token=not-a-token',
      invalid: `token=${signToken(testKey('another-secret-key-base-0123456789-0123456789-0123456789', SALT), t.bin('1'), Date.now())}`,
      expired: `token=${userToken('1', 120_000, 60)}`,
    };
    for (const [reason, query] of Object.entries(cases)) {
      const ws = await RawClient.handshake(wsUrl(port, query));
      expect(ws.status, `${reason} (websocket)`).toBe(403);
      // LongPoll says 403 in the body, as Phoenix does (the only status its clients read there).
      const lp = await fetch(`http://127.0.0.1:${port}/socket/longpoll?vsn=2.0.0&${query}`);
      expect(await lp.json(), `${reason} (longpoll)`).toEqual({ status: 403 });
    }
    const health = await fetch(`http://127.0.0.1:${port}/admin/health`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(((await health.json()) as { auth: unknown }).auth).toEqual({
      strategy: 'phoenixToken',
      accepted: 0,
      refused: { missing: 2, malformed: 0, invalid: 4, expired: 2, unavailable: 0 },
    });
    const refusals = lines.filter((line) => String(line.msg).startsWith('connect refused'));
    expect(refusals.map((line) => line.reason)).toEqual(
      expect.arrayContaining(['missing', 'invalid', 'expired']),
    );
    expect(refusals).toHaveLength(8);
  });

  it.each([
    ['websocket', WebSocket],
    ['longpoll', LongPoll],
  ] as const)(
    '%s: an expiring token closes the socket within 1 s of its expiry; the phoenix client reconnects with a fresh token from its params function and rejoins',
    async (name, transport) => {
      const port = await start(phoenixAuth());
      const signedAt = Date.now();
      let current = signToken(KEY, t.bin('9'), signedAt, 2); // expires 2 s after signedAt
      const expiresAt = signedAt + 2_000;
      const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
        transport,
        params: () => ({ token: current }),
        reconnectAfterMs: () => 50,
        rejoinAfterMs: () => 50,
      });
      sockets.push(socket);
      const closes: { code: number; at: number }[] = [];
      socket.onClose((event) => closes.push({ code: event.code, at: Date.now() }));
      socket.connect();
      const channel: Channel = socket.channel('room:lobby', { name: 'nine' });
      await replyOf(channel.join());
      current = userToken('9'); // what the client's params function gives from now on
      await waitFor(() => running!.gateway.stats.tokenExpired === 1, `${name}: token expired`);
      const closedAt = Date.now();
      expect(closedAt).toBeGreaterThanOrEqual(expiresAt - 50);
      expect(closedAt - expiresAt).toBeLessThan(1_000);
      if (name === 'websocket') {
        await waitFor(() => closes.length > 0, 'the client saw the close');
        expect(closes[0]!.code).toBe(4001);
      }
      // Back with the fresh token, joined again.
      await waitFor(
        () => socket.isConnected() && channel.state === 'joined' && closes.length <= 3,
        `${name}: reconnected and rejoined`,
      );
      await waitFor(
        () => running!.gateway.stats.sockets === 1 && running!.gateway.stats.channels === 1,
        `${name}: one socket, one channel on the gateway`,
      );
      expect(running!.gateway.stats.tokenExpired).toBe(1);
    },
  );

  it('access_token on the phoenix topic extends the socket; a token for another user or a bad one is refused and changes nothing', async () => {
    const port = await start(phoenixAuth());
    const client = await RawClient.connect(
      wsUrl(port, `token=${signToken(KEY, t.bin('5'), Date.now(), 2)}`),
    );
    const refresh = (ref: string, accessToken: unknown) =>
      client.request([null, ref, 'phoenix', 'access_token', { access_token: accessToken }]);
    expect(await refresh('r1', userToken('6'))).toEqual([
      null,
      'r1',
      'phoenix',
      'phx_reply',
      { status: 'error', response: { reason: 'token is for another user' } },
    ]);
    expect(await refresh('r2', 'garbage')).toEqual([
      null,
      'r2',
      'phoenix',
      'phx_reply',
      { status: 'error', response: { reason: 'invalid token' } },
    ]);
    expect(await refresh('r3', userToken('5'))).toEqual([
      null,
      'r3',
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    // Past the first token's expiry the socket still answers.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await client.request([null, 'hb', 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      'hb',
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    expect(running!.gateway.stats.tokenExpired).toBe(0);
    client.close();
  });

  it('join rules: room:staff* needs a role, room:{user_id} only that user, the rest as the channel decides', async () => {
    const port = await start(
      phoenixAuth({
        join: {
          rules: [
            { topic: 'room:staff*', roles: ['staff'] },
            { topic: 'room:{user_id}' },
            { topic: 'room:lobby' },
          ],
          otherwise: 'deny',
        },
      }),
    );
    const staff = token(
      t.map([t.atom('user_id'), t.bin('s1')], [t.atom('roles'), t.list(t.bin('staff'))]),
    );
    const join = async (tok: string, topic: string) => {
      const client = await RawClient.connect(wsUrl(port, `token=${tok}`));
      const reply = await client.join(topic, '1', { name: 'x' });
      client.close();
      return (
        reply as [unknown, unknown, unknown, unknown, { status: string; response: unknown }]
      )[4];
    };
    const unauthorized = { status: 'error', response: { reason: 'unauthorized' } };
    expect(await join(userToken('42'), 'room:42')).toMatchObject({ status: 'ok' });
    expect(await join(userToken('42'), 'room:43')).toEqual(unauthorized);
    expect((await join(userToken('42'), 'room:lobby')).status).toBe('ok');
    expect(await join(userToken('42'), 'room:staff-room')).toEqual(unauthorized);
    expect((await join(staff, 'room:staff-room')).status).toBe('ok');
    expect(await join(userToken('42'), 'room:elsewhere:42')).toEqual(unauthorized);
  });

  it('a bad auth section stops the gateway with a clear error', async () => {
    await expect(start({ auth: {} })).rejects.toThrow(
      '"auth" needs exactly one of phoenixToken, jwt or worker (got none)',
    );
    await expect(
      start({
        auth: { phoenixToken: { secretKeyBase: SECRET, salt: SALT }, jwt: { secret: 'x' } },
      }),
    ).rejects.toThrow('got phoenixToken, jwt');
    await expect(
      start({
        auth: { phoenixToken: { secretKeyBase: SECRET, salt: SALT }, oops: 1 },
      } as GatewayConfig),
    ).rejects.toThrow('unknown setting "auth.oops"');
    await expect(
      start({
        auth: { phoenixToken: { secretKeyBase: SECRET, salt: SALT } },
        socket: { connect: () => ({ assigns: {} }) },
      }),
    ).rejects.toThrow('"auth" and "socket.connect" both decide identity');
    await expect(
      start({
        auth: {
          phoenixToken: { secretKeyBase: SECRET, salt: SALT },
          join: { rules: [{ topic: 'a:*:b' }] },
        },
      }),
    ).rejects.toThrow('"*" is only allowed at the end');
  });
});

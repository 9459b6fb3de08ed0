/**
 * The connect hook (Phoenix's connect/3 with connect_info, protocol/phoenix.md §1.1 step 7): what
 * it receives over both transports — params, auth token, headers, peer address and port,
 * transport and path — and `connectTimeoutMs`: a hook that does not settle in time answers 503.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  createGateway,
  defineChannel,
  ok,
  type ConnectInfo,
  type Gateway,
} from '../../src/index.js';
import { collect, lp, post } from '../support/longpoll-client.js';
import { waitFor } from '../support/phoenix-client.js';
import { deferred, within } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

interface InfoAssigns {
  hookPeer: { address: string; port: number };
}

/** Replies with what the session knows about its connection, to compare with the hook's view. */
const infoChannel = defineChannel<InfoAssigns>({
  join: () => undefined,
  handleIn(_event, _payload, channel) {
    const { peer, transport, params } = channel.socket;
    return ok({ peer, transport, params, hookPeer: channel.socket.assigns.hookPeer });
  },
});

const seen: ConnectInfo[] = [];
let gateway: Gateway;
let port: number;
/** Hooks of /slow that have been called (they never settle, or settle late). */
let slowCalls = 0;
/** Settled by the /slow hook when a hook with settle_ms resolves (its late accept). */
let lateAccept = deferred();
const CONNECT_TIMEOUT_MS = 200;

beforeAll(async () => {
  gateway = createGateway({ logger: false });
  for (const path of ['/socket', '/rt']) {
    gateway
      .socket<InfoAssigns>(path, {
        connect: (info) => {
          seen.push(info);
          return { assigns: { hookPeer: info.peer } };
        },
        longpoll: { windowMs: 1_000 },
      })
      .channel('info', infoChannel);
  }
  gateway
    .socket<InfoAssigns>('/slow', {
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      connect: ({ params }) => {
        slowCalls++;
        const ms = Number(params.settle_ms ?? -1);
        // settle_ms < 0: never settles (a hung auth backend).
        return new Promise((resolve) => {
          if (ms >= 0)
            setTimeout(() => {
              resolve({ assigns: { hookPeer: { address: '', port: 0 } } });
              lateAccept.resolve();
            }, ms);
        });
      },
      longpoll: { windowMs: 1_000 },
    })
    .channel('info', infoChannel);
  ({ port } = await gateway.listen(0, '127.0.0.1'));
});
afterAll(() => gateway.close());

const wsUrl = (path: string, query = 'vsn=2.0.0') => `ws://127.0.0.1:${port}${path}?${query}`;
const httpUrl = (path: string) => `http://127.0.0.1:${port}${path}`;

/** Opens a WebSocket with extra headers and subprotocols; resolves with the client and its local port. */
async function openWs(
  url: string,
  protocols: string[],
  headers: Record<string, string>,
): Promise<{ ws: WebSocket; localPort: number }> {
  const ws = new WebSocket(url, protocols, { headers });
  let localPort = 0;
  ws.once('upgrade', (res) => (localPort = res.socket.localPort ?? 0));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, localPort };
}

/** Sends a frame on a raw ws and resolves with the next parsed frame. */
function request(ws: WebSocket, frame: unknown[]): Promise<unknown> {
  return new Promise((resolve) => {
    ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString('utf8'))));
    ws.send(JSON.stringify(frame));
  });
}

/**
 * The session-creating LongPoll GET over node:http (fetch hides the local port), with extra
 * headers. Resolves with the HTTP status, parsed body (or null) and the local port used.
 */
function longpollOpen(
  path: string,
  query: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: { status: number; token?: string } | null; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: `${path}?${query}`,
      headers,
      agent: false,
    });
    let localPort = 0;
    req.once('socket', (socket) =>
      socket.once('connect', () => (localPort = socket.localPort ?? 0)),
    );
    req.once('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: text === '' ? null : (JSON.parse(text) as { status: number }),
          localPort,
        }),
      );
    });
    req.once('error', reject);
    req.end();
  });
}

describe('connect hook: what it receives', () => {
  it('WebSocket: params, authToken, headers, peer (address and port), transport and path', async () => {
    seen.length = 0;
    const token = Buffer.from('s3cr3t').toString('base64').replace(/=/g, '');
    const { ws, localPort } = await openWs(
      wsUrl('/socket/websocket', 'user%5Bid%5D=7&tags%5B%5D=a&vsn=2.0.0'),
      ['phoenix', `base64url.bearer.phx.${token}`],
      {
        'x-request-id': 'req-ws-1',
        'user-agent': 'connect-hook-test',
        cookie: 'session=abc',
      },
    );
    try {
      expect(seen).toHaveLength(1);
      const info = seen[0]!;
      expect(info.params).toEqual({ user: { id: '7' }, tags: ['a'], vsn: '2.0.0' });
      expect(info.authToken).toBe('s3cr3t');
      expect(info.headers['x-request-id']).toBe('req-ws-1');
      expect(info.headers['user-agent']).toBe('connect-hook-test');
      expect(info.headers.cookie).toBe('session=abc');
      expect(info.headers.host).toBe(`127.0.0.1:${port}`);
      expect(info.headers.upgrade?.toLowerCase()).toBe('websocket');
      expect(info.peer).toEqual({ address: '127.0.0.1', port: localPort });
      expect(localPort).toBeGreaterThan(0);
      expect(info.transport).toBe('websocket');
      expect(info.path).toBe('/socket/websocket');
      // The session sees the same connection.
      await request(ws, ['1', '1', 'info', 'phx_join', {}]);
      const reply = (await request(ws, ['1', '2', 'info', 'x', {}])) as unknown[];
      expect(reply[4]).toEqual({
        status: 'ok',
        response: {
          peer: info.peer,
          transport: 'websocket',
          params: info.params,
          hookPeer: info.peer,
        },
      });
    } finally {
      ws.close();
      await new Promise((resolve) => ws.once('close', resolve));
    }
  });

  it('LongPoll: the session-creating GET gives params, X-Phoenix-AuthToken, headers, peer, transport and path', async () => {
    seen.length = 0;
    const opened = await longpollOpen('/socket/longpoll', 'user_id=9&vsn=2.0.0', {
      'x-phoenix-authtoken': 'raw-token',
      'x-request-id': 'req-lp-1',
      accept: 'application/json',
    });
    expect(opened.body).toEqual({
      status: 410,
      token: expect.any(String) as unknown,
      messages: [],
    });
    expect(seen).toHaveLength(1);
    const info = seen[0]!;
    expect(info.params).toEqual({ user_id: '9', vsn: '2.0.0' });
    expect(info.authToken).toBe('raw-token');
    expect(info.headers['x-request-id']).toBe('req-lp-1');
    expect(info.headers['x-phoenix-authtoken']).toBe('raw-token');
    expect(info.headers.host).toBe(`127.0.0.1:${port}`);
    expect(info.peer).toEqual({ address: '127.0.0.1', port: opened.localPort });
    expect(opened.localPort).toBeGreaterThan(0);
    expect(info.transport).toBe('longpoll');
    expect(info.path).toBe('/socket/longpoll');

    // Later requests of the session do not run the hook again.
    const base = httpUrl('/socket/longpoll');
    const token = opened.body!.token!;
    expect(
      (await post(base, token, ['["1","1","info","phx_join",{}]', '["1","2","info","x",{}]'])).body,
    ).toEqual({ status: 200 });
    const [, reply] = await collect(base, token, 2);
    expect(reply).toEqual([
      '1',
      '2',
      'info',
      'phx_reply',
      {
        status: 'ok',
        response: {
          peer: info.peer,
          transport: 'longpoll',
          params: info.params,
          hookPeer: info.peer,
        },
      },
    ]);
    expect(seen).toHaveLength(1);
  });

  it('the path is the request path of the mount the client reached', async () => {
    seen.length = 0;
    const client = await RawClient.connect(wsUrl('/rt/websocket'));
    client.close();
    await client.closed;
    expect((await longpollOpen('/rt/longpoll', 'vsn=2.0.0', {})).body?.status).toBe(410);
    expect(seen.map((info) => [info.transport, info.path])).toEqual([
      ['websocket', '/rt/websocket'],
      ['longpoll', '/rt/longpoll'],
    ]);
  });
});

describe('connect hook: connectTimeoutMs', () => {
  it('WebSocket: a hook that never settles answers 503 after connectTimeoutMs; no session is left', async () => {
    // (WebSockets of earlier tests may still be closing on the server.)
    const sockets = await waitFor(
      () =>
        gateway.stats.sockets === gateway.stats.longpollSessions
          ? gateway.stats.sockets
          : undefined,
      'earlier sockets closed',
    );
    const started = performance.now();
    const res = await RawClient.handshake(wsUrl('/slow/websocket'));
    // 503 is the timeout's answer (the hook never settles); it came no earlier than the timeout.
    expect(res.status).toBe(503);
    expect(performance.now() - started).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 20);
    expect(gateway.stats.sockets).toBe(sockets);
  });

  it('LongPoll: a hook that never settles answers HTTP 503 with an empty body (the client retries)', async () => {
    const sessions = gateway.stats.longpollSessions;
    const started = performance.now();
    const res = await lp(`${httpUrl('/slow/longpoll')}?vsn=2.0.0`);
    expect(res.http).toBe(503);
    expect(res.text).toBe('');
    expect(performance.now() - started).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 20);
    expect(gateway.stats.longpollSessions).toBe(sessions);
  });

  it('a hook that settles after the timeout still gets 503, and its late accept opens nothing', async () => {
    const before = slowCalls;
    lateAccept = deferred();
    const sockets = gateway.stats.sockets;
    const res = await RawClient.handshake(
      wsUrl('/slow/websocket', `settle_ms=${CONNECT_TIMEOUT_MS + 150}&vsn=2.0.0`),
    );
    expect(res.status).toBe(503);
    expect(slowCalls - before).toBe(1);
    await within(lateAccept.promise, 'the late accept');
    // One macrotask turn: the gateway's reaction to the settled hook (promise callbacks) has run.
    await new Promise((resolve) => setImmediate(resolve));
    expect(gateway.stats.sockets).toBe(sockets);
  });

  it('a hook that settles within the timeout connects normally (both transports)', async () => {
    const client = await RawClient.connect(wsUrl('/slow/websocket', `settle_ms=20&vsn=2.0.0`));
    expect(await client.request([null, '1', 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      '1',
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    client.close();
    const res = await lp(`${httpUrl('/slow/longpoll')}?settle_ms=20&vsn=2.0.0`);
    expect(res.body).toEqual({ status: 410, token: expect.any(String) as unknown, messages: [] });
  });
});

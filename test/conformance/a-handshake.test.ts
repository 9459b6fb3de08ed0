/**
 * Protocol spec §8 A (cases 1–13): the WebSocket handshake, against raw `ws` upgrades.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/ws-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

/** Opens a socket and has `room:afterjoin` report the connect params and token back. */
async function welcome(client: RawClient): Promise<{ assigns_token: unknown; params: unknown }> {
  await client.join('room:afterjoin', '1');
  const frame = (await client.next()) as unknown[];
  expect(frame[3]).toBe('welcome');
  return frame[4] as { assigns_token: unknown; params: unknown };
}

describe('§A handshake', () => {
  it('1: vsn=2.0.0 upgrades with no subprotocol when none was offered', async () => {
    const res = await RawClient.handshake(app.wsUrl());
    expect(res.status).toBe(101);
    expect(res.protocol).toBeUndefined();
  });

  it('2: vsn=2.0.3 speaks V2, vsn=1.0.9 speaks V1', async () => {
    const v2 = await RawClient.connect(app.wsUrl('/socket/websocket', 'vsn=2.0.3'));
    expect(await v2.request([null, '1', 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      '1',
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    v2.close();
    const v1 = await RawClient.connect(app.wsUrl('/socket/websocket', 'vsn=1.0.9'));
    expect(
      await v1.request({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '1' }),
    ).toEqual({
      topic: 'phoenix',
      event: 'phx_reply',
      payload: { status: 'ok', response: {} },
      ref: '1',
    });
    v1.close();
  });

  it('3: no vsn speaks V1', async () => {
    const v1 = await RawClient.connect(app.wsUrl('/socket/websocket', ''));
    expect(
      await v1.request({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '2' }),
    ).toMatchObject({ ref: '2', event: 'phx_reply' });
    v1.close();
  });

  it.each(['2.1.0', '3.0.0', '2.0.0-rc.1', '2', 'abc', '123.1.1'])(
    '4: vsn=%s is refused with 403 and an empty body',
    async (vsn) => {
      const res = await RawClient.handshake(app.wsUrl('/socket/websocket', `vsn=${vsn}`));
      expect(res.status).toBe(403);
      expect(res.body).toBe('');
    },
  );

  it('5: a connect refusal is 403 with an empty body; a custom refusal keeps its status and headers', async () => {
    const refused = await RawClient.handshake(
      app.wsUrl('/socket/websocket', 'reject=true&vsn=2.0.0'),
    );
    expect(refused.status).toBe(403);
    expect(refused.body).toBe('');
    const limited = await RawClient.handshake(
      app.wsUrl('/socket/websocket', 'status=429&vsn=2.0.0'),
    );
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('3');
  });

  it('5b: a connect hook that throws is a 500', async () => {
    const res = await RawClient.handshake(app.wsUrl('/socket/websocket', 'crash=true&vsn=2.0.0'));
    expect(res.status).toBe(500);
  });

  it('6: a disallowed Origin is 403; an allowed one or none upgrades', async () => {
    expect(
      (await RawClient.handshake(app.wsUrl(), { headers: { origin: 'http://evil.example' } }))
        .status,
    ).toBe(403);
    expect(
      (await RawClient.handshake(app.wsUrl(), { headers: { origin: 'http://allowed.example' } }))
        .status,
    ).toBe(101);
    expect((await RawClient.handshake(app.wsUrl())).status).toBe(101);
  });

  it('7: the auth token subprotocol (browser style, with a space) reaches connect; phoenix is echoed', async () => {
    const res = await RawClient.handshake(app.wsUrl(), {
      headers: { 'sec-websocket-protocol': 'phoenix, base64url.bearer.phx.fn5+czNjcjN0' },
    });
    expect(res.status).toBe(101);
    expect(res.protocol).toBe('phoenix');
    const client = await RawClient.connect(app.wsUrl(), {
      protocols: ['phoenix', 'base64url.bearer.phx.fn5+czNjcjN0'],
    });
    expect((await welcome(client)).assigns_token).toBe('~~~s3cr3t');
    client.close();
  });

  it('8: the Node ws style (no space after the comma) works the same', async () => {
    const client = await RawClient.connect(app.wsUrl(), {
      protocols: ['phoenix', 'base64url.bearer.phx.MTIzNA'],
    });
    expect(client.ws.protocol).toBe('phoenix');
    expect((await welcome(client)).assigns_token).toBe('1234');
    client.close();
  });

  it('8b: a url-safe base64 token decodes too; an undecodable one is no token', async () => {
    // Padding ("=") is not a legal subprotocol character, so it never arrives over WebSocket;
    // the decoder still accepts it (test/unit/subprotocols.test.ts).
    const urlSafe = await RawClient.connect(app.wsUrl(), {
      protocols: ['phoenix', 'base64url.bearer.phx.fn5-czNjcjN0'],
    });
    expect((await welcome(urlSafe)).assigns_token).toBe('~~~s3cr3t');
    urlSafe.close();
    const bad = await RawClient.connect(app.wsUrl(), {
      protocols: ['phoenix', 'base64url.bearer.phx.M'],
    });
    expect((await welcome(bad)).assigns_token).toBeNull();
    bad.close();
  });

  it('9: offering only phoenix gives phoenix and a null token', async () => {
    const client = await RawClient.connect(app.wsUrl(), { protocols: ['phoenix'] });
    expect(client.ws.protocol).toBe('phoenix');
    expect((await welcome(client)).assigns_token).toBeNull();
    client.close();
  });

  it('10: offering only an unknown subprotocol is 403', async () => {
    expect((await RawClient.handshake(app.wsUrl(), { protocols: ['mqtt'] })).status).toBe(403);
  });

  it('11: auth disabled (authToken: false): phoenix is still echoed; an offered token is removed and ignored', async () => {
    const url = app.wsUrl('/noauth/websocket');
    const onlyPhoenix = await RawClient.handshake(url, { protocols: ['phoenix'] });
    expect(onlyPhoenix.status).toBe(101);
    expect(onlyPhoenix.protocol).toBe('phoenix');
    const withToken = await RawClient.handshake(url, {
      headers: { 'sec-websocket-protocol': 'phoenix, base64url.bearer.phx.fn5+czNjcjN0' },
    });
    expect(withToken.status).toBe(101);
    expect(withToken.protocol).toBe('phoenix');
    const client = await RawClient.connect(url, {
      protocols: ['phoenix', 'base64url.bearer.phx.fn5+czNjcjN0'],
    });
    expect(client.ws.protocol).toBe('phoenix');
    expect((await welcome(client)).assigns_token).toBeNull();
    client.close();
    // Without an offer there is still no header, and an unknown offer is still refused.
    expect((await RawClient.handshake(url)).protocol).toBeUndefined();
    expect((await RawClient.handshake(url, { protocols: ['mqtt'] })).status).toBe(403);
  });

  it('11b: phoenix is echoed on a mount with default options (auth token on)', async () => {
    const res = await RawClient.handshake(app.wsUrl('/defaults/websocket'), {
      protocols: ['phoenix'],
    });
    expect(res.status).toBe(101);
    expect(res.protocol).toBe('phoenix');
  });

  it("12: a plain GET is 400 with Phoenix's message; a POST is 400", async () => {
    const get = await fetch(app.httpUrl('/socket/websocket', 'vsn=2.0.0'));
    expect(get.status).toBe(400);
    expect(await get.text()).toBe(`'connection' header must contain 'upgrade', got ["keep-alive"]`);
    const post = await fetch(app.httpUrl('/socket/websocket'), { method: 'POST', body: 'x' });
    expect(post.status).toBe(400);
  });

  it('13: query params are decoded the way Plug decodes them', async () => {
    const client = await RawClient.connect(
      app.wsUrl(
        '/socket/websocket',
        'a%5Bb%5D=1&arr%5B%5D=p&arr%5B%5D=q&list%5B0%5D=x&plain=v%20w&vsn=2.0.0',
      ),
    );
    expect((await welcome(client)).params).toEqual({
      a: { b: '1' },
      arr: ['p', 'q'],
      list: { '0': 'x' },
      plain: 'v w',
      vsn: '2.0.0',
    });
    client.close();
  });
});

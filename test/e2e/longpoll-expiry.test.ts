/**
 * Protocol spec §8 case 100 with the real `phoenix` 1.8 client: a LongPoll session that was not
 * polled for more than 1.5 windows is gone; the client, still holding its token, gets 410 on its
 * next request, treats it as an error, reconnects (a new session) and rejoins its channels.
 *
 * An HTTP proxy holds the client's GETs back (a frozen tab, a sleeping laptop) so the gateway
 * sees no poll; the gateway and the client run unmodified. The test app's window is 1 s, on a
 * clock the test drives: windows and the expiry pass when the test says so, not in real time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LongPoll, Socket, type Channel, type CloseEventLike } from 'phoenix';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { manualClock, type ManualClock } from '../support/clock.js';
import { parkedPolls, startTestApp, type TestApp } from '../support/test-app.js';
import { HttpProxy } from './proxies.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const WINDOW_MS = 1_000;

interface Setup {
  app: TestApp;
  clock: ManualClock;
  proxy: HttpProxy;
  socket: Socket;
  channel: Channel;
  joinRefs: (string | null)[];
  closes: CloseEventLike[];
  errors: unknown[];
  /** The session token the client holds (from the proxy's view of the session-creating GET). */
  token: string;
}

async function setup(topic: string): Promise<Setup> {
  const clock = manualClock(1_000_000);
  const app = await startTestApp({ gateway: { clock: clock.now, timerTickMs: 1 } });
  cleanups.push(() => app.close());
  const proxy = await HttpProxy.start(app.port);
  cleanups.push(() => proxy.close());
  const socket = new Socket(`ws://127.0.0.1:${proxy.port}/socket`, {
    transport: LongPoll,
    rejoinAfterMs: () => 100,
  });
  cleanups.push(() => socket.disconnect());
  const closes: CloseEventLike[] = [];
  socket.onClose((event) => closes.push(event));
  socket.connect();
  await waitFor(() => socket.isConnected(), 'LongPoll open');
  const channel = socket.channel(topic);
  const joinRefs: (string | null)[] = [];
  channel.join().receive('ok', () => joinRefs.push(channel.joinRef()));
  await waitFor(() => joinRefs.length === 1, 'joined');
  const errors: unknown[] = [];
  channel.onError((reason) => errors.push(reason));
  const created = proxy.answered('GET', 410)[0]!;
  const token = (JSON.parse(created.response!.body) as { token: string }).token;
  return { app, clock, proxy, socket, channel, joinRefs, closes, errors, token };
}

/** Holds GETs until the gateway has expired the session (no poll for > 1.5 windows). */
async function expire({ app, clock, proxy }: Setup): Promise<void> {
  const advance = (ms: number) => {
    clock.advance(ms);
    app.gateway.wheel.advance();
  };
  // Once the client's GET is parked at the gateway, hold the next ones: the parked GET still
  // completes (204 after its window); the client's next GET is held.
  await waitFor(() => parkedPolls(app.gateway) === 1, 'the GET parked at the gateway');
  proxy.holdGets = true;
  advance(WINDOW_MS);
  await waitFor(() => proxy.heldCount === 1, 'a held GET');
  // No poll since that answer: alive at exactly 1.5 windows, expired 1 ms later.
  advance(1.5 * WINDOW_MS);
  expect(app.gateway.stats.longpollSessions).toBe(1);
  advance(1);
  expect(app.gateway.stats.longpollSessions).toBe(0);
  expect(app.gateway.stats.channels).toBe(0);
}

const echo = async (channel: Channel, payload: object) =>
  expect(await replyOf(channel.push('echo', payload))).toEqual({ status: 'ok', response: payload });

describe('100: the phoenix client after its LongPoll session expired', () => {
  it('its next GET gets {"status":410} and a new token; the client closes 3410 "session_gone", reconnects and rejoins with a new join ref', async () => {
    const s = await setup('room:lp-expired-get');
    await echo(s.channel, { before: 'expiry' });
    await expire(s);

    const requestsBefore = s.proxy.requests.length;
    s.proxy.release();
    await waitFor(() => s.closes.length > 0, 'the client noticing');
    expect(s.closes[0]).toMatchObject({ code: 3410, reason: 'session_gone' });
    // The released GET carried the dead session's token and was answered 410 with a new one.
    const stale = s.proxy.requests.find(
      (r) =>
        r.method === 'GET' &&
        r.url.includes(`token=${encodeURIComponent(s.token)}`) &&
        r.response?.body.includes('"status":410'),
    );
    expect(stale).toBeDefined();
    expect(JSON.parse(stale!.response!.body)).toEqual({
      status: 410,
      token: expect.any(String) as unknown,
      messages: [],
    });
    expect((JSON.parse(stale!.response!.body) as { token: string }).token).not.toBe(s.token);
    expect(s.errors[0]).toMatchObject({ source: 'transport' });

    await waitFor(
      () => s.joinRefs.length >= 2 && s.channel.state === 'joined',
      'rejoined on a new session',
    );
    expect(s.joinRefs[1]).not.toBe(s.joinRefs[0]);
    // The reconnect opened a fresh session: a GET without a token (the 1.8 client's "token=" is empty).
    const reopened = s.proxy.requests
      .slice(requestsBefore)
      .filter((r) => r.method === 'GET' && !/token=[^&]/.test(r.url));
    expect(reopened.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(reopened[0]!.response!.body)).toEqual({
      status: 410,
      token: expect.any(String) as unknown,
      messages: [],
    });
    await echo(s.channel, { after: 'expiry' });
  });

  it('a POST on the dead session gets {"status":410}; the client closes (1011), reconnects and rejoins', async () => {
    const s = await setup('room:lp-expired-post');
    await expire(s);

    // The client still believes it is connected: its push goes out as a POST with the old token.
    expect(s.socket.isConnected()).toBe(true);
    s.channel.push('echo', { lost: true });
    await waitFor(() => s.closes.length > 0, 'the client noticing');
    expect(s.closes[0]).toMatchObject({ code: 1011 });
    const post = s.proxy.requests.find((r) => r.method === 'POST' && r.body.includes('"lost"'));
    expect(post?.response?.body).toBe('{"status":410}');
    // Polling works again (the GET the client abandoned when it closed is dropped, not sent).
    s.proxy.release();

    await waitFor(
      () => s.joinRefs.length >= 2 && s.channel.state === 'joined',
      'rejoined on a new session',
    );
    expect(s.joinRefs[1]).not.toBe(s.joinRefs[0]);
    await echo(s.channel, { after: 'expiry' });
  });
});

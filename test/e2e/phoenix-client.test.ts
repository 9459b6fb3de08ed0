/**
 * Protocol spec §8 K (cases 103–105) and the channel/presence semantics of §3–§5, with the REAL
 * `phoenix` npm client (1.8.x) in Node, over both transports: `ws` WebSocket and the client's
 * own LongPoll (fetch).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  LongPoll,
  Presence,
  Socket,
  type Channel,
  type SocketOptions,
  type TransportConstructor,
} from 'phoenix';
import { nextEvent, Recorder, replyOf, waitFor } from '../support/phoenix-client.js';
import { WAIT_MS } from '../support/wait.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});

const OK_EMPTY = { status: 'ok', response: {} };

const TRANSPORTS: { name: string; transport: TransportConstructor }[] = [
  { name: 'websocket', transport: WebSocket },
  { name: 'longpoll', transport: LongPoll },
];

describe.each(TRANSPORTS)('phoenix 1.8 client over $name', ({ name, transport }) => {
  /** A connected socket on /socket (closed after the test). */
  async function connected(opts: SocketOptions = {}): Promise<Socket> {
    const socket = new Socket(`ws://127.0.0.1:${app.port}/socket`, { transport, ...opts });
    sockets.push(socket);
    socket.connect();
    await waitFor(() => socket.isConnected(), `${name} socket open`);
    return socket;
  }

  async function joined(socket: Socket, topic: string, params: object = {}): Promise<Channel> {
    const channel = socket.channel(topic, params);
    expect(await replyOf(channel.join())).toMatchObject({ status: 'ok' });
    return channel;
  }

  const topic = (base: string) => `room:${base}-${name}`;

  it('103: params and authToken reach connect; the welcome push after the join reply carries them', async () => {
    const socket = await connected({ authToken: 'tok', params: { user_id: '7' } });
    const channel = socket.channel('room:afterjoin');
    const order: string[] = [];
    const welcome = new Promise<unknown>((resolve) => {
      channel.on('welcome', (payload) => {
        order.push('welcome');
        resolve(payload);
      });
    });
    const join = channel.join().receive('ok', () => order.push('join ok'));
    expect(await replyOf(join)).toEqual(OK_EMPTY);
    expect(await welcome).toEqual({ assigns_token: 'tok', params: { user_id: '7', vsn: '2.0.0' } });
    expect(order).toEqual(['join ok', 'welcome']);
  });

  it('socket.ping(): the heartbeat is answered (LongPoll servers answer heartbeats too)', async () => {
    const socket = await connected();
    const rtt = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ping reply')), WAIT_MS);
      expect(
        socket.ping((ms) => {
          clearTimeout(timer);
          resolve(ms);
        }),
      ).toBe(true);
    });
    expect(rtt).toBeGreaterThanOrEqual(0);
  });

  it('105: join ok, join error (room:deny) and an unmatched topic (retried about 1 s later)', async () => {
    const socket = await connected();
    const recorder = new Recorder(socket);
    const ok = socket.channel(topic('joinok'));
    expect(await replyOf(ok.join())).toEqual(OK_EMPTY);
    expect(ok.state).toBe('joined');

    const deny = socket.channel('room:deny');
    expect(await replyOf(deny.join())).toEqual({
      status: 'error',
      response: { reason: 'unauthorized' },
    });
    deny.leave();

    const nomatch = socket.channel('nomatch:1');
    expect(await replyOf(nomatch.join())).toEqual({
      status: 'error',
      response: { reason: 'unmatched topic' },
    });
    // 105: the client keeps retrying on its rejoin schedule (1 s first).
    const replies = await waitFor(() => {
      const found = recorder.of('nomatch:1', 'phx_reply');
      return found.length >= 2 ? found : undefined;
    }, 'a retried nomatch join');
    const [first, second] = replies;
    // A lower bound only: the client's timer may fire late on a loaded machine, never early.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(800);
    expect(second!.payload).toEqual({ status: 'error', response: { reason: 'unmatched topic' } });
    // The unmatched-topic reply carries join_ref null; the retry used a new join ref.
    expect(first!.join_ref).toBeNull();
    expect(second!.ref).not.toBe(first!.ref);
    nomatch.leave();
  });

  it('pushes get their replies: echo, error reply, custom status, push_then_reply ordering, async', async () => {
    const socket = await connected();
    const channel = await joined(socket, topic('replies'));
    expect(await replyOf(channel.push('echo', { x: 1 }))).toEqual({
      status: 'ok',
      response: { x: 1 },
    });
    expect(await replyOf(channel.push('error_reply', {}))).toEqual({
      status: 'error',
      response: { reason: 'bad' },
    });
    expect(
      await replyOf(channel.push('custom_status', {}), WAIT_MS, ['weird', 'ok', 'error']),
    ).toEqual({ status: 'weird', response: {} });

    const order: string[] = [];
    channel.on('pushed', (payload) => order.push(`pushed ${JSON.stringify(payload)}`));
    const push = channel
      .push('push_then_reply', { p: 2 })
      .receive('ok', (response) => order.push(`reply ${JSON.stringify(response)}`));
    await replyOf(push);
    expect(order).toEqual(['pushed {"p":2}', 'reply {"after":"push"}']);

    const started = Date.now();
    expect(await replyOf(channel.push('async', { z: 1 }))).toEqual({
      status: 'ok',
      response: { z: 1 },
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
  });

  it('104: a push made right after join() is sent after join ok and its reply resolves', async () => {
    const socket = await connected();
    const recorder = new Recorder(socket);
    const channel = socket.channel(topic('early'));
    const events: string[] = [];
    channel.join().receive('ok', () => events.push('join ok'));
    const early = channel.push('echo', { early: true }).receive('ok', () => events.push('push ok'));
    expect(await replyOf(early)).toEqual({ status: 'ok', response: { early: true } });
    expect(events).toEqual(['join ok', 'push ok']);
    const replies = recorder.of(topic('early'), 'phx_reply');
    expect(replies.map((m) => m.join_ref)).toEqual([channel.joinRef(), channel.joinRef()]);
  });

  it('broadcast reaches a second socket (and the sender); broadcast_from skips the sender', async () => {
    const t = topic('bcast');
    const a = await connected();
    const b = await connected();
    const chA = await joined(a, t);
    const chB = await joined(b, t);
    const toB = nextEvent(chB, 'bcast');
    const toA = nextEvent(chA, 'bcast');
    expect(await replyOf(chA.push('broadcast', { b: 1 }))).toEqual(OK_EMPTY);
    expect(await toB).toEqual({ b: 1 });
    expect(await toA).toEqual({ b: 1 });

    let senderGotIt = false;
    chA.on('bcast_from', () => (senderGotIt = true));
    const fromA = nextEvent(chB, 'bcast_from');
    expect(await replyOf(chA.push('broadcast_from', { from: 'a' }))).toEqual(OK_EMPTY);
    expect(await fromA).toEqual({ from: 'a' });
    // Anything for A would have been written before A's reply.
    expect(senderGotIt).toBe(false);
  });

  it('intercept/handleOut: each subscriber gets the handled payload with its own join_ref', async () => {
    const t = topic('intercept');
    const a = await connected();
    const b = await connected();
    const recA = new Recorder(a);
    const recB = new Recorder(b);
    const chA = await joined(a, t);
    const chB = await joined(b, t);
    const gotA = nextEvent(chA, 'intercepted');
    const gotB = nextEvent(chB, 'intercepted');
    chA.push('intercepted', { from: 'a' });
    expect(await gotA).toEqual({ from: 'a', handled_out: true });
    expect(await gotB).toEqual({ from: 'a', handled_out: true });
    expect(recA.of(t, 'intercepted').map((m) => [m.join_ref, m.ref])).toEqual([
      [chA.joinRef(), null],
    ]);
    expect(recB.of(t, 'intercepted').map((m) => [m.join_ref, m.ref])).toEqual([
      [chB.joinRef(), null],
    ]);
  });

  it('a channel crash: onError gets {"reason":"channel_crash"}, then the client rejoins with a NEW join ref', async () => {
    const t = topic('crash');
    // A short rejoin delay (default 1 s): the point is that it rejoins, not when.
    const socket = await connected({ rejoinAfterMs: () => 50 });
    const recorder = new Recorder(socket);
    const channel = socket.channel(t);
    const joinRefs: (string | null)[] = [];
    channel.join().receive('ok', () => joinRefs.push(channel.joinRef()));
    await waitFor(() => joinRefs.length === 1, 'first join');
    const errors: unknown[] = [];
    channel.onError((reason) => errors.push(reason));
    channel.push('boom', {});
    await waitFor(() => errors.length >= 1, 'onError');
    expect(errors[0]).toEqual({ reason: 'channel_crash' });
    const [phxError] = recorder.of(t, 'phx_error');
    expect(phxError).toMatchObject({
      join_ref: joinRefs[0],
      ref: joinRefs[0],
      payload: { reason: 'channel_crash' },
    });
    await waitFor(() => joinRefs.length === 2, 'automatic rejoin');
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    expect(channel.state).toBe('joined');
    expect(await replyOf(channel.push('echo', { after: 'crash' }))).toEqual({
      status: 'ok',
      response: { after: 'crash' },
    });
  });

  it('leave: resolves ok, the channel closes and the server drops it', async () => {
    const t = topic('leave');
    const socket = await connected();
    const channel = await joined(socket, t);
    await waitFor(() => app.gateway.pubsub.subscriberCount(t) === 1, 'server-side subscription');
    expect(await replyOf(channel.leave())).toEqual(OK_EMPTY);
    expect(channel.state).toBe('closed');
    expect(socket.channels).not.toContain(channel);
    await waitFor(() => app.gateway.pubsub.subscriberCount(t) === 0, 'server-side leave');
  });

  it('presence (81–85): list() through join, update and leave with the JS Presence helper', async () => {
    const t = `presence:lobby-${name}`;
    const a = await connected();
    const b = await connected();
    const keysOf = (presence: Presence) => presence.list((key) => key).sort();

    const chA = a.channel(t, { key: 'alice' });
    const presA = new Presence(chA);
    const leftA: string[] = [];
    presA.onLeave((key, current) => {
      if (!current || current.metas.length === 0) leftA.push(key);
    });
    expect(await replyOf(chA.join())).toEqual(OK_EMPTY);
    await waitFor(() => keysOf(presA).join() === 'alice', 'A sees alice');
    expect(presA.state.alice?.metas).toEqual([
      { online_at: 1, phx_ref: expect.any(String) as unknown },
    ]);

    const chB = b.channel(t, { key: 'bob' });
    const presB = new Presence(chB);
    expect(await replyOf(chB.join())).toEqual(OK_EMPTY);
    await waitFor(
      () => keysOf(presA).join() === 'alice,bob' && keysOf(presB).join() === 'alice,bob',
      'both see alice and bob',
    );
    const aliceRef = presA.state.alice!.metas[0]!.phx_ref;
    expect(presB.state.alice?.metas).toEqual([{ online_at: 1, phx_ref: aliceRef }]);
    const bobRef = presA.state.bob!.metas[0]!.phx_ref;
    expect(presB.state.bob?.metas).toEqual([{ online_at: 1, phx_ref: bobRef }]);

    expect(await replyOf(chB.push('update', { meta: { status: 'away' } }))).toEqual(OK_EMPTY);
    for (const presence of [presA, presB]) {
      await waitFor(() => presence.state.bob?.metas[0]?.status === 'away', 'bob away');
      expect(presence.state.bob?.metas).toEqual([
        { status: 'away', phx_ref: expect.any(String) as unknown, phx_ref_prev: bobRef },
      ]);
    }
    const awayRef = presA.state.bob!.metas[0]!.phx_ref;
    expect(awayRef).not.toBe(bobRef);
    expect(keysOf(presA)).toEqual(['alice', 'bob']);

    chB.leave();
    await waitFor(() => keysOf(presA).join() === 'alice', 'bob gone for A');
    expect(leftA).toEqual(['bob']);
    expect(presA.state.alice?.metas).toEqual([{ online_at: 1, phx_ref: aliceRef }]);
  });
});

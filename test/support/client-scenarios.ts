/**
 * The core end-to-end scenarios, written once for any `phoenix` client release and transport:
 * connect with params, join, echo, broadcast to a second socket, crash → rejoin with a new join
 * ref, and presence. Used for the older clients (phoenix-1.6, phoenix-1.7).
 */
import { afterEach, expect, it } from 'vitest';
import type * as Phoenix from 'phoenix';
import type { Channel, Socket, TransportConstructor } from 'phoenix';
import { nextEvent, replyOf, waitFor } from './phoenix-client.js';
import type { TestApp } from './test-app.js';

export interface PhoenixLib {
  readonly Socket: typeof Phoenix.Socket;
  readonly Presence: typeof Phoenix.Presence;
}

export interface ScenarioContext {
  /** A label for topics and ids, unique per client release and transport. */
  readonly label: string;
  readonly lib: () => PhoenixLib;
  readonly transport: () => TransportConstructor;
  readonly app: () => TestApp;
  /** Whether `transport` is a LongPoll transport (checked against the server's session count). */
  readonly longpoll: boolean;
}

export function defineCoreScenarios(ctx: ScenarioContext): void {
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.disconnect();
  });

  async function connected(
    params: Record<string, unknown> = {},
    rejoinAfterMs?: () => number,
  ): Promise<Socket> {
    const { Socket } = ctx.lib();
    const socket = new Socket(`ws://127.0.0.1:${ctx.app().port}/socket`, {
      transport: ctx.transport(),
      params,
      ...(rejoinAfterMs ? { rejoinAfterMs } : {}),
    });
    sockets.push(socket);
    socket.connect();
    await waitFor(() => socket.isConnected(), `${ctx.label} socket open`);
    return socket;
  }

  async function joined(socket: Socket, topic: string, params: object = {}): Promise<Channel> {
    const channel = socket.channel(topic, params);
    expect(await replyOf(channel.join())).toMatchObject({ status: 'ok' });
    return channel;
  }

  const topic = (base: string) => `room:${base}-${ctx.label}`;

  it('connect params reach connect (with vsn); join ok; the welcome push follows', async () => {
    const socket = await connected({ user_id: 'legacy' });
    const { longpollSessions } = ctx.app().gateway.stats;
    if (ctx.longpoll) expect(longpollSessions).toBeGreaterThan(0);
    else expect(longpollSessions).toBe(0);
    const channel = socket.channel('room:afterjoin');
    const welcome = nextEvent(channel, 'welcome');
    expect(await replyOf(channel.join())).toEqual({ status: 'ok', response: {} });
    expect(await welcome).toEqual({
      assigns_token: null,
      params: { user_id: 'legacy', vsn: '2.0.0' },
    });
  });

  it('echo push gets its reply; error replies resolve "error"', async () => {
    const socket = await connected();
    const channel = await joined(socket, topic('echo'));
    expect(await replyOf(channel.push('echo', { x: [1, 'two'] }))).toEqual({
      status: 'ok',
      response: { x: [1, 'two'] },
    });
    expect(await replyOf(channel.push('error_reply', {}))).toEqual({
      status: 'error',
      response: { reason: 'bad' },
    });
  });

  it('broadcast reaches a second socket', async () => {
    const t = topic('bcast');
    const a = await connected();
    const b = await connected();
    const chA = await joined(a, t);
    const chB = await joined(b, t);
    const toB = nextEvent(chB, 'bcast');
    expect(await replyOf(chA.push('broadcast', { hello: 'b' }))).toEqual({
      status: 'ok',
      response: {},
    });
    expect(await toB).toEqual({ hello: 'b' });
  });

  it('a channel crash errors the channel; it rejoins with a new join ref and works again', async () => {
    // A short rejoin delay (default 1 s): the point is that it rejoins, not when.
    const socket = await connected({}, () => 50);
    const channel = socket.channel(topic('crash'));
    const joinRefs: (string | null)[] = [];
    channel.join().receive('ok', () => joinRefs.push(channel.joinRef()));
    await waitFor(() => joinRefs.length === 1, 'first join');
    const errors: unknown[] = [];
    channel.onError((reason) => errors.push(reason));
    channel.push('boom', {});
    await waitFor(() => errors.length > 0, 'onError');
    expect(errors[0]).toEqual({ reason: 'channel_crash' });
    await waitFor(() => joinRefs.length >= 2 && channel.state === 'joined', 'rejoin');
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    expect(await replyOf(channel.push('echo', { again: true }))).toEqual({
      status: 'ok',
      response: { again: true },
    });
  });

  it('presence: two clients see each other join, update and leave', async () => {
    const { Presence } = ctx.lib();
    const t = `presence:legacy-${ctx.label}`;
    const a = await connected();
    const b = await connected();
    const keysOf = (presence: Phoenix.Presence) =>
      presence
        .list((key) => key)
        .sort()
        .join();
    const chA = a.channel(t, { key: 'alice' });
    const presA = new Presence(chA);
    expect(await replyOf(chA.join())).toMatchObject({ status: 'ok' });
    await waitFor(() => keysOf(presA) === 'alice', 'alice');
    const chB = b.channel(t, { key: 'bob' });
    const presB = new Presence(chB);
    expect(await replyOf(chB.join())).toMatchObject({ status: 'ok' });
    await waitFor(
      () => keysOf(presA) === 'alice,bob' && keysOf(presB) === 'alice,bob',
      'alice and bob',
    );
    const bobRef = presA.state.bob!.metas[0]!.phx_ref;
    expect(await replyOf(chB.push('update', { meta: { status: 'away' } }))).toMatchObject({
      status: 'ok',
    });
    await waitFor(() => presA.state.bob?.metas[0]?.status === 'away', 'bob away');
    expect(presA.state.bob?.metas).toEqual([
      { status: 'away', phx_ref: expect.any(String) as unknown, phx_ref_prev: bobRef },
    ]);
    chB.leave();
    await waitFor(() => keysOf(presA) === 'alice', 'bob left');
  });
}

/**
 * Protocol spec §8 K (cases 106–107), §3.7–§3.9 and §6.5, with the real `phoenix` 1.8 client:
 * reconnect and rejoin (new join refs) after a server restart, after an unanswered heartbeat and
 * after a server-initiated disconnect; and the LongPoll fallback when WebSocket is refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  LongPoll,
  Socket,
  type Channel,
  type CloseEventLike,
  type SocketOptions,
  type TransportConstructor,
} from 'phoenix';
import { createGateway, type Gateway } from '../../src/index.js';
import { freePort, MemoryStorage, Recorder, replyOf, waitFor } from '../support/phoenix-client.js';
import { realTime } from '../support/wait.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { HttpProxy, WsFrameProxy } from './proxies.js';
import {
  connectHook,
  parkedPolls,
  roomChannel,
  startTestApp,
  type TestApp,
  type TestAssigns,
} from '../support/test-app.js';

const TRANSPORTS: { name: string; transport: TransportConstructor }[] = [
  { name: 'websocket', transport: WebSocket },
  { name: 'longpoll', transport: LongPoll },
];

/** Everything a test opened, closed after it in reverse order. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function socketFor(port: number, opts: SocketOptions): Socket {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, opts);
  cleanups.push(() => socket.disconnect());
  socket.connect();
  return socket;
}

async function app(port?: number): Promise<TestApp> {
  const started = await startTestApp(port === undefined ? {} : { port });
  cleanups.push(() => started.close());
  return started;
}

/** Joins and records the join ref of every successful (re)join. */
async function trackedJoin(
  socket: Socket,
  topic: string,
): Promise<{ channel: Channel; joinRefs: (string | null)[] }> {
  const channel = socket.channel(topic);
  const joinRefs: (string | null)[] = [];
  channel.join().receive('ok', () => joinRefs.push(channel.joinRef()));
  await waitFor(() => joinRefs.length === 1, `join ${topic}`);
  return { channel, joinRefs };
}

const echo = async (channel: Channel, payload: object) =>
  expect(await replyOf(channel.push('echo', payload))).toEqual({ status: 'ok', response: payload });

describe.each(TRANSPORTS)('phoenix 1.8 client over $name', ({ name, transport }) => {
  it('server restart on the same port: the client reconnects and rejoins with a new join ref; pushes work again', async () => {
    const port = await freePort();
    const first = await startTestApp({ port });
    let firstClosed = false;
    cleanups.push(() => (firstClosed ? undefined : first.close()));
    const socket = socketFor(port, {
      transport,
      heartbeatIntervalMs: 200,
      reconnectAfterMs: () => 100,
      rejoinAfterMs: () => 100,
    });
    await waitFor(() => socket.isConnected(), 'connected');
    const { channel, joinRefs } = await trackedJoin(socket, `room:restart-${name}`);
    await echo(channel, { before: 'restart' });
    const errors: unknown[] = [];
    channel.onError((reason) => errors.push(reason));

    await first.close();
    firstClosed = true;
    await waitFor(() => errors.length > 0, 'channel errored by the transport');
    expect(errors[0]).toMatchObject({ source: 'transport' });
    expect(channel.state).not.toBe('joined');

    const second = await app(port);
    await waitFor(
      () => joinRefs.length >= 2 && channel.state === 'joined',
      'rejoined on the restarted server',
    );
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    expect(channel.joinRef()).toBe(joinRefs[joinRefs.length - 1]);
    await echo(channel, { after: 'restart' });
    expect(second.gateway.stats.channels).toBe(1);
  });

  it('107: gateway.disconnect(id) closes the session; the client reconnects and rejoins with a new join ref', async () => {
    const server = await app();
    const userId = `dc-${name}`;
    const socket = socketFor(server.port, { transport, params: { user_id: userId } });
    await waitFor(() => socket.isConnected(), 'connected');
    const { channel, joinRefs } = await trackedJoin(socket, `room:dc-${name}`);
    const closes: CloseEventLike[] = [];
    socket.onClose((event) => closes.push(event));
    if (name === 'longpoll') await waitFor(() => parkedPolls(server.gateway) === 1, 'a parked GET');

    expect(server.gateway.disconnect(`user:${userId}`)).toBe(1);
    await waitFor(() => closes.length > 0, 'close event');
    // WebSocket: the server's close code 1001. LongPoll: the parked GET answers 410, which the
    // client turns into close(3410, "session_gone").
    expect(closes[0]!.code).toBe(name === 'websocket' ? 1001 : 3410);

    await waitFor(() => joinRefs.length >= 2 && channel.state === 'joined', 'rejoined');
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    await echo(channel, { after: 'disconnect' });
    // The new connection is registered under the same id again.
    expect(server.gateway.disconnect(`user:${userId}`)).toBe(1);
  });

  it('107: an undecodable frame ends the connection with 1011; the client reconnects and rejoins with a new join ref', async () => {
    const server = await app();
    const socket = socketFor(server.port, { transport });
    await waitFor(() => socket.isConnected(), 'connected');
    const { channel, joinRefs } = await trackedJoin(socket, `room:1011-${name}`);
    const closes: CloseEventLike[] = [];
    socket.onClose((event) => closes.push(event));
    const invalidBefore = server.gateway.stats.invalidFrames;

    // The real client's transport sends what no Phoenix client would: invalid JSON.
    (socket as unknown as { conn: { send(data: string): void } }).conn.send('{nope');
    await waitFor(() => closes.length > 0, 'close event');
    if (name === 'websocket') {
      // The gateway's close frame.
      expect(closes[0]).toMatchObject({ code: 1011 });
    } else {
      // LongPoll has no close frame: the gateway ends the session, so the parked GET answers
      // {"status":410} (client: close 3410 "session_gone") and the POST HTTP 400 {"status":400}
      // (client: close 1011); the client acts on whichever it reads first.
      expect([3410, 1011]).toContain(closes[0]!.code);
    }
    expect(server.gateway.stats.invalidFrames - invalidBefore).toBe(1);

    await waitFor(() => joinRefs.length >= 2 && channel.state === 'joined', 'rejoined');
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    await echo(channel, { after: '1011' });
  });

  it('107: reconnect attempts follow the default schedule (10, 50, 100, 150, 200, 250 ms) and it restarts at 10 ms once connected', async () => {
    const attempts: number[] = [];
    let refuseNext = 0;
    const server = await startTestApp({
      socket: {
        connect: (info) => {
          attempts.push(Date.now());
          if (refuseNext > 0) {
            refuseNext--;
            return false;
          }
          return connectHook(info);
        },
      },
    });
    cleanups.push(() => server.close());
    const userId = `schedule-${name}`;
    const socket = socketFor(server.port, { transport, params: { user_id: userId } }); // default reconnectAfterMs
    await waitFor(() => socket.isConnected(), 'connected');
    const { channel, joinRefs } = await trackedJoin(socket, `room:schedule-${name}`);
    const closes: number[] = [];
    socket.onClose(() => closes.push(Date.now()));
    const parkGet = () =>
      name === 'longpoll'
        ? waitFor(() => parkedPolls(server.gateway) === 1, 'a parked GET')
        : Promise.resolve(true);
    await parkGet();

    attempts.length = 0;
    refuseNext = 5;
    expect(server.gateway.disconnect(`user:${userId}`)).toBe(1);
    await waitFor(
      () => joinRefs.length >= 2 && channel.state === 'joined',
      'rejoined after five refused attempts',
    );
    // Five refused attempts (HTTP 403 / {"status":403}), then the sixth connects.
    expect(attempts).toHaveLength(6);
    const SCHEDULE = [10, 50, 100, 150, 200, 250];
    const gaps = attempts.map((at, i) => at - (i === 0 ? closes[0]! : attempts[i - 1]!));
    // Lower bounds only: a loaded machine delays timers, it never fires them early.
    gaps.forEach((gap, i) => {
      expect(gap, `attempt ${i + 1}`).toBeGreaterThanOrEqual(SCHEDULE[i]! - 2);
    });
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    await echo(channel, { after: 'refusals' });

    // An open connection resets the tries: the next server close is retried after 10 ms again
    // (the client's reconnect timer is back at try 0, so its next delay is the schedule's first).
    await parkGet();
    const reconnectTimer = (socket as unknown as { reconnectTimer: { tries: number } })
      .reconnectTimer;
    expect(reconnectTimer.tries).toBe(0);
    attempts.length = 0;
    closes.length = 0;
    expect(server.gateway.disconnect(`user:${userId}`)).toBe(1);
    await waitFor(() => joinRefs.length >= 3 && channel.state === 'joined', 'rejoined again');
    expect(attempts).toHaveLength(1);
    expect(attempts[0]! - closes[0]!).toBeGreaterThanOrEqual(8);
    expect(reconnectTimer.tries).toBe(0); // connected again: reset once more
  });
});

describe('phoenix 1.8 client heartbeats (106)', () => {
  const INTERVAL = 300;

  it('106: WebSocket — heartbeats every interval after open and after each reply; a withheld reply → phx_error heartbeat_timeout, close 1000 "heartbeat timeout" one interval later, reconnect, rejoin', async () => {
    const server = await app();
    const proxy = await WsFrameProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const socket = socketFor(proxy.port, {
      transport: WebSocket,
      heartbeatIntervalMs: INTERVAL,
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 100,
    });
    await waitFor(() => socket.isConnected(), 'connected');
    const { channel, joinRefs } = await trackedJoin(socket, 'room:heartbeat');

    // Two answered heartbeats: the first about one interval after open, the next one interval after its reply.
    const [reply1] = await waitFor(
      () => (proxy.heartbeatReplies().length >= 2 ? proxy.heartbeatReplies() : undefined),
      'two heartbeat replies',
    );
    const [hb1, hb2] = proxy.heartbeats();
    expect(hb1!.frame).toEqual([null, expect.any(String), 'phoenix', 'heartbeat', {}]);
    expect(reply1!.frame).toEqual([
      null,
      (hb1!.frame as unknown[])[1],
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    const openedAt = proxy.opened[0]!.at;
    // Lower bounds only (the client's timers may fire late on a loaded machine, never early).
    expect(hb1!.at - openedAt).toBeGreaterThanOrEqual(INTERVAL - 20);
    expect(hb2!.at - reply1!.at).toBeGreaterThanOrEqual(INTERVAL - 20);

    const errors: unknown[] = [];
    channel.onError((reason) => errors.push(reason));
    const closes: CloseEventLike[] = [];
    socket.onClose((event) => closes.push(event));
    expect(proxy.withholdHeartbeats()).toBe(1);
    const lastReply = await waitFor(() => {
      const replies = proxy.heartbeatReplies();
      const unanswered = proxy.heartbeats().find((f) => f.dropped);
      return unanswered ? replies[replies.length - 1] : undefined;
    }, 'a withheld heartbeat');
    const withheld = proxy.heartbeats().find((f) => f.dropped)!;

    // The client gives up one interval after the unanswered heartbeat, i.e. ~2 intervals after the last reply.
    const close = await waitFor(() => proxy.clientCloses[0], 'the client closing the connection');
    expect(close).toMatchObject({ connection: 1, code: 1000, reason: 'heartbeat timeout' });
    expect(close.at - withheld.at).toBeGreaterThanOrEqual(INTERVAL - 20);
    expect(close.at - lastReply.at).toBeGreaterThanOrEqual(2 * INTERVAL - 40);
    expect(errors[0]).toEqual({ source: 'transport', reason: 'heartbeat_timeout' });

    // It reconnects (a new connection, whose heartbeats are answered) and rejoins with a new join ref.
    await waitFor(
      () => joinRefs.length >= 2 && channel.state === 'joined',
      'rejoined over a new connection',
    );
    expect(proxy.opened.map((o) => o.id)).toEqual([1, 2]);
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    const rejoin = proxy.frames.find(
      (f) => f.connection === 2 && f.dir === 'up' && (f.frame as unknown[])[3] === 'phx_join',
    )!;
    expect(rejoin.frame).toEqual([joinRefs[1], joinRefs[1], 'room:heartbeat', 'phx_join', {}]);
    await echo(channel, { after: 'heartbeat timeout' });
    await waitFor(
      () => proxy.heartbeatReplies().some((f) => f.connection === 2),
      'heartbeats answered again',
    );
  });

  it('106: LongPoll — the client sends no heartbeats (skipHeartbeat), so it never times out on them', async () => {
    const server = await app();
    const proxy = await HttpProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const socket = socketFor(proxy.port, { transport: LongPoll, heartbeatIntervalMs: INTERVAL });
    await waitFor(() => socket.isConnected(), 'connected');
    const { channel, joinRefs } = await trackedJoin(socket, 'room:lp-heartbeat');
    const errors: unknown[] = [];
    channel.onError((reason) => errors.push(reason));
    await realTime(3 * INTERVAL, 'the phoenix client would send heartbeats on its own timer');
    await echo(channel, { still: 'joined' });
    const posted = proxy.requests
      .filter((r) => r.method === 'POST')
      .flatMap((r) => r.body.split('\n'));
    expect(posted.length).toBeGreaterThanOrEqual(2); // the join and the echo
    expect(posted.filter((line) => line.includes('"heartbeat"'))).toEqual([]);
    expect(errors).toEqual([]);
    expect(joinRefs).toHaveLength(1);
    expect(socket.isConnected()).toBe(true);
  });

  it('106b: a hung connection (TCP stalled both ways) also times out on the heartbeat; the client reconnects and rejoins', async () => {
    const server = await app();
    const proxy = await TcpProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const socket = socketFor(proxy.port, {
      transport: WebSocket,
      heartbeatIntervalMs: INTERVAL,
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 100,
    });
    const recorder = new Recorder(socket);
    await waitFor(() => socket.isConnected(), 'connected');
    const { channel, joinRefs } = await trackedJoin(socket, 'room:heartbeat-stall');
    await waitFor(() => recorder.of('phoenix', 'phx_reply').length >= 1, 'a heartbeat reply');

    const errors: unknown[] = [];
    channel.onError((reason) => errors.push(reason));
    expect(proxy.stall()).toBe(1);
    await waitFor(() => errors.length > 0, 'heartbeat timeout');
    expect(errors[0]).toEqual({ source: 'transport', reason: 'heartbeat_timeout' });

    await waitFor(
      () => joinRefs.length >= 2 && channel.state === 'joined',
      'rejoined over a new connection',
    );
    expect(joinRefs[1]).not.toBe(joinRefs[0]);
    await echo(channel, { after: 'heartbeat timeout' });
  });
});

describe('phoenix 1.8 client LongPoll fallback', () => {
  it('a refused WebSocket falls back to LongPoll (longPollFallbackMs); joins and pushes work; the fallback is remembered', async () => {
    const gateway: Gateway = createGateway({ logger: false });
    cleanups.push(() => gateway.close());
    gateway
      .socket<TestAssigns>('/socket', {
        websocket: false,
        connect: connectHook,
        longpoll: { windowMs: 1_000 },
      })
      .channel('room:*', roomChannel);
    const { port } = await gateway.listen(0, '127.0.0.1');
    const storage = new MemoryStorage();
    const errors: unknown[] = [];
    const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
      transport: WebSocket,
      // Far beyond the wait below: connecting at all shows the error, not the timer, fell back.
      longPollFallbackMs: 60_000,
      sessionStorage: storage,
      params: { user_id: 'fallback' },
    });
    cleanups.push(() => socket.disconnect());
    socket.onError((error) => errors.push(error));
    socket.connect();

    await waitFor(
      () => socket.transport === LongPoll && socket.isConnected(),
      'connected over LongPoll',
      20_000,
    );
    expect(errors.length).toBeGreaterThan(0);
    expect(socket.transport).toBe(LongPoll);

    const channel = socket.channel('room:fallback');
    expect(await replyOf(channel.join())).toEqual({ status: 'ok', response: {} });
    await echo(channel, { over: 'longpoll' });
    expect(gateway.stats.longpollSessions).toBe(1);
    expect(storage.getItem('phx:fallback:LongPoll')).toBe('true');
  });

  it('a healthy WebSocket passes the ping health check and stays; nothing is remembered', async () => {
    const server = await app();
    const storage = new MemoryStorage();
    const socket = socketFor(server.port, {
      transport: WebSocket,
      longPollFallbackMs: 60_000,
      sessionStorage: storage,
    });
    const recorder = new Recorder(socket);
    // The health check is a heartbeat sent right after open; its reply cancels the fallback.
    await waitFor(() => recorder.of('phoenix', 'phx_reply').length > 0, 'health-check ping reply');
    const channel = socket.channel('room:healthy');
    expect(await replyOf(channel.join())).toEqual({ status: 'ok', response: {} });
    // The reply passed the health check, which cancels the fallback timer for good.
    expect(
      (socket as unknown as { primaryPassedHealthCheck: boolean }).primaryPassedHealthCheck,
    ).toBe(true);
    expect(socket.transport).toBe(WebSocket);
    expect(socket.isConnected()).toBe(true);
    await echo(channel, { still: 'websocket' });
    expect(server.gateway.stats.longpollSessions).toBe(0);
    expect(storage.getItem('phx:fallback:LongPoll')).toBeNull();
  });
});

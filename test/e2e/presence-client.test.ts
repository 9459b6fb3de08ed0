/**
 * Protocol spec §8 case 85, second half, with the real `phoenix` 1.8 client and its `Presence`
 * helper over both transports: presence_diff messages that arrive before the first
 * presence_state are queued and applied after it (spec §5 "JS Presence client").
 *
 * The `late:*` channel produces that order on purpose: its afterJoin takes the state snapshot,
 * tracks the joining key (whose diff is broadcast at once), and only then pushes the snapshot —
 * the race a Phoenix app has when the tracker's diff overtakes the state push.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LongPoll, Presence, Socket, type TransportConstructor } from 'phoenix';
import { createGateway, defineChannel, ok, type Gateway } from '../../src/index.js';
import { Recorder, replyOf, waitFor } from '../support/phoenix-client.js';

let gateway: Gateway;
let port: number;
beforeAll(async () => {
  gateway = createGateway({ logger: false });
  const late = defineChannel<{ key?: string }>({
    join(_topic, payload, channel) {
      channel.assign({ key: String((payload as { key?: unknown }).key) });
      return undefined;
    },
    afterJoin(channel) {
      const snapshot = gateway.presence.list(channel.topic);
      gateway.presence.track(channel, channel.assigns.key!, { online_at: 1 });
      channel.push('presence_state', snapshot);
    },
    handleIn(event, payload, channel) {
      if (event === 'update') {
        gateway.presence.update(channel, channel.assigns.key!, payload as Record<string, unknown>);
        return ok();
      }
      return undefined;
    },
  });
  gateway.socket('/socket', { longpoll: { windowMs: 1_000 } }).channel('late:*', late);
  ({ port } = await gateway.listen(0, '127.0.0.1'));
});
afterAll(() => gateway.close());

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});

const TRANSPORTS: { name: string; transport: TransportConstructor }[] = [
  { name: 'websocket', transport: WebSocket },
  { name: 'longpoll', transport: LongPoll },
];

describe.each(TRANSPORTS)('85: the JS Presence helper over $name', ({ name, transport }) => {
  async function connected(): Promise<Socket> {
    const socket = new Socket(`ws://127.0.0.1:${port}/socket`, { transport });
    sockets.push(socket);
    socket.connect();
    await waitFor(() => socket.isConnected(), 'open');
    return socket;
  }

  it('diffs received before the first presence_state are applied after it', async () => {
    const topic = `late:lobby-${name}`;
    const keys = (presence: Presence) => presence.list((key) => key).sort();

    // bob is there first (his own diff also arrived before his state: he lists himself).
    const b = await connected();
    const chB = b.channel(topic, { key: 'bob' });
    const presB = new Presence(chB);
    expect((await replyOf(chB.join())).status).toBe('ok');
    await waitFor(() => keys(presB).join() === 'bob', 'bob sees bob');

    const a = await connected();
    const recorder = new Recorder(a);
    const chA = a.channel(topic, { key: 'alice' });
    const presA = new Presence(chA);
    const syncs: string[][] = [];
    presA.onSync(() => syncs.push(keys(presA)));
    const joined: string[] = [];
    presA.onJoin((key, current) => {
      if (!current) joined.push(key);
    });
    expect((await replyOf(chA.join())).status).toBe('ok');
    await waitFor(() => recorder.of(topic, 'presence_state').length === 1, 'presence_state');

    // On the wire: alice's diff, then a state that does not hold alice.
    const wire = recorder.of(topic).map((m) => m.event);
    expect(wire.indexOf('presence_diff')).toBeLessThan(wire.indexOf('presence_state'));
    const [state] = recorder.of(topic, 'presence_state');
    expect(Object.keys(state!.payload as object)).toEqual(['bob']);
    const [diff] = recorder.of(topic, 'presence_diff');
    expect(diff!.payload).toEqual({
      joins: { alice: { metas: [{ online_at: 1, phx_ref: expect.any(String) as unknown }] } },
      leaves: {},
    });

    // The helper queued the diff and applied it after the state: both keys, one sync for both.
    await waitFor(() => keys(presA).join() === 'alice,bob', 'alice and bob');
    expect(syncs).toEqual([['alice', 'bob']]);
    expect(joined.sort()).toEqual(['alice', 'bob']);
    const aliceRef = (diff!.payload as { joins: { alice: { metas: { phx_ref: string }[] } } }).joins
      .alice.metas[0]!.phx_ref;
    expect(presA.state.alice?.metas).toEqual([{ online_at: 1, phx_ref: aliceRef }]);
    // bob got alice's diff after his own state: applied at once.
    await waitFor(() => keys(presB).join() === 'alice,bob', 'bob sees alice');

    // Later diffs apply directly: bob's update is one diff, leaving only the new meta.
    const bobRef = presA.state.bob!.metas[0]!.phx_ref;
    expect((await replyOf(chB.push('update', { status: 'away' }))).status).toBe('ok');
    await waitFor(() => presA.state.bob?.metas[0]?.status === 'away', 'bob away');
    expect(presA.state.bob?.metas).toEqual([
      { status: 'away', phx_ref: expect.any(String) as unknown, phx_ref_prev: bobRef },
    ]);
    chB.leave();
    await waitFor(() => keys(presA).join() === 'alice', 'bob gone');
  });
});

/**
 * The cluster and Presence metric families with two gateways (`startGateway`, the demo's `room:*`
 * channel, which tracks each joiner) on one real nats-server and real `phoenix` clients: this
 * node's own Presence entries and the other node's held here, the nodes replicated, replication
 * counters, topics subscribed on NATS, broadcasts crossing gateways and a cluster-wide disconnect,
 * each read from `/metrics` on the gateway that counts it.
 */
import { pino } from 'pino';
import WebSocket from 'ws';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { NatsServer } from '../support/nats.js';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { scrape, type Scrape } from '../support/prom-text.js';
import { eventually } from '../support/wait.js';

const TOPIC = 'room:metrics';

let nats: NatsServer;
let a: RunningGateway;
let b: RunningGateway;
const sockets: Socket[] = [];

async function gateway(nodeId: string): Promise<RunningGateway> {
  const running = await startGateway({
    config: { demo: true, nodeId, nats: { servers: nats.url } },
    fromFile: false,
    port: 0,
    logger: pino({ level: 'silent' }),
  });
  await running.natsConnected;
  return running;
}

beforeAll(async () => {
  nats = await NatsServer.start();
  a = await gateway('metrics-a');
  b = await gateway('metrics-b');
}, 30_000);
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});
afterAll(async () => {
  await a?.gateway.close();
  await b?.gateway.close();
  await nats?.dispose();
});

const read = (running: RunningGateway): Promise<Scrape> =>
  scrape(`http://127.0.0.1:${running.address.port}/metrics`);

/** A client of `running` (socket id `user:<name>` in the demo) joined to TOPIC as `name`. */
async function member(running: RunningGateway, name: string): Promise<Channel> {
  const socket = new Socket(`ws://127.0.0.1:${running.address.port}/socket`, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: name },
    // The disconnect test closes one; it must not come back within the test.
    reconnectAfterMs: () => 60_000,
  });
  sockets.push(socket);
  socket.connect();
  await waitFor(() => socket.isConnected(), `${name} connected`);
  const channel = socket.channel(TOPIC, { name });
  expect((await replyOf(channel.join())).status).toBe('ok');
  return channel;
}

describe('cluster and Presence metrics with two gateways on one NATS', () => {
  it('own and remote Presence entries, nodes, replication and topics follow joins and leaves', async () => {
    const [aBefore, bBefore] = await Promise.all([read(a), read(b)]);
    expect(aBefore.value('gen_gateway_cluster_connected')).toBe(1);
    expect(aBefore.value('gen_gateway_presence_local_entries')).toBe(0);
    expect(bBefore.value('gen_gateway_presence_remote_entries')).toBe(0);
    const topicsBefore = aBefore.value('gen_gateway_cluster_topics')!;
    const published = (s: Scrape) =>
      s.value('gen_gateway_presence_replication_total', { event: 'deltas_published' })!;
    const received = (s: Scrape) =>
      s.value('gen_gateway_presence_replication_total', { event: 'received' })!;

    await member(a, 'alice');
    await member(a, 'amy');
    const aDuring = await eventually(async () => {
      const now = await read(a);
      expect(now.value('gen_gateway_presence_local_entries')).toBe(2);
      expect(published(now)).toBeGreaterThan(published(aBefore));
      return now;
    }, 'a tracks its two clients and publishes them');
    // A subscribes to the room's topic on NATS for its clients.
    expect(aDuring.value('gen_gateway_cluster_topics')).toBeGreaterThan(topicsBefore);
    // Not a's own entries: none of b's are there.
    expect(aDuring.value('gen_gateway_presence_remote_entries')).toBe(0);

    const bDuring = await eventually(async () => {
      const now = await read(b);
      expect(now.value('gen_gateway_presence_remote_entries')).toBe(2);
      return now;
    }, "b holds a's two entries");
    expect(bDuring.value('gen_gateway_presence_local_entries')).toBe(0);
    expect(bDuring.value('gen_gateway_presence_nodes')).toBe(1);
    expect(received(bDuring)).toBeGreaterThan(received(bBefore));

    // Alice and Amy leave: a's own entries and b's copy of them go.
    for (const socket of sockets.splice(0)) socket.disconnect();
    await eventually(async () => {
      const [aNow, bNow] = await Promise.all([read(a), read(b)]);
      expect(aNow.value('gen_gateway_presence_local_entries')).toBe(0);
      expect(bNow.value('gen_gateway_presence_remote_entries')).toBe(0);
      expect(aNow.value('gen_gateway_cluster_topics')).toBe(topicsBefore);
    }, 'the entries gone on both nodes');
  }, 30_000);

  it('a broadcast from one gateway is published there, received and delivered on the other', async () => {
    const shouter = await member(a, 'carol');
    const listener = await member(b, 'dave');
    const heard = new Promise<unknown>((resolve) => listener.on('shout', resolve));
    const event = (s: Scrape, name: string) =>
      s.value('gen_gateway_cluster_broadcasts_total', { event: name })!;
    const [aBefore, bBefore] = await Promise.all([read(a), read(b)]);

    expect((await replyOf(shouter.push('shout', { body: 'hello b' }))).status).toBe('ok');
    expect(await heard).toEqual({ from: 'carol', body: 'hello b' });

    await eventually(async () => {
      const [aNow, bNow] = await Promise.all([read(a), read(b)]);
      expect(event(aNow, 'published') - event(aBefore, 'published')).toBe(1);
      expect(event(bNow, 'received') - event(bBefore, 'received')).toBe(1);
      expect(event(bNow, 'delivered') - event(bBefore, 'delivered')).toBe(1);
      expect(event(bNow, 'dropped')).toBe(0);
      expect(event(aNow, 'publish_failed')).toBe(0);
    }, 'the broadcast counted on both nodes');
  }, 30_000);

  it('gateway.disconnect(id) on one node closes the socket on the other and both count it', async () => {
    await member(b, 'erin');
    const event = (s: Scrape, name: string) =>
      s.value('gen_gateway_cluster_disconnects_total', { event: name })!;
    const [aBefore, bBefore] = await Promise.all([read(a), read(b)]);

    // No socket `user:erin` on a: it closes none here and publishes for the others.
    expect(a.gateway.disconnect('user:erin')).toBe(0);
    await eventually(async () => {
      const [aNow, bNow] = await Promise.all([read(a), read(b)]);
      expect(event(aNow, 'published') - event(aBefore, 'published')).toBe(1);
      expect(event(bNow, 'received') - event(bBefore, 'received')).toBe(1);
      expect(event(bNow, 'closed') - event(bBefore, 'closed')).toBe(1);
      expect(event(bNow, 'dropped')).toBe(0);
    }, 'the disconnect counted on both nodes');
    await waitFor(() => !sockets.at(-1)!.isConnected(), "erin's socket closed");
  }, 30_000);
});

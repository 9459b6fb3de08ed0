/**
 * Issue 11's cluster PubSub and pushes with real parts: a 3-server NATS cluster, 3 gateway
 * processes (`gen-gateway --config {demo: true} --nats <server i>`), the real demo worker process
 * (`npm run worker:demo`), the real `phoenix` client on different gateways, and a plain NATS
 * client (no SDK). A fourth, in-process gateway on the same cluster lets the test read a node's
 * counters and its NATS connection's message count.
 *
 * NATS spreads a new subscription's interest to the other servers asynchronously, so before
 * measuring, each test waits until a probe from its publisher reaches every receiver (`converge`).
 */
import { connect } from '@nats-io/transport-node';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { Socket, type Channel, type TransportConstructor } from 'phoenix';
import { pino } from 'pino';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../../src/cluster/cluster.js';
import { ClusterPubSub } from '../../src/cluster/pubsub.js';
import { demoConnect, demoRoomChannel } from '../../src/demo/chat.js';
import { Gateway } from '../../src/gateway.js';
import { H } from '../../src/nats/headers.js';
import { topicToken } from '../../src/nats/topic-token.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { defineService, fn } from '../../src/worker/define.js';
import { createPublisher, serve, type RunningService } from '../../src/worker/index.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { NatsCluster } from '../support/nats.js';
import { replyOf } from '../support/phoenix-client.js';
import { RawClient } from '../support/ws-client.js';
import { DemoWorker } from '../support/ratelimit-cluster.js';
import { until } from '../support/wait.js';

const GEN_API = 'phoenix_gen_api';

interface Received {
  event: string;
  payload: unknown;
}

/** A phoenix client in one room: what it receives, and how its socket closed. */
interface Member {
  name: string;
  socket: Socket;
  channel: Channel;
  got: Received[];
  closes: number[];
}

let cluster: NatsCluster;
let gateways: GatewayProcess[] = [];
let worker: DemoWorker;
let quiet: Gateway;
let quietPort: number;
let raw: NatsConnection;
const sockets: Socket[] = [];

function endpoint(port: number): string {
  return `ws://127.0.0.1:${port}/socket`;
}

async function connectSocket(
  url: string,
  user: string,
): Promise<{ socket: Socket; closes: number[] }> {
  const closes: number[] = [];
  const socket = new Socket(url, {
    transport: WebSocket as unknown as TransportConstructor,
    params: { user_id: user },
    // Keep the test in charge of reconnects after a disconnect.
    reconnectAfterMs: () => 60_000,
  });
  socket.onClose((event: unknown) => closes.push((event as { code: number }).code));
  sockets.push(socket);
  socket.connect();
  await until(() => socket.isConnected(), `${user}'s socket open`);
  return { socket, closes };
}

/** `user` joins `topic` (a demo room) on the gateway at `url`, recording every event but presence. */
async function member(url: string, user: string, topic: string): Promise<Member> {
  const { socket, closes } = await connectSocket(url, user);
  const got: Received[] = [];
  socket.onMessage((message) => {
    if (message.topic !== topic) return;
    const { event } = message;
    if (event.startsWith('phx_') || event.startsWith('presence_') || event.startsWith('chan_reply'))
      return;
    got.push({ event, payload: message.payload });
  });
  const channel = socket.channel(topic, { name: user });
  const reply = await replyOf(channel.join());
  expect(reply.status, `${user} joins ${topic}`).toBe('ok');
  return { name: user, socket, channel, got, closes };
}

function events(m: Member, event: string): unknown[] {
  return m.got.filter((r) => r.event === event).map((r) => r.payload);
}

/**
 * Sends a probe with `send()` every 100 ms until every member has received at least one `event`
 * (the publisher's NATS server knows every receiver's interest by then), then forgets them.
 */
async function converge(
  members: Member[],
  event: string,
  send: () => void,
  label: string,
): Promise<void> {
  await until(
    () => {
      if (members.every((m) => events(m, event).length > 0)) return true;
      send();
      return false;
    },
    `probes reach every member (${label})`,
    { timeoutMs: 15_000, intervalMs: 100 },
  );
  for (const m of members) m.got.splice(0);
}

const json = (value: unknown) => JSON.stringify(value);

function quietPubSub(): ClusterPubSub {
  expect(quiet.pubsub).toBeInstanceOf(ClusterPubSub);
  return quiet.pubsub as ClusterPubSub;
}

/** The in-process gateway's cluster connection: its message count proves what it was sent. */
function quietConnection(): NatsConnection {
  // Test-only access to a private field: the Gateway does not expose its cluster connection.
  return (quiet as unknown as { clusterLink: Cluster }).clusterLink.link.nc;
}

/** Whether a NATS subscription on `filter` (wildcards `*`, `>`) receives messages on `subject`. */
function covers(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const t = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return t.length > i;
    if (i >= t.length || (f[i] !== '*' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/**
 * The subscriptions of the in-process gateway's cluster connection that receive `subject`. The
 * server sends a client only what its subscriptions match, so none means the node is sent nothing
 * for that subject whoever publishes (whatever else, e.g. Presence, the connection carries).
 */
function quietSubscriptionsFor(subject: string): string[] {
  const nc = quietConnection() as unknown as {
    protocol: { subscriptions: { all(): { getSubject(): string }[] } };
  };
  return nc.protocol.subscriptions
    .all()
    .map((sub) => sub.getSubject())
    .filter((filter) => covers(filter, subject));
}

/** Calls demo.<requestType> over gen_api as the socket's user; resolves with the gen_api push. */
async function genApiCall(
  socket: Socket,
  requestType: string,
  args: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const channel = socket.channel('gen_api:lobby', {});
  expect((await replyOf(channel.join())).status).toBe('ok');
  const requestId = `r-${requestType}-${Math.random().toString(36).slice(2)}`;
  const pushes: Record<string, unknown>[] = [];
  channel.on(GEN_API, (payload) => {
    if ((payload as { request_id?: unknown }).request_id === requestId)
      pushes.push(payload as Record<string, unknown>);
  });
  channel.push(GEN_API, {
    request_id: requestId,
    service: 'demo',
    request_type: requestType,
    args,
  });
  await until(() => pushes.length > 0, `the gen_api answer to ${requestType}`);
  return pushes[0]!;
}

beforeAll(async () => {
  cluster = await NatsCluster.start();
  const config = { demo: true };
  const workerUp = DemoWorker.start(cluster.urls[0]!).then((w) => (worker = w));
  gateways = await Promise.all(
    cluster.urls.map((url) => GatewayProcess.start({ config, nats: url })),
  );
  await workerUp;
  // Each gateway has pulled the demo worker's config (announce is callable everywhere).
  await Promise.all(gateways.map((gw) => gw.process.logLine('config applied', 30_000)));

  quiet = new Gateway({ logger: pino({ level: 'silent' }), cluster: { maxBroadcastBytes: 4096 } });
  const mount = quiet.socket('/socket', { connect: demoConnect, checkOrigin: false });
  mount.channel('room:*', demoRoomChannel(quiet));
  await quiet.connectCluster({ servers: cluster.urls[2]! });
  quietPort = (await quiet.listen(0, '127.0.0.1')).port;

  raw = await connect({ servers: cluster.urls[1]! });
}, 120_000);

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});

afterAll(async () => {
  await raw?.close();
  await quiet?.close();
  await Promise.all(gateways.map((gw) => gw.stop().catch(() => undefined)));
  await worker?.stop();
  await cluster?.dispose();
}, 60_000);

describe('cluster PubSub across 3 gateway processes on a 3-server NATS cluster', () => {
  it('shouts from each gateway reach the subscribers of every gateway', async () => {
    const [a, b, c] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    const alice = await member(a.socketUrl, 'alice', 'room:lobby');
    const bob = await member(b.socketUrl, 'bob', 'room:lobby');
    const carol = await member(c.socketUrl, 'carol', 'room:lobby');
    const all = [alice, bob, carol];
    for (const from of all) {
      await converge(all, 'shout', () => from.channel.push('shout', { body: 'probe' }), 'shouts');
      from.channel.push('shout', { body: 'hello' });
      const name = from.name;
      for (const m of all)
        await until(() => events(m, 'shout').length === 1, `${name}'s shout on every gateway`);
      for (const m of all) expect(events(m, 'shout')).toEqual([{ from: name, body: 'hello' }]);
      for (const m of all) m.got.splice(0);
    }
  });

  it('gateway.broadcast: 200 numbered broadcasts arrive in order on every gateway; a node without subscribers is sent nothing', async () => {
    const members = await Promise.all(
      gateways.map((gw, i) => member(gw.socketUrl, `o${i}`, 'room:order')),
    );
    await converge(members, 'probe', () => quiet.broadcast('room:order', 'probe', {}), 'quiet');
    await converge(
      members,
      'probe',
      () => raw.publish('genapi.topic.room:order', json({ event: 'probe' })),
      'raw',
    );
    const pubsub = quietPubSub();
    const before = pubsub.stats().received;
    expect(quietSubscriptionsFor('genapi.topic.room:order')).toEqual([]);

    for (let i = 0; i < 200; i++) quiet.broadcast('room:order', 'n', { i });
    for (let i = 0; i < 50; i++)
      raw.publish('genapi.topic.room:order', json({ event: 'raw', payload: { i } }));
    for (const m of members)
      await until(
        () => events(m, 'n').length === 200 && events(m, 'raw').length === 50,
        'every broadcast on every gateway',
      );
    const numbers = (m: Member, event: string) =>
      events(m, event).map((p) => (p as { i: number }).i);
    for (const m of members) {
      expect(numbers(m, 'n')).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(numbers(m, 'raw')).toEqual(Array.from({ length: 50 }, (_, i) => i));
    }
    // The publisher node has no subscriber of room:order: it holds no subscription the server
    // could send these 250 broadcasts to, and received none.
    expect(pubsub.listening('room:order')).toBe(false);
    expect(quietSubscriptionsFor('genapi.topic.room:order')).toEqual([]);
    expect(pubsub.stats().received).toBe(before);
    expect(pubsub.stats().published).toBeGreaterThanOrEqual(200);
  });

  it('a raw NATS publish (no SDK) reaches sockets on every gateway: encoded topics, binary to V2 clients', async () => {
    const topic = 'room:a.b';
    const subject = `genapi.topic.${topicToken(topic)}`;
    expect(subject).toBe('genapi.topic.~cm9vbTphLmI');
    const members = await Promise.all(
      gateways.map((gw, i) => member(gw.socketUrl, `r${i}`, topic)),
    );
    // A JSON-only (V1) client on the last gateway: it gets JSON broadcasts and, as for a local
    // binary broadcast, not the binary one.
    const v1 = await RawClient.connect(gateways[2]!.wsUrl('vsn=1.0.0&user_id=v1'));
    v1.send({ topic, event: 'phx_join', payload: { name: 'v1' }, ref: '1', join_ref: '1' });
    await until(
      () => v1.frames.some((f) => (f as { event?: string }).event === 'phx_reply'),
      'the V1 join reply',
    );
    await converge(members, 'probe', () => raw.publish(subject, json({ event: 'probe' })), 'raw');

    raw.publish(subject, json({ event: 'news', payload: { x: 1 } }));
    const h = natsHeaders();
    h.set(H.broadcastEvent, 'blob');
    raw.publish(subject, new Uint8Array([1, 2, 3, 250]), { headers: h });
    for (const m of members)
      await until(() => events(m, 'blob').length === 1, 'the binary broadcast on every gateway');
    for (const m of members) {
      expect(events(m, 'news')).toEqual([{ x: 1 }]);
      const blob = events(m, 'blob')[0];
      expect(blob).toBeInstanceOf(ArrayBuffer);
      expect([...new Uint8Array(blob as ArrayBuffer)]).toEqual([1, 2, 3, 250]);
    }
    raw.publish(subject, json({ event: 'last', payload: {} }));
    const v1Events = () => v1.frames.map((f) => (f as { event?: string }).event);
    await until(() => v1Events().includes('last'), 'the V1 client gets the JSON broadcasts');
    expect(v1Events().filter((e) => ['news', 'blob', 'last'].includes(e!))).toEqual([
      'news',
      'last',
    ]);
    v1.close();
  });

  it('workers push: running.broadcast, createPublisher, and announce (ctx.broadcast in the demo worker)', async () => {
    const [a, b, c] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    const alice = await member(a.socketUrl, 'alice', 'room:town');
    const bob = await member(b.socketUrl, 'bob', 'room:town');
    const carol = await member(c.socketUrl, 'carol', 'room:town');
    const all = [alice, bob, carol];
    const publisher = createPublisher(raw);
    await converge(all, 'probe', () => publisher.broadcast('room:town', 'probe'), 'publisher');
    // The demo worker is on gateway A's server: a shout from A shows that server knows every member.
    await converge(all, 'shout', () => alice.channel.push('shout', { body: 'probe' }), 'server 0');

    const running: RunningService = await serve(
      defineService({
        name: 'pushtest',
        version: '1.0.0',
        functions: { nop: fn({ handler: () => null }) },
      }),
      { nats: raw, pushOnStart: false },
    );
    try {
      running.broadcast('room:town', 'tick', { n: 1 });
      publisher.broadcast('room:town', 'tock', { n: 2 });
      const answer = await genApiCall(alice.socket, 'announce', { room: 'town', message: 'hi' });
      expect(answer).toMatchObject({ success: true, error: null });
      for (const m of all)
        await until(
          () => events(m, 'announcement').length === 1 && events(m, 'tock').length === 1,
          'every push on every gateway',
        );
      for (const m of all) {
        expect(events(m, 'tick')).toEqual([{ n: 1 }]);
        expect(events(m, 'tock')).toEqual([{ n: 2 }]);
        expect(events(m, 'announcement')).toEqual([{ message: 'hi', from: 'alice' }]);
      }
    } finally {
      await running.stop();
    }
  });

  it('disconnect closes the sockets with that id on every gateway with 1001 (worker SDK and gateway.disconnect)', async () => {
    const urls = [...gateways.map((gw) => gw.socketUrl), endpoint(quietPort)];
    const dave = await Promise.all(urls.map((url) => connectSocket(url, 'dave')));
    const erin = await Promise.all(urls.map((url) => connectSocket(url, 'erin')));
    createPublisher(raw).disconnect('user:dave');
    for (const s of dave) await until(() => s.closes.length > 0, "dave's sockets close");
    for (const s of dave) expect(s.closes).toEqual([1001]);
    for (const s of erin) expect(s.socket.isConnected()).toBe(true);

    expect(quiet.disconnect('user:erin')).toBe(1);
    for (const s of erin) await until(() => s.closes.length > 0, "erin's sockets close");
    for (const s of erin) expect(s.closes).toEqual([1001]);
  });

  it('malformed and oversized broadcasts are dropped and counted; every gateway keeps serving', async () => {
    const members = await Promise.all(
      gateways.map((gw, i) => member(gw.socketUrl, `j${i}`, 'room:junk')),
    );
    const local = await member(endpoint(quietPort), 'jq', 'room:junk');
    const all = [...members, local];
    const subject = 'genapi.topic.room:junk';
    await converge(all, 'probe', () => raw.publish(subject, json({ event: 'probe' })), 'raw');
    const before = quietPubSub().stats();

    for (const body of ['not json', '[1]', '{"payload":{}}', '{"event":""}', '{"event":7}'])
      raw.publish(subject, body);
    // Over the in-process gateway's 4096-byte limit, within the processes' default 1 MiB.
    raw.publish(subject, json({ event: 'big', payload: 'x'.repeat(5000) }));
    // Parses, but nests too deep to encode for clients: every gateway drops the frame and lives.
    const depth = 200_000;
    raw.publish(subject, `{"event":"deep","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    raw.publish(subject, json({ event: 'after', payload: {} }));
    for (const m of all) await until(() => events(m, 'after').length === 1, 'the valid broadcast');
    for (const m of members) expect(m.got.map((r) => r.event)).toEqual(['big', 'after']);
    expect(local.got.map((r) => r.event)).toEqual(['after']);

    const after = quietPubSub().stats();
    expect(after.droppedMalformed - before.droppedMalformed).toBe(5);
    expect(after.droppedTooLarge - before.droppedTooLarge).toBe(2);
    for (const gw of gateways) {
      const line = await gw.process.logLine('broadcast from NATS dropped');
      expect(line).toMatchObject({ subject, level: 40 });
    }
    // Still serving: a shout from each gateway reaches the others.
    for (const m of members) m.channel.push('shout', { body: 'still here' });
    for (const m of all)
      await until(() => events(m, 'shout').length === 3, 'shouts after the junk');
  });

  it('a node subscribes while it has local subscribers and unsubscribes with the last one', async () => {
    const topic = 'room:come-go';
    const subject = `genapi.topic.${topic}`;
    const pubsub = quietPubSub();
    expect(pubsub.listening(topic)).toBe(false);
    const far = await member(gateways[0]!.socketUrl, 'far', topic);
    const near = await member(endpoint(quietPort), 'near', topic);
    expect(pubsub.listening(topic)).toBe(true);
    expect(quietSubscriptionsFor(subject)).toEqual([subject]);
    await converge(
      [far, near],
      'probe',
      () => raw.publish(subject, json({ event: 'probe' })),
      'raw',
    );

    expect((await replyOf(near.channel.leave())).status).toBe('ok');
    await until(() => !pubsub.listening(topic), 'the in-process gateway drops its subscription');
    expect(quietSubscriptionsFor(subject)).toEqual([]);
    await quietConnection().flush(); // the server has our UNSUB
    const before = pubsub.stats().received;
    for (let i = 0; i < 20; i++) raw.publish(subject, json({ event: 'later', payload: { i } }));
    await until(() => events(far, 'later').length === 20, 'the remaining subscriber gets them');
    expect(pubsub.stats().received).toBe(before);
    expect(events(near, 'later')).toEqual([]);
  });
});

describe('announce in-process (npm start: --demo without NATS)', () => {
  let running: RunningGateway;

  beforeAll(async () => {
    running = await startGateway({
      config: {},
      fromFile: false,
      demo: true,
      logger: pino({ level: 'silent' }),
      port: 0,
      host: '127.0.0.1',
    });
  });

  afterAll(async () => {
    await running?.gateway.close();
  });

  it('broadcasts announcement {message, from} to room:<room> and answers success', async () => {
    const url = endpoint(running.address.port);
    const alice = await member(url, 'alice', 'room:lobby');
    const bob = await member(url, 'bob', 'room:lobby');
    const answer = await genApiCall(alice.socket, 'announce', {
      room: 'lobby',
      message: 'welcome',
    });
    expect(answer).toMatchObject({ success: true, error: null });
    for (const m of [alice, bob]) {
      await until(() => events(m, 'announcement').length === 1, 'the announcement');
      expect(events(m, 'announcement')).toEqual([{ message: 'welcome', from: 'alice' }]);
    }
  });
});

import type { NatsConnection } from '@nats-io/nats-core';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import type { Logger } from '../../src/log/logger.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broadcast, Subscriber } from '../../src/channel/pubsub.js';
import { ClusterDisconnects } from '../../src/cluster/disconnect.js';
import type { ClusterLink } from '../../src/cluster/link.js';
import { ClusterPubSub, type ClusterPubSubOptions } from '../../src/cluster/pubsub.js';
import { OutOfRangeError } from '../../src/errors.js';
import { H } from '../../src/nats/headers.js';
import { Subjects } from '../../src/nats/subjects.js';
import { NatsServer } from '../support/nats.js';
import { until } from '../support/wait.js';

/** A local subscriber that keeps what it gets. */
class Inbox implements Subscriber {
  readonly got: Broadcast[] = [];
  deliver(broadcast: Broadcast): void {
    this.got.push(broadcast);
  }
  events(): string[] {
    return this.got.map((b) => b.event);
  }
}

/** A node: a ClusterPubSub on its own noEcho connection, as Cluster.connect builds it. */
interface Node {
  pubsub: ClusterPubSub;
  nc: NatsConnection;
  logger: Logger;
  /** The warnings it logged (JSON lines). */
  warnings: Record<string, unknown>[];
}

describe('ClusterPubSub on a real nats-server', () => {
  let server: NatsServer;
  let raw: NatsConnection;
  const nodes: Node[] = [];

  async function node(options: ClusterPubSubOptions = {}, start = true): Promise<Node> {
    const nc = await connect({ servers: server.url, noEcho: true });
    const warnings: Record<string, unknown>[] = [];
    const logger: Logger = pino(
      { level: 'warn' },
      { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const pubsub = new ClusterPubSub({ warningIntervalMs: 3_600_000, ...options });
    const n: Node = { pubsub, nc, logger, warnings };
    nodes.push(n);
    if (start) startNode(n);
    return n;
  }

  function startNode(n: Node): void {
    n.pubsub.start({
      nc: n.nc,
      subjects: new Subjects(),
      nodeId: `n${nodes.indexOf(n)}`,
      logger: n.logger,
      connected: () => true,
    });
  }

  beforeAll(async () => {
    server = await NatsServer.start();
    raw = await connect({ servers: server.url });
  });

  afterEach(async () => {
    for (const n of nodes.splice(0)) {
      n.pubsub.stop();
      await n.nc.close();
    }
  });

  afterAll(async () => {
    await raw?.close();
    await server?.dispose();
  });

  it('a node without subscribers of a topic receives nothing for it; it stops listening with its last subscriber', async () => {
    const [a, b, c] = [await node(), await node(), await node()];
    const inboxA = new Inbox();
    a.pubsub.subscribe('room:x', inboxA);
    await a.nc.flush();
    expect(a.pubsub.listening('room:x')).toBe(true);
    expect(b.pubsub.listening('room:x')).toBe(false);

    for (let i = 0; i < 100; i++) c.pubsub.broadcast('room:x', `e${i}`, { i });
    await until(() => inboxA.got.length === 100, 'a gets 100 broadcasts');
    // b is connected and idle: the server sent it nothing at all.
    expect(b.nc.stats().inMsgs).toBe(0);
    expect(b.pubsub.stats()).toMatchObject({ received: 0, topics: 0 });
    expect(c.pubsub.stats()).toMatchObject({ published: 100, received: 0 });

    // Interest on b: it gets the next one; without it again: nothing more reaches it.
    const inboxB = new Inbox();
    b.pubsub.subscribe('room:x', inboxB);
    await b.nc.flush();
    c.pubsub.broadcast('room:x', 'now-b-too', {});
    await until(() => inboxB.got.length === 1, 'b gets the broadcast once subscribed');
    b.pubsub.unsubscribe('room:x', inboxB);
    expect(b.pubsub.listening('room:x')).toBe(false);
    expect(b.pubsub.stats().topics).toBe(0);
    await b.nc.flush();
    const before = b.nc.stats().inMsgs;
    for (let i = 0; i < 10; i++) c.pubsub.broadcast('room:x', 'after', {});
    await until(() => inboxA.got.length === 111, 'a gets the last 10');
    await b.nc.flush();
    expect(b.nc.stats().inMsgs).toBe(before);
  });

  it('one Broadcast per node for all its subscribers (encoded once per serializer), in publish order', async () => {
    const [a, b, c] = [await node(), await node(), await node()];
    const a1 = new Inbox();
    const a2 = new Inbox();
    const b1 = new Inbox();
    a.pubsub.subscribe('room:order', a1);
    a.pubsub.subscribe('room:order', a2);
    b.pubsub.subscribe('room:order', b1);
    await Promise.all([a.nc.flush(), b.nc.flush()]);
    for (let i = 0; i < 200; i++) c.pubsub.broadcast('room:order', 'n', { i });
    await until(() => a1.got.length === 200 && b1.got.length === 200, '200 broadcasts on a and b');
    const order = (inbox: Inbox) => inbox.got.map((m) => (m.payload as { i: number }).i);
    const expected = Array.from({ length: 200 }, (_, i) => i);
    expect(order(a1)).toEqual(expected);
    expect(order(b1)).toEqual(expected);
    for (let i = 0; i < 200; i++) expect(a1.got[i]).toBe(a2.got[i]);
    expect(a.pubsub.stats().delivered).toBe(200);
  });

  it('local subscribers get broadcasts at once, exactly as the local PubSub (broadcastFrom included)', async () => {
    const a = await node();
    const me = new Inbox();
    const other = new Inbox();
    a.pubsub.subscribe('room:local', me);
    a.pubsub.subscribe('room:local', other);
    a.pubsub.broadcast('room:local', 'hello', { x: 1 }, me);
    expect(me.got).toHaveLength(0);
    expect(other.events()).toEqual(['hello']);
    a.pubsub.broadcastLocal('room:local', 'diff', {});
    expect(other.events()).toEqual(['hello', 'diff']);
    expect(a.pubsub.stats().published).toBe(1);
  });

  it('subscribers that existed before the link are subscribed on start', async () => {
    const a = await node({}, false);
    const c = await node();
    const inbox = new Inbox();
    a.pubsub.subscribe('room:early', inbox);
    expect(a.pubsub.listening('room:early')).toBe(false);
    startNode(a);
    expect(a.pubsub.listening('room:early')).toBe(true);
    await a.nc.flush();
    c.pubsub.broadcast('room:early', 'hi', {});
    await until(() => inbox.got.length === 1, 'the early subscriber gets it');
  });

  it('binary payloads arrive as bytes with their event (V2 clients get a binary frame)', async () => {
    const [a, c] = [await node(), await node()];
    const inbox = new Inbox();
    a.pubsub.subscribe('room:bin', inbox);
    await a.nc.flush();
    c.pubsub.broadcast('room:bin', 'blob', new Uint8Array([9, 8, 7]));
    await until(() => inbox.got.length === 1, 'binary broadcast');
    expect(inbox.got[0]!.event).toBe('blob');
    expect(inbox.got[0]!.payload).toBeInstanceOf(Uint8Array);
    expect([...(inbox.got[0]!.payload as Uint8Array)]).toEqual([9, 8, 7]);
  });

  it('drops and counts malformed and oversized messages from NATS with one warning, and keeps serving', async () => {
    const a = await node({ maxBroadcastBytes: 1000 });
    const inbox = new Inbox();
    a.pubsub.subscribe('room:bad', inbox);
    await a.nc.flush();
    const subject = 'genapi.topic.room:bad';
    const bad = [
      'not json',
      '[1,2]',
      '"event"',
      'null',
      '{"payload": 1}',
      '{"event": ""}',
      '{"event": 5, "payload": {}}',
      '\u00ff\u00fe',
    ];
    for (const body of bad) raw.publish(subject, body);
    raw.publish(subject, JSON.stringify({ event: 'big', payload: 'x'.repeat(2000) }));
    const h = natsHeaders();
    h.set(H.broadcastEvent, '');
    raw.publish(subject, 'binary without an event', { headers: h });
    raw.publish(subject, JSON.stringify({ event: 'fine' }));
    await until(() => inbox.got.length === 1, 'the valid broadcast after the bad ones');
    expect(inbox.got[0]!.event).toBe('fine');
    expect(inbox.got[0]!.payload).toEqual({});
    expect(a.pubsub.stats()).toMatchObject({
      received: 11,
      delivered: 1,
      dropped: 10,
      droppedMalformed: 9,
      droppedTooLarge: 1,
    });
    const drops = a.warnings.filter((w) => w.msg === 'broadcast from NATS dropped');
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ subject, why: expect.any(String) as unknown });
  });

  it('keeps topics whose token is over maxTopicBytes local, counted, with a warning', async () => {
    const [a, c] = [await node({ maxTopicBytes: 16 }), await node({ maxTopicBytes: 16 })];
    const long = 'room:' + 'y'.repeat(40);
    const inbox = new Inbox();
    a.pubsub.subscribe(long, inbox);
    expect(a.pubsub.listening(long)).toBe(false);
    a.pubsub.broadcast(long, 'local', {});
    c.pubsub.broadcast(long, 'remote', {});
    c.pubsub.broadcast('room:\ud800', 'lone surrogate', {});
    expect(inbox.events()).toEqual(['local']);
    expect(a.pubsub.stats()).toMatchObject({ localOnly: 1, published: 0 });
    expect(c.pubsub.stats()).toMatchObject({ localOnly: 2, published: 0 });
    expect(a.warnings.some((w) => String(w.msg).includes('maxTopicBytes'))).toBe(true);
  });

  it('a broadcast other nodes would drop, or cannot serialise, reaches local subscribers only', async () => {
    const [a, b] = [await node({ maxBroadcastBytes: 100 }), await node()];
    const local = new Inbox();
    const remote = new Inbox();
    a.pubsub.subscribe('room:big', local);
    b.pubsub.subscribe('room:big', remote);
    await b.nc.flush();
    a.pubsub.broadcast('room:big', 'big', { s: 'z'.repeat(200) });
    a.pubsub.broadcast('room:big', 'bigint', { n: 1n });
    a.pubsub.broadcast('room:big', 'small', {});
    await until(() => remote.got.length === 1, 'the small one reaches b');
    expect(remote.events()).toEqual(['small']);
    expect(local.events()).toEqual(['big', 'bigint', 'small']);
    expect(a.pubsub.stats()).toMatchObject({ published: 1, publishFailed: 2 });
    expect(a.warnings.filter((w) => String(w.msg).includes('not published'))).toHaveLength(1);
  });

  it('stop() leaves NATS: nothing more is received', async () => {
    const [a, c] = [await node(), await node()];
    a.pubsub.subscribe('room:stop', new Inbox());
    expect(a.pubsub.stats().topics).toBe(1);
    a.pubsub.stop();
    expect(a.pubsub.stats().topics).toBe(0);
    await a.nc.flush();
    c.pubsub.broadcast('room:stop', 'late', {});
    await c.nc.flush();
    await a.nc.flush();
    expect(a.nc.stats().inMsgs).toBe(0);
  });

  it('rejects bad limits', () => {
    expect(() => new ClusterPubSub({ maxBroadcastBytes: 0 })).toThrow(OutOfRangeError);
    expect(() => new ClusterPubSub({ maxTopicBytes: 1.5 })).toThrow(OutOfRangeError);
    expect(() => new ClusterPubSub({ warningIntervalMs: -1 })).toThrow(OutOfRangeError);
  });

  it('cluster disconnects: closes local sockets on {"id"}, drops and counts anything else', async () => {
    const closed: string[] = [];
    const nc = await connect({ servers: server.url, noEcho: true });
    const logger: Logger = pino({ level: 'silent' });
    const link: ClusterLink = {
      nc,
      subjects: new Subjects(),
      nodeId: 'd',
      logger,
      connected: () => true,
    };
    const disconnects = new ClusterDisconnects((id) => {
      closed.push(id);
      return 2;
    });
    disconnects.start(link);
    await nc.flush();
    for (const body of [
      'nope',
      '{"id": ""}',
      '{"id": 5}',
      JSON.stringify({ id: 'x'.repeat(5000) }),
    ])
      raw.publish('genapi.socket.disconnect', body);
    raw.publish('genapi.socket.disconnect', JSON.stringify({ id: 'user:1' }));
    await until(() => closed.length === 1, 'the valid disconnect');
    expect(closed).toEqual(['user:1']);
    expect(disconnects.stats()).toMatchObject({ received: 1, closed: 2, dropped: 4 });
    disconnects.stop();
    await nc.close();
  });
});

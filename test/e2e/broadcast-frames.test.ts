/**
 * Fan-out encodes each broadcast once per serializer and hands the same bytes to every
 * subscriber. What a change to that path must keep: every client gets the frame of its own
 * protocol version, binary payloads stay binary for V2 (and are dropped for V1), a channel that
 * intercepts the event still runs handleOut for its own socket only, a client that negotiated
 * compression still gets a valid (compressed) frame, and frame lengths past the 7-bit and 16-bit
 * length fields are framed right.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, defineChannel, ok, type Gateway } from '../../src/index.js';
import { RawClient } from '../support/ws-client.js';

/** `fan:*`: `pub` broadcasts `{event, payload}`; `bin` broadcasts bytes as `bytes`. */
const fanChannel = defineChannel({
  join: () => ok(),
  handleIn(event, payload, channel) {
    if (event === 'bin') channel.broadcast('bytes', Uint8Array.of(7, 8, 9));
    else {
      const { event: name, payload: body } = payload as { event: string; payload: unknown };
      channel.broadcast(name, body);
    }
    return ok();
  },
});

/** `tag:*`: the same topic space, but `tagged` goes through handleOut (adds this socket's id). */
const taggingChannel = defineChannel<{ who: string }>({
  intercept: ['tagged'],
  join: () => ok(),
  handleOut(event, payload, channel) {
    channel.push(event, { ...(payload as object), seen_by: channel.assigns.who });
  },
});

let gateway: Gateway;
let base: string;

beforeAll(async () => {
  gateway = createGateway({ logger: false });
  for (const [path, compress] of [
    ['/socket', false],
    ['/zipped', true],
  ] as const) {
    gateway
      .socket<{ who: string }>(path, {
        checkOrigin: false,
        // Room for a client frame carrying a broadcast over 65 535 bytes.
        maxFrameSize: 1_048_576,
        websocket: { compress },
        connect: ({ params }) => ({
          assigns: { who: typeof params.who === 'string' ? params.who : '' },
          id: null,
        }),
      })
      .channel('fan:*', fanChannel)
      .channel('tag:*', taggingChannel);
  }
  const address = await gateway.listen(0, '127.0.0.1');
  base = `ws://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await gateway.close();
});

async function v2(who: string, path = '/socket'): Promise<RawClient> {
  return RawClient.connect(`${base}${path}/websocket?vsn=2.0.0&who=${who}`);
}

async function v1(who: string): Promise<RawClient> {
  return RawClient.connect(`${base}/socket/websocket?vsn=1.0.0&who=${who}`);
}

async function joinV1(client: RawClient, topic: string): Promise<void> {
  client.send({ topic, event: 'phx_join', payload: {}, ref: '1', join_ref: '1' });
  const reply = (await client.next()) as { payload: { status: string } };
  expect(reply.payload.status).toBe('ok');
}

describe('one frame per broadcast, shared by its subscribers', () => {
  it('V1 and V2 subscribers of one topic each get their own frame, in order, at every length', async () => {
    const publisher = await v2('pub');
    const a = await v2('a');
    const b = await v2('b');
    const old = await v1('old');
    for (const client of [publisher, a, b]) await client.join('fan:mixed', '1');
    await joinV1(old, 'fan:mixed');

    // 1 byte, past the 7-bit length (126+), past the 16-bit length (65 536+).
    const sizes = [1, 200, 70_000];
    for (const [i, size] of sizes.entries()) {
      const body = { n: i, text: 'é'.repeat(size) };
      const ref = String(10 + i);
      publisher.send(['1', ref, 'fan:mixed', 'pub', { event: 'msg', payload: body }]);
      // The publisher is subscribed too: its copy of the broadcast comes before the reply.
      expect(await publisher.take(2)).toEqual([
        [null, null, 'fan:mixed', 'msg', body],
        ['1', ref, 'fan:mixed', 'phx_reply', { status: 'ok', response: {} }],
      ]);
    }
    for (const client of [a, b]) {
      const frames = await client.take(sizes.length);
      expect(frames).toEqual(
        sizes.map((size, i) => [null, null, 'fan:mixed', 'msg', { n: i, text: 'é'.repeat(size) }]),
      );
    }
    const v1Frames = await old.take(sizes.length);
    expect(v1Frames).toEqual(
      sizes.map((size, i) => ({
        topic: 'fan:mixed',
        event: 'msg',
        payload: { n: i, text: 'é'.repeat(size) },
        ref: null,
      })),
    );
    for (const client of [publisher, a, b, old]) client.close();
  });

  it('a binary broadcast is a binary frame for V2 and is dropped for V1, next to text ones', async () => {
    const publisher = await v2('pub');
    const a = await v2('a');
    const old = await v1('old');
    await publisher.join('fan:bin', '1');
    await a.join('fan:bin', '1');
    await joinV1(old, 'fan:bin');
    const dropped = gateway.stats.droppedFrames;

    publisher.send(['1', '2', 'fan:bin', 'bin', {}]);
    publisher.send(['1', '3', 'fan:bin', 'pub', { event: 'after', payload: { ok: true } }]);

    const binary = await a.next();
    expect(Buffer.isBuffer(binary)).toBe(true);
    // Kind 2 (broadcast), topic and event sizes, then topic, event and the payload bytes.
    expect([...(binary as Buffer)]).toEqual([
      2,
      7,
      5,
      ...Buffer.from('fan:bin'),
      ...Buffer.from('bytes'),
      7,
      8,
      9,
    ]);
    expect(await a.next()).toEqual([null, null, 'fan:bin', 'after', { ok: true }]);
    // V1 cannot carry it: the text broadcast behind it is the first thing the V1 client gets.
    expect(await old.next()).toEqual({
      topic: 'fan:bin',
      event: 'after',
      payload: { ok: true },
      ref: null,
    });
    expect(gateway.stats.droppedFrames).toBe(dropped + 1);
    for (const client of [publisher, a, old]) client.close();
  });

  it('handleOut still runs per subscriber for an intercepted event; the others get the shared frame', async () => {
    const publisher = await v2('pub');
    const plain = await v2('plain');
    const tagged1 = await v2('t1');
    const tagged2 = await v2('t2');
    await publisher.join('fan:room', '1');
    await plain.join('fan:room', '1');
    await tagged1.join('tag:room', '1');
    await tagged2.join('tag:room', '1');

    // tag:* has no handleIn: its broadcasts come from the gateway's PubSub.
    gateway.pubsub.broadcast('tag:room', 'tagged', { hello: 'world' });
    gateway.pubsub.broadcast('tag:room', 'plain', { hello: 'all' });
    publisher.send(['1', '2', 'fan:room', 'pub', { event: 'tagged', payload: { hello: 'fan' } }]);

    expect(await tagged1.take(2)).toEqual([
      ['1', null, 'tag:room', 'tagged', { hello: 'world', seen_by: 't1' }],
      [null, null, 'tag:room', 'plain', { hello: 'all' }],
    ]);
    expect(await tagged2.take(2)).toEqual([
      ['1', null, 'tag:room', 'tagged', { hello: 'world', seen_by: 't2' }],
      [null, null, 'tag:room', 'plain', { hello: 'all' }],
    ]);
    // fan:* does not intercept `tagged`: the shared frame, untouched.
    expect(await plain.next()).toEqual([null, null, 'fan:room', 'tagged', { hello: 'fan' }]);
    for (const client of [publisher, plain, tagged1, tagged2]) client.close();
  });

  it('a client that negotiated compression gets the same broadcast as one that did not', async () => {
    const publisher = await v2('pub');
    const plain = await v2('plain');
    const zipped = await v2('zipped', '/zipped');
    expect(zipped.ws.extensions).toContain('permessage-deflate');
    await publisher.join('fan:zip', '1');
    await plain.join('fan:zip', '1');
    await zipped.join('fan:zip', '1');
    const body = { text: 'z'.repeat(5_000) };
    publisher.send(['1', '2', 'fan:zip', 'pub', { event: 'msg', payload: body }]);
    publisher.send(['1', '3', 'fan:zip', 'pub', { event: 'msg', payload: { n: 2 } }]);
    // The publisher is not on /zipped: the broadcast crosses mounts through the gateway's PubSub.
    for (const client of [plain, zipped]) {
      expect(await client.take(2)).toEqual([
        [null, null, 'fan:zip', 'msg', body],
        [null, null, 'fan:zip', 'msg', { n: 2 }],
      ]);
    }
    for (const client of [publisher, plain, zipped]) client.close();
  });
});

/**
 * protocol/relay.md's schemas and vectors stay true: the vectors conform to the schemas, the
 * gateway parses exactly the requests the schema accepts (spot checks), subjects are built as
 * documented, and what the owner broadcasts and answers conforms.
 */
import { describe, expect, it } from 'vitest';
import { LocalPubSub } from '../../src/channel/pubsub.js';
import type { Channel } from '../../src/channel/types.js';
import { Subjects } from '../../src/nats/subjects.js';
import { topicToken } from '../../src/nats/topic-token.js';
import { claimBefore } from '../../src/genapi/relay/cluster.js';
import { RelayGroups } from '../../src/genapi/relay/groups.js';
import { parseReply, parseRequest } from '../../src/genapi/relay/wire.js';
import { ServiceError } from '../../src/worker/define.js';
import { OptionError } from '../../src/config/errors.js';
import { conforms, loadProtocol } from '../support/protocol.js';

interface Vectors {
  subjects: { prefix: string; service: string; group_id: string; subject: string }[];
  requests: Record<string, unknown>;
  invalid_requests: { why: string; request: unknown }[];
  replies: Record<string, unknown>;
  deliveries: Record<string, unknown>;
}
const vectors = loadProtocol('vectors/relay.json') as Vectors;
const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/** A channel stand-in that records its pushes (the relay only pushes and watches the signal). */
function fakeChannel(): { channel: Channel; pushes: unknown[]; end(): void } {
  const controller = new AbortController();
  const pushes: unknown[] = [];
  const channel = {
    push: (_event: string, payload: unknown) => pushes.push(payload),
    signal: controller.signal,
  } as unknown as Channel;
  return { channel, pushes, end: () => controller.abort() };
}

describe('protocol/relay.md vectors', () => {
  it('requests, replies and deliveries conform to their schemas', () => {
    for (const [name, request] of Object.entries(vectors.requests))
      expect(conforms('relay-request.schema.json', request), name).toBe('valid');
    for (const [name, reply] of Object.entries(vectors.replies))
      expect(conforms('relay-reply.schema.json', reply), name).toBe('valid');
    for (const [name, delivery] of Object.entries(vectors.deliveries))
      expect(conforms('relay-delivery.schema.json', delivery), name).toBe('valid');
  });

  it('the gateway accepts the valid requests as they are and refuses what the schema refuses', () => {
    for (const [name, request] of Object.entries(vectors.requests)) {
      const parsed = parseRequest(request);
      expect(typeof parsed, name).toBe('object');
      expect(parsed, name).toMatchObject(request as object);
    }
    for (const { why, request } of vectors.invalid_requests) {
      expect(conforms('relay-request.schema.json', request), why).not.toBe('valid');
      expect(typeof parseRequest(request), why).toBe('string');
    }
    for (const bad of [null, 1, 'join', [], { op: 'join' }])
      expect(typeof parseRequest(bad)).toBe('string');
  });

  it('replies parse; anything else is not a reply', () => {
    for (const [name, reply] of Object.entries(vectors.replies))
      expect(parseReply(bytes(reply)), name).toEqual(reply);
    for (const bad of [
      'not json',
      { ok: false, error: 'x', code: 200 },
      { ok: false, error: 'x', code: 4.5 },
      { ok: false, code: 409 },
      { ok: 'yes' },
      null,
    ]) {
      const data = typeof bad === 'string' ? new TextEncoder().encode(bad) : bytes(bad);
      expect(parseReply(data), JSON.stringify(bad)).toBeNull();
    }
  });

  it('group subjects are <p>.relay.group.<token(service:group_id)>', () => {
    for (const { prefix, service, group_id, subject } of vectors.subjects)
      expect(new Subjects(prefix).relayGroup(topicToken(`${service}:${group_id}`))).toBe(subject);
  });

  it('claims: the lower time wins, then the lower node id', () => {
    expect(claimBefore({ at: 1, node: 'b' }, { at: 2, node: 'a' })).toBe(true);
    expect(claimBefore({ at: 2, node: 'a' }, { at: 1, node: 'b' })).toBe(false);
    expect(claimBefore({ at: 5, node: 'a' }, { at: 5, node: 'b' })).toBe(true);
    expect(claimBefore({ at: 5, node: 'b' }, { at: 5, node: 'a' })).toBe(false);
  });
});

describe('relay owner (in-process, no NATS)', () => {
  it('broadcasts deliveries that conform, on an unguessable topic, to the recipients only', async () => {
    const pubsub = new LocalPubSub();
    const relay = new RelayGroups('phoenix_gen_api', pubsub, 'node-1');
    const alice = fakeChannel();
    const bob = fakeChannel();
    const carol = fakeChannel();
    await relay.create('room_1', 'private', 'alice', alice.channel);
    await relay.join('room_1', 'bob', bob.channel);
    await relay.join('room_1', 'carol', carol.channel);
    await relay.accept('room_1', 'alice', 'bob');
    // Listen on the group's topic like another gateway would.
    const topics: string[] = [];
    const seen: { event: string; payload: unknown }[] = [];
    expect(pubsub.topicCount()).toBe(1); // one internal subscription for the group
    const original = pubsub.broadcast.bind(pubsub);
    pubsub.broadcast = (topic, event, payload, from) => {
      topics.push(topic);
      seen.push({ event, payload: JSON.parse(JSON.stringify(payload)) as unknown });
      original(topic, event, payload, from);
    };
    expect(relay.relay('room_1', 'bob', 'req_7', 'Hello everyone!')).toEqual({
      status: 'relayed',
      recipients_count: 2,
    });
    await relay.leave('room_1', 'bob');
    await relay.delete('room_1', 'alice');
    expect(seen.map((d) => d.event)).toEqual(['relay', 'left', 'gone']);
    for (const delivery of seen)
      expect(conforms('relay-delivery.schema.json', delivery)).toBe('valid');
    expect(seen[0]!.payload).toMatchObject({ to: ['alice', 'bob'] });
    expect(topics[0]).toMatch(/^phx_relay:relay:room_1:[A-Za-z0-9_-]{22}$/);
    expect(alice.pushes).toHaveLength(1);
    expect(bob.pushes).toHaveLength(1);
    expect(carol.pushes).toHaveLength(0); // pending
    expect(pubsub.topicCount()).toBe(0); // gone: nobody listens any more
  });

  it('a delivery that is not one is dropped and counted', async () => {
    const pubsub = new LocalPubSub();
    const relay = new RelayGroups('phoenix_gen_api', pubsub, 'node-1');
    const alice = fakeChannel();
    await relay.create('g', 'public', 'alice', alice.channel);
    let topic = '';
    const original = pubsub.broadcast.bind(pubsub);
    pubsub.broadcast = (t, event, payload, from) => {
      topic = t;
      original(t, event, payload, from);
    };
    await relay.relay('g', 'alice', 'r1', 'hi');
    expect(alice.pushes).toHaveLength(1);
    for (const [event, payload] of [
      ['relay', { to: 'alice', push: {} }],
      ['relay', { to: ['alice'], push: 'x' }],
      ['relay', null],
      ['left', { user_id: 7 }],
      ['whatever', {}],
    ] as const)
      pubsub.broadcastLocal(topic, event, payload);
    expect(relay.stats().deliveriesDropped).toBe(5);
    expect(alice.pushes).toHaveLength(1);
  });

  it('a member whose last joined channel ends leaves; the creator stays', async () => {
    const relay = new RelayGroups('phoenix_gen_api', new LocalPubSub(), 'node-1');
    const alice = fakeChannel();
    const bob1 = fakeChannel();
    await relay.create('g', 'public', 'alice', alice.channel);
    await relay.join('g', 'bob', bob1.channel);
    bob1.end();
    alice.end();
    expect(relay.info('g', 'alice')).toMatchObject({ members: [{ user_id: 'alice' }] });
  });

  it('limits answer their errors; bad options are refused with their names', async () => {
    const relay = new RelayGroups('e', new LocalPubSub(), 'n', {
      maxGroups: 1,
      maxMembers: 2,
      maxGroupIdBytes: 4,
    });
    const error = (run: () => unknown): unknown => {
      try {
        run();
      } catch (err) {
        return err instanceof ServiceError ? [err.message, err.status] : err;
      }
      return 'no error';
    };
    expect(error(() => relay.create('toolong', 'public', 'a', null))).toEqual([
      'Group id is too long',
      422,
    ]);
    await relay.create('g1', 'public', 'a', null);
    expect(error(() => relay.create('g2', 'public', 'a', null))).toEqual([
      'Too many relay groups on this gateway',
      429,
    ]);
    await relay.join('g1', 'b', null);
    expect(error(() => relay.join('g1', 'c', null))).toEqual(['Group is full', 409]);
    for (const bad of [{ maxMembers: 0 }, { requestTimeoutMs: 1.5 }, { service: 'a.b' }])
      expect(() => new RelayGroups('e', new LocalPubSub(), 'n', bad)).toThrow(OptionError);
    expect(() => new RelayGroups('e', new LocalPubSub(), 'n', { maxMembers: 0 })).toThrow(
      /relay\.maxMembers/,
    );
  });
});

describe('relay owner state: gone nodes', () => {
  it('members whose channels were on a gone node leave; the creator and others stay', async () => {
    const relay = new RelayGroups('e', new LocalPubSub(), 'owner-node');
    const state = (
      relay as unknown as {
        state: {
          join(g: string, u: string, n: string | null): unknown;
          remoteNodes(self: string): string[];
          nodeGone(n: string): number;
        };
      }
    ).state;
    await relay.create('g', 'public', 'alice', null);
    state.join('g', 'bob', 'node-b');
    state.join('g', 'carol', 'node-c');
    state.join('g', 'dave', null);
    expect(state.remoteNodes('owner-node').sort()).toEqual(['node-b', 'node-c']);
    expect(state.nodeGone('node-b')).toBe(1);
    expect(state.nodeGone('node-b')).toBe(0);
    expect(state.remoteNodes('owner-node')).toEqual(['node-c']);
    expect((await relay.info('g', 'alice')).members.map((m) => m.user_id)).toEqual([
      'alice',
      'carol',
      'dave',
    ]);
    await relay.delete('g', 'alice');
    expect(state.remoteNodes('owner-node')).toEqual([]);
  });
});

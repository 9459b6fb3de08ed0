/**
 * Protocol spec §8 H (cases 72–80): the V1 serializer (vsn 1.0.x or none).
 */
import { describe, expect, it } from 'vitest';
import { conformance } from '../support/conformance.js';

const t = conformance({ query: 'vsn=1.0.0' });

const OK = { status: 'ok', response: {} };
const v1 = (
  topic: string,
  event: string,
  payload: unknown,
  ref: string | null,
  extra: object = {},
) => ({ topic, event, payload, ref, ...extra });

describe('§H V1', () => {
  it('72: a join reply has exactly topic, event, payload and ref', async () => {
    const reply = await t.client.request(v1('room:v1', 'phx_join', { a: 1 }, '1'));
    expect(reply).toEqual(v1('room:v1', 'phx_reply', OK, '1'));
    expect(Object.keys(reply).sort()).toEqual(['event', 'payload', 'ref', 'topic']);
  });

  it('73: heartbeat', async () => {
    expect(await t.client.request(v1('phoenix', 'heartbeat', {}, '3'))).toEqual(
      v1('phoenix', 'phx_reply', OK, '3'),
    );
  });

  it('74: a push has ref null', async () => {
    await t.client.request(v1('room:v1', 'phx_join', {}, '1'));
    expect(await t.client.request(v1('room:v1', 'push', { p: 1 }, '4'))).toEqual(
      v1('room:v1', 'pushed', { p: 1 }, null),
    );
  });

  it('75: a broadcast comes before the reply', async () => {
    await t.client.request(v1('room:v1', 'phx_join', {}, '1'));
    t.client.send(v1('room:v1', 'broadcast', { b: 1 }, '5'));
    expect(await t.client.take(2)).toEqual([
      v1('room:v1', 'bcast', { b: 1 }, null),
      v1('room:v1', 'phx_reply', OK, '5'),
    ]);
  });

  it('76: a crash sends phx_error with ref null', async () => {
    await t.client.request(v1('room:v1', 'phx_join', {}, '1'));
    expect(await t.client.request(v1('room:v1', 'boom', {}, '6'))).toEqual(
      v1('room:v1', 'phx_error', { reason: 'channel_crash' }, null),
    );
  });

  it('77: leave replies then closes with ref null', async () => {
    await t.client.request(v1('room:v1b', 'phx_join', {}, '8'));
    t.client.send(v1('room:v1b', 'phx_leave', {}, '9'));
    expect(await t.client.take(2)).toEqual([
      v1('room:v1b', 'phx_reply', OK, '9'),
      v1('room:v1b', 'phx_close', {}, null),
    ]);
  });

  it('78: an unmatched join', async () => {
    expect(await t.client.request(v1('nope', 'phx_join', {}, '7'))).toEqual(
      v1('nope', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }, '7'),
    );
  });

  it('79: after joining without join_ref, a message carrying one is dropped as stale', async () => {
    await t.client.request(v1('room:v1', 'phx_join', {}, '1'));
    t.client.send(v1('room:v1', 'echo', {}, '2', { join_ref: '1' }));
    await t.client.quiet({ v1: true });
  });

  it('79b: a V1 client that joins with a join_ref can use it', async () => {
    await t.client.request(v1('room:v1c', 'phx_join', {}, '1', { join_ref: '1' }));
    expect(
      await t.client.request(v1('room:v1c', 'echo', { y: 1 }, '2', { join_ref: '1' })),
    ).toEqual(v1('room:v1c', 'phx_reply', { status: 'ok', response: { y: 1 } }, '2'));
  });

  it('80: a V1 object missing ref crashes the connection (1011)', async () => {
    t.client.send({ topic: 'room:v1', event: 'phx_join', payload: {} });
    expect((await t.client.closed).code).toBe(1011);
  });

  it('a binary server frame cannot reach a V1 client: dropped, counted, connection kept', async () => {
    const dropped = t.app.gateway.stats.droppedFrames;
    await t.client.request(v1('room:v1', 'phx_join', {}, '1'));
    t.client.send(v1('room:v1', 'bin_reply_only', {}, '2'));
    await t.client.quiet({ v1: true });
    expect(t.app.gateway.stats.droppedFrames).toBe(dropped + 1);
    expect(await t.client.request(v1('phoenix', 'heartbeat', {}, '3'))).toEqual(
      v1('phoenix', 'phx_reply', OK, '3'),
    );
  });
});

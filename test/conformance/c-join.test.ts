/**
 * Protocol spec §8 C (cases 19–31): joins.
 */
import { describe, expect, it } from 'vitest';
import { conformance } from '../support/conformance.js';
import { releaseJoin } from '../support/test-app.js';
import { RawClient } from '../support/ws-client.js';

const t = conformance();

const OK = { status: 'ok', response: {} };
const UNMATCHED = { status: 'error', response: { reason: 'unmatched topic' } };

describe('§C join', () => {
  it('19: a join is answered ok with the join_ref and ref', async () => {
    expect(await t.client.request(['11', '2', 'room:a', 'phx_join', {}])).toEqual([
      '11',
      '2',
      'room:a',
      'phx_reply',
      OK,
    ]);
  });

  it('20: the join reply carries what join returned', async () => {
    expect(await t.client.request(['10', '1', 'room:reply', 'phx_join', { a: 1 }])).toEqual([
      '10',
      '1',
      'room:reply',
      'phx_reply',
      { status: 'ok', response: { joined: 'room:reply', params: { a: 1 } } },
    ]);
  });

  it('21: a refused join replies error and keeps no channel', async () => {
    expect(await t.client.request(['12', '3', 'room:deny', 'phx_join', {}])).toEqual([
      '12',
      '3',
      'room:deny',
      'phx_reply',
      { status: 'error', response: { reason: 'unauthorized' } },
    ]);
    expect(await t.client.request(['12', 'x', 'room:deny', 'echo', {}])).toEqual([
      null,
      'x',
      'room:deny',
      'phx_reply',
      UNMATCHED,
    ]);
  });

  it('22: a join that throws replies "join crashed"', async () => {
    expect(await t.client.request(['13', '4', 'room:crashjoin', 'phx_join', {}])).toEqual([
      '13',
      '4',
      'room:crashjoin',
      'phx_reply',
      { status: 'error', response: { reason: 'join crashed' } },
    ]);
    expect(t.app.gateway.stats.channels).toBe(0);
  });

  it('23: a join to an unrouted topic is unmatched with a null join_ref', async () => {
    expect(await t.client.request(['14', '5', 'nomatch', 'phx_join', {}])).toEqual([
      null,
      '5',
      'nomatch',
      'phx_reply',
      UNMATCHED,
    ]);
  });

  it('24: pushes from join come after the join reply', async () => {
    const [replyFrame, welcome] = await (t.client.send([
      '1',
      '1',
      'room:afterjoin',
      'phx_join',
      {},
    ]),
    t.client.take(2));
    expect(replyFrame).toEqual(['1', '1', 'room:afterjoin', 'phx_reply', OK]);
    expect((welcome as unknown[]).slice(0, 4)).toEqual(['1', null, 'room:afterjoin', 'welcome']);
  });

  it('25: a channel limit of 1 refuses a second topic; a duplicate join of the first is fine', async () => {
    const limited = await RawClient.connect(t.app.wsUrl('/limited/websocket'));
    expect(await limited.request(['1', '1', 'room:x', 'phx_join', {}])).toEqual([
      '1',
      '1',
      'room:x',
      'phx_reply',
      OK,
    ]);
    expect(await limited.request(['2', '2', 'room:y', 'phx_join', {}])).toEqual([
      '2',
      '2',
      'room:y',
      'phx_reply',
      { status: 'error', response: { reason: 'too many channels joined' } },
    ]);
    limited.send(['3', '3', 'room:x', 'phx_join', {}]);
    expect(await limited.take(2)).toEqual([
      ['3', '3', 'room:x', 'phx_reply', OK],
      ['1', '1', 'room:x', 'phx_close', {}],
    ]);
    limited.close();
  });

  it('25b: with the defaults, the 101st distinct topic is refused', async () => {
    const defaults = await RawClient.connect(t.app.wsUrl('/defaults/websocket'));
    for (let i = 0; i < 100; i++) defaults.send([`${i}`, `${i}`, `room:n${i}`, 'phx_join', {}]);
    const replies = await defaults.take(100);
    expect(
      replies.every(
        (frame) =>
          (frame as unknown[])[4] !== undefined &&
          ((frame as unknown[])[4] as { status: string }).status === 'ok',
      ),
    ).toBe(true);
    expect(await defaults.request(['x', 'x', 'room:n100', 'phx_join', {}])).toEqual([
      'x',
      'x',
      'room:n100',
      'phx_reply',
      { status: 'error', response: { reason: 'too many channels joined' } },
    ]);
    defaults.close();
  });

  it('26–27: a duplicate join replaces the channel; the old join_ref goes stale', async () => {
    await t.client.join('room:a', '11');
    t.client.send(['40', '26', 'room:a', 'phx_join', {}]);
    expect(await t.client.take(2)).toEqual([
      ['40', '26', 'room:a', 'phx_reply', OK],
      ['11', '11', 'room:a', 'phx_close', {}],
    ]);
    t.client.send(['11', '27', 'room:a', 'echo', {}]);
    await t.client.quiet();
    expect(await t.client.request(['40', '28', 'room:a', 'echo', {}])).toEqual([
      '40',
      '28',
      'room:a',
      'phx_reply',
      OK,
    ]);
    expect(t.app.gateway.stats.channels).toBe(1);
  });

  it('28: a duplicate join reusing the join_ref closes with that same ref', async () => {
    await t.client.join('room:r', '3');
    t.client.send(['3', '5', 'room:r', 'phx_join', {}]);
    expect(await t.client.take(2)).toEqual([
      ['3', '5', 'room:r', 'phx_reply', OK],
      ['3', '3', 'room:r', 'phx_close', {}],
    ]);
  });

  it('29: leave then immediate rejoin: leave reply, old phx_close, then the new join reply (protocol/phoenix.md §3 Δ)', async () => {
    await t.client.join('room:r', '1');
    t.client.send(['1', '2', 'room:r', 'phx_leave', {}]);
    t.client.send(['3', '3', 'room:r', 'phx_join', {}]);
    // Phoenix may lose the leave reply in this race and close after the join reply; the gateway
    // finishes the leave first. Both orders leave the JS client joined with JR "3".
    expect(await t.client.take(3)).toEqual([
      ['1', '2', 'room:r', 'phx_reply', OK],
      ['1', '1', 'room:r', 'phx_close', {}],
      ['3', '3', 'room:r', 'phx_reply', OK],
    ]);
    await t.client.quiet();
    expect(await t.client.request(['3', '4', 'room:r', 'echo', { still: 'joined' }])).toEqual([
      '3',
      '4',
      'room:r',
      'phx_reply',
      { status: 'ok', response: { still: 'joined' } },
    ]);
  });

  it('30: a join with a null join_ref uses its ref as the channel join_ref; close carries null', async () => {
    expect(await t.client.request([null, '41', 'room:f', 'phx_join', {}])).toEqual([
      null,
      '41',
      'room:f',
      'phx_reply',
      OK,
    ]);
    expect(await t.client.request([null, '42', 'room:f', 'push', {}])).toEqual([
      '41',
      null,
      'room:f',
      'pushed',
      {},
    ]);
    t.client.send([null, '43', 'room:f', 'phx_leave', {}]);
    expect(await t.client.take(2)).toEqual([
      ['41', '43', 'room:f', 'phx_reply', OK],
      [null, null, 'room:f', 'phx_close', {}],
    ]);
  });

  it('31: non-object join params pass through unchanged', async () => {
    expect(await t.client.request(['9', '8', 'room:s', 'phx_join', 'x'])).toEqual([
      '9',
      '8',
      'room:s',
      'phx_reply',
      OK,
    ]);
    expect(await t.client.request(['9', '8', 'room:reply', 'phx_join', [1, 'two']])).toEqual([
      '9',
      '8',
      'room:reply',
      'phx_reply',
      { status: 'ok', response: { joined: 'room:reply', params: [1, 'two'] } },
    ]);
  });

  it('a slow join holds only its own socket, in order; other sockets are served meanwhile', async () => {
    t.client.send(['1', '1', 'room:slowjoin', 'phx_join', { hold: 'c-join-slow' }]);
    t.client.send([null, '2', 'phoenix', 'heartbeat', {}]);
    const other = await RawClient.connect(t.app.wsUrl());
    expect(await other.request([null, 'h', 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      'h',
      'phoenix',
      'phx_reply',
      OK,
    ]);
    expect(await other.join('room:other', '5')).toEqual(['5', '5', 'room:other', 'phx_reply', OK]);
    // The other socket was served while the join (held until now) kept its own socket waiting.
    expect(t.client.frames).toEqual([]);
    releaseJoin('c-join-slow');
    expect(await t.client.take(2)).toEqual([
      ['1', '1', 'room:slowjoin', 'phx_reply', { status: 'ok', response: { held: 'c-join-slow' } }],
      [null, '2', 'phoenix', 'phx_reply', OK],
    ]);
    other.close();
  });
});

/**
 * Protocol spec §8 D (cases 32–49): messages on a joined channel.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { conformance } from '../support/conformance.js';
import { RawClient } from '../support/ws-client.js';

const t = conformance({ join: ['room:a', '11'] });

const OK = { status: 'ok', response: {} };

describe('§D messages on a joined channel', () => {
  it('32: echo replies with the payload', async () => {
    expect(await t.client.request(['11', '6', 'room:a', 'echo', { x: 1 }])).toEqual([
      '11',
      '6',
      'room:a',
      'phx_reply',
      { status: 'ok', response: { x: 1 } },
    ]);
  });

  it('33: a null join_ref is delivered; the reply carries the channel join_ref', async () => {
    expect(await t.client.request([null, '7', 'room:a', 'echo', { x: 2 }])).toEqual([
      '11',
      '7',
      'room:a',
      'phx_reply',
      { status: 'ok', response: { x: 2 } },
    ]);
  });

  it('34–36: stale, numeric and empty-string join_refs are dropped silently', async () => {
    t.client.send(['99', '8', 'room:a', 'echo', { x: 3 }]);
    t.client.send([11, 9, 'room:a', 'echo', [1, 'two']]);
    t.client.send(['', '6', 'room:a', 'echo', {}]);
    await t.client.quiet();
  });

  it('37–39: status-only, error and custom-status replies', async () => {
    expect(await t.client.request(['11', '10', 'room:a', 'status_only', {}])).toEqual([
      '11',
      '10',
      'room:a',
      'phx_reply',
      OK,
    ]);
    expect(await t.client.request(['11', '11', 'room:a', 'error_reply', {}])).toEqual([
      '11',
      '11',
      'room:a',
      'phx_reply',
      { status: 'error', response: { reason: 'bad' } },
    ]);
    expect(await t.client.request(['11', '12', 'room:a', 'custom_status', {}])).toEqual([
      '11',
      '12',
      'room:a',
      'phx_reply',
      { status: 'weird', response: {} },
    ]);
  });

  it('40: noreply sends nothing', async () => {
    t.client.send(['11', '13', 'room:a', 'noreply', {}]);
    await t.client.quiet();
  });

  it('41: a push carries the channel join_ref and a null ref', async () => {
    expect(await t.client.request(['11', '14', 'room:a', 'push', { p: 1 }])).toEqual([
      '11',
      null,
      'room:a',
      'pushed',
      { p: 1 },
    ]);
  });

  it('42: a push made before the reply arrives before it', async () => {
    t.client.send(['11', '15', 'room:a', 'push_then_reply', { p: 2 }]);
    expect(await t.client.take(2)).toEqual([
      ['11', null, 'room:a', 'pushed', { p: 2 }],
      ['11', '15', 'room:a', 'phx_reply', { status: 'ok', response: { after: 'push' } }],
    ]);
  });

  it('43: a broadcast reaches the sender (as a fastlane frame) before its reply', async () => {
    t.client.send(['11', '16', 'room:a', 'broadcast', { b: 1 }]);
    expect(await t.client.take(2)).toEqual([
      [null, null, 'room:a', 'bcast', { b: 1 }],
      ['11', '16', 'room:a', 'phx_reply', OK],
    ]);
  });

  describe('two sockets on one topic', () => {
    let a: RawClient;
    let b: RawClient;
    beforeEach(async () => {
      a = await RawClient.connect(t.app.wsUrl());
      b = await RawClient.connect(t.app.wsUrl());
      await a.join('room:shared', '1');
      await b.join('room:shared', '2');
    });
    afterEach(() => {
      a.close();
      b.close();
    });

    it('44: broadcast_from skips the sender', async () => {
      expect(await a.request(['1', '2', 'room:shared', 'broadcast_from', { from: 'a' }])).toEqual([
        '1',
        '2',
        'room:shared',
        'phx_reply',
        OK,
      ]);
      expect(await b.next()).toEqual([null, null, 'room:shared', 'bcast_from', { from: 'a' }]);
      await a.quiet();
    });

    it("45: an intercepted event goes through handleOut, with each subscriber's own join_ref", async () => {
      a.send(['1', '3', 'room:shared', 'intercepted', { from: 'a' }]);
      expect(await a.next()).toEqual([
        '1',
        null,
        'room:shared',
        'intercepted',
        { from: 'a', handled_out: true },
      ]);
      expect(await b.next()).toEqual([
        '2',
        null,
        'room:shared',
        'intercepted',
        { from: 'a', handled_out: true },
      ]);
    });

    it('Endpoint.broadcast from outside a channel reaches every subscriber', async () => {
      t.app.gateway.broadcast('room:shared', 'server_news', { n: 1 });
      expect(await a.next()).toEqual([null, null, 'room:shared', 'server_news', { n: 1 }]);
      expect(await b.next()).toEqual([null, null, 'room:shared', 'server_news', { n: 1 }]);
    });
  });

  it('46: an async reply arrives later with the original ref', async () => {
    const started = Date.now();
    expect(await t.client.request(['11', '19', 'room:a', 'async', { z: 1 }])).toEqual([
      '11',
      '19',
      'room:a',
      'phx_reply',
      { status: 'ok', response: { z: 1 } },
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
  });

  it('47: a never-joined topic is unmatched with a null join_ref', async () => {
    expect(await t.client.request(['11', '20', 'room:zzz', 'echo', {}])).toEqual([
      null,
      '20',
      'room:zzz',
      'phx_reply',
      { status: 'error', response: { reason: 'unmatched topic' } },
    ]);
  });

  it('48: extra trailing elements are ignored', async () => {
    await t.client.join('room:reply', '10');
    expect(await t.client.request(['10', '44', 'room:reply', 'echo', {}, 'extra'])).toEqual([
      '10',
      '44',
      'room:reply',
      'phx_reply',
      OK,
    ]);
  });

  it('49: a reply response may be any JSON value', async () => {
    await t.client.join('room:reply', '10');
    expect(await t.client.request(['10', '45', 'room:reply', 'echo', 'str'])).toEqual([
      '10',
      '45',
      'room:reply',
      'phx_reply',
      { status: 'ok', response: 'str' },
    ]);
  });

  it('messages to one channel are handled in order even when a handler is async; other channels are not held', async () => {
    await t.client.join('room:b', '20');
    t.client.send(['11', 's1', 'room:a', 'slow', { ms: 200 }]);
    t.client.send(['11', 's2', 'room:a', 'echo', { after: 'slow' }]);
    t.client.send(['20', 'b1', 'room:b', 'echo', { other: 'channel' }]);
    expect(await t.client.take(3)).toEqual([
      ['20', 'b1', 'room:b', 'phx_reply', { status: 'ok', response: { other: 'channel' } }],
      ['11', 's1', 'room:a', 'phx_reply', { status: 'ok', response: { slept: 200 } }],
      ['11', 's2', 'room:a', 'phx_reply', { status: 'ok', response: { after: 'slow' } }],
    ]);
  });

  it('channel assigns are per channel; the socket assigns stay as connected', async () => {
    expect(await t.client.request(['11', 'a1', 'room:a', 'assign', { token: 'chan' }])).toEqual([
      '11',
      'a1',
      'room:a',
      'phx_reply',
      { status: 'ok', response: { token: 'chan', socketToken: null } },
    ]);
  });
});

/**
 * Protocol spec §8 F (cases 56–66): channel and connection termination.
 */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../support/clock.js';
import { conformance } from '../support/conformance.js';
import { startTestApp } from '../support/test-app.js';
import { RawClient } from '../support/ws-client.js';

const t = conformance();

const UNMATCHED = { status: 'error', response: { reason: 'unmatched topic' } };

describe('§F termination', () => {
  it('56: a handler that throws → phx_error for that channel only; then unmatched', async () => {
    await t.client.join('room:b', '50');
    await t.client.join('room:keep', '51');
    expect(await t.client.request(['50', '32', 'room:b', 'boom', {}])).toEqual([
      '50',
      '50',
      'room:b',
      'phx_error',
      { reason: 'channel_crash' },
    ]);
    expect(await t.client.request(['50', '33', 'room:b', 'echo', {}])).toEqual([
      null,
      '33',
      'room:b',
      'phx_reply',
      UNMATCHED,
    ]);
    expect(await t.client.request(['51', '34', 'room:keep', 'echo', { alive: true }])).toEqual([
      '51',
      '34',
      'room:keep',
      'phx_reply',
      { status: 'ok', response: { alive: true } },
    ]);
  });

  it('56b: a rejected promise crashes the channel the same way; other sockets are untouched', async () => {
    const other = await RawClient.connect(t.app.wsUrl());
    await other.join('room:b', '9');
    await t.client.join('room:b', '50');
    expect(await t.client.request(['50', '32', 'room:b', 'async_boom', {}])).toEqual([
      '50',
      '50',
      'room:b',
      'phx_error',
      { reason: 'channel_crash' },
    ]);
    expect(await other.request(['9', '1', 'room:b', 'echo', { ok: 1 }])).toEqual([
      '9',
      '1',
      'room:b',
      'phx_reply',
      { status: 'ok', response: { ok: 1 } },
    ]);
    other.close();
  });

  it('57: stop normal → phx_close and no reply', async () => {
    await t.client.join('room:c', '60');
    expect(await t.client.request(['60', '35', 'room:c', 'stop_normal', {}])).toEqual([
      '60',
      '60',
      'room:c',
      'phx_close',
      {},
    ]);
    await t.client.quiet();
  });

  it('58: stop shutdown with a reply → the reply, then phx_close', async () => {
    await t.client.join('room:d', '70');
    t.client.send(['70', '37', 'room:d', 'stop_shutdown_reply', {}]);
    expect(await t.client.take(2)).toEqual([
      ['70', '37', 'room:d', 'phx_reply', { status: 'ok', response: { bye: true } }],
      ['70', '70', 'room:d', 'phx_close', {}],
    ]);
  });

  it('59: stop with an abnormal reason → phx_error', async () => {
    await t.client.join('room:e', '80');
    expect(await t.client.request(['80', '39', 'room:e', 'stop_kaboom', {}])).toEqual([
      '80',
      '80',
      'room:e',
      'phx_error',
      { reason: 'channel_crash' },
    ]);
  });

  it('60: a server disconnect for the socket id closes with 1001 and no frames', async () => {
    const user = await RawClient.connect(t.app.wsUrl('/socket/websocket', 'user_id=42&vsn=2.0.0'));
    const second = await RawClient.connect(
      t.app.wsUrl('/defaults/websocket', 'user_id=42&vsn=2.0.0'),
    );
    await user.join('room:u', '1');
    expect(t.app.gateway.disconnect('user:42')).toBe(2);
    expect((await user.closed).code).toBe(1001);
    expect((await second.closed).code).toBe(1001);
    expect(user.frames).toEqual([]);
    expect(t.app.gateway.disconnect('user:42')).toBe(0);
  });

  it('61: closing the gateway drains sockets with 1012', async () => {
    const own = await startTestApp();
    const drained = await RawClient.connect(own.wsUrl());
    await own.close();
    expect((await drained.closed).code).toBe(1012);
  });

  it.each([
    ['62: invalid JSON', '{nope'],
    ['63: an array of 3 elements', '["1","2","t"]'],
    ['64: a JSON object on V2', '{"topic":"t"}'],
  ])('%s closes the connection with 1011', async (_name, text) => {
    t.client.sendText(text);
    expect((await t.client.closed).code).toBe(1011);
  });

  it('65: a binary frame of kind 1 from the client closes with 1011', async () => {
    t.client.sendBinary(Uint8Array.of(1, 0, 0, 0, 0));
    expect((await t.client.closed).code).toBe(1011);
  });

  it('66: no inbound frames for the idle timeout closes the connection (not 1 ms before)', async () => {
    // On a clock the test drives: /socket's idle timeout is 3 s.
    const clock = manualClock(1_000_000);
    const own = await startTestApp({ gateway: { clock: clock.now, timerTickMs: 1 } });
    try {
      const idle = await RawClient.connect(own.wsUrl());
      clock.advance(2_999);
      own.gateway.wheel.advance();
      expect(own.gateway.stats.sockets).toBe(1);
      clock.advance(1);
      own.gateway.wheel.advance();
      expect(own.gateway.stats.sockets).toBe(0);
      const closed = await idle.closed;
      expect(closed).toEqual({ code: 1002, reason: 'idle timeout' });
    } finally {
      await own.close();
    }
  });

  it('a crashing channel leaves no state behind', async () => {
    await t.client.join('room:g', '1');
    await t.client.request(['1', '2', 'room:g', 'boom', {}]);
    t.client.close();
    await t.client.closed;
    await expect.poll(() => t.app.gateway.stats.sockets).toBe(0);
    expect(t.app.gateway.stats.channels).toBe(0);
    expect(t.app.gateway.pubsub.subscriberCount()).toBe(0);
  });
});

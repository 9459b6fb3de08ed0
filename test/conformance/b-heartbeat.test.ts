/**
 * Protocol spec §8 B (cases 14–18): heartbeats and the idle timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/ws-client.js';
import { manualClock, type ManualClock } from '../support/clock.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { once, within } from '../support/wait.js';

let app: TestApp;
let client: RawClient;
beforeAll(async () => {
  app = await startTestApp();
  client = await RawClient.connect(app.wsUrl());
});
afterAll(async () => {
  client.close();
  await app.close();
});

const OK = { status: 'ok', response: {} };

describe('§B heartbeat', () => {
  it('14: a heartbeat is answered with join_ref null', async () => {
    expect(await client.request([null, '21', 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      '21',
      'phoenix',
      'phx_reply',
      OK,
    ]);
  });

  it('15: the reply join_ref is null even when the heartbeat carried one', async () => {
    expect(await client.request(['5', '22', 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      '22',
      'phoenix',
      'phx_reply',
      OK,
    ]);
  });

  it('16: a numeric ref comes back numeric', async () => {
    expect(await client.request([null, 7, 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      7,
      'phoenix',
      'phx_reply',
      OK,
    ]);
  });

  it('17: any other event on topic phoenix is an unmatched topic', async () => {
    expect(await client.request([null, '23', 'phoenix', 'other', {}])).toEqual([
      null,
      '23',
      'phoenix',
      'phx_reply',
      { status: 'error', response: { reason: 'unmatched topic' } },
    ]);
  });
});

describe('§B idle timeout, on a clock the test drives', () => {
  const IDLE_MS = 3_000; // /socket's idle timeout
  let timed: TestApp;
  let clock: ManualClock;
  beforeAll(async () => {
    clock = manualClock(1_000_000);
    timed = await startTestApp({ gateway: { clock: clock.now, timerTickMs: 1 } });
  });
  afterAll(() => timed.close());

  /** Moves the clock by `ms` and fires the timer wheel's deadlines up to it. */
  function advance(ms: number): void {
    clock.advance(ms);
    timed.gateway.wheel.advance();
  }

  /** A WebSocket ping answered by a pong (the gateway has seen it once the pong is back). */
  async function pinged(client: RawClient): Promise<void> {
    const pong = once(client.ws, 'pong', 'a pong');
    client.ws.ping();
    await pong;
  }

  const heartbeat = async (client: RawClient, ref: string) =>
    expect(await client.request([null, ref, 'phoenix', 'heartbeat', {}])).toEqual([
      null,
      ref,
      'phoenix',
      'phx_reply',
      OK,
    ]);

  it('18: heartbeats or WebSocket pings keep a connection past the idle timeout; silence closes it', async () => {
    const [pinger, beater, silent] = await Promise.all([
      RawClient.connect(timed.wsUrl()),
      RawClient.connect(timed.wsUrl()),
      RawClient.connect(timed.wsUrl()),
    ]);
    try {
      const open = timed.gateway.stats.sockets;
      // Two thirds of the way, the pinger pings and the beater sends a heartbeat.
      advance((2 * IDLE_MS) / 3);
      await pinged(pinger);
      await heartbeat(beater, 'hb1');
      // At the silent one's deadline, only it is closed…
      advance(IDLE_MS / 3 - 1);
      expect(timed.gateway.stats.sockets).toBe(open); // 1 ms before: nobody
      advance(1);
      expect(timed.gateway.stats.sockets).toBe(open - 1);
      const closed = await within(silent.closed, 'the silent socket closing');
      expect(closed.code).toBe(1002);
      expect(closed.reason).toBe('idle timeout');
      // …and the other two, active again, stay open well past their first deadline.
      await pinged(pinger);
      await heartbeat(beater, 'hb2');
      advance(IDLE_MS - 1);
      expect(timed.gateway.stats.sockets).toBe(open - 1);
      await heartbeat(pinger, 'p-alive');
      await heartbeat(beater, 'b-alive');
    } finally {
      pinger.close();
      beater.close();
    }
  });
});

/**
 * Protocol spec §8 B (cases 14–18): heartbeats and the idle timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/ws-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

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

  it('18: heartbeats or WebSocket pings keep a connection past the idle timeout; silence closes it', async () => {
    // /socket has a 3 s idle timeout.
    const pinger = await RawClient.connect(app.wsUrl());
    const beater = await RawClient.connect(app.wsUrl());
    const silent = await RawClient.connect(app.wsUrl());
    const pings = setInterval(() => pinger.ws.ping(), 1_000);
    const beats = setInterval(() => beater.send([null, 'hb', 'phoenix', 'heartbeat', {}]), 1_000);
    const closed = await silent.closed;
    expect(closed.code).toBe(1002);
    expect(closed.reason).toBe('idle timeout');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    clearInterval(pings);
    clearInterval(beats);
    expect(pinger.ws.readyState).toBe(pinger.ws.OPEN);
    expect(beater.ws.readyState).toBe(beater.ws.OPEN);
    pinger.close();
    beater.close();
  });
});

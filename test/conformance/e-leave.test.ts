/**
 * Protocol spec §8 E (cases 50–55): leave.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RawClient } from '../support/ws-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

let app: TestApp;
let client: RawClient;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());
beforeEach(async () => {
  client = await RawClient.connect(app.wsUrl());
});
afterEach(() => client.close());

const OK = { status: 'ok', response: {} };

describe('§E leave', () => {
  it('50–51: leave replies ok then closes; later messages are unmatched', async () => {
    await client.join('room:a', '40');
    client.send(['40', '29', 'room:a', 'phx_leave', {}]);
    expect(await client.take(2)).toEqual([
      ['40', '29', 'room:a', 'phx_reply', OK],
      ['40', '40', 'room:a', 'phx_close', {}],
    ]);
    expect(await client.request(['40', '30', 'room:a', 'echo', {}])).toEqual([
      null,
      '30',
      'room:a',
      'phx_reply',
      { status: 'error', response: { reason: 'unmatched topic' } },
    ]);
    expect(app.gateway.stats.channels).toBe(0);
  });

  it('52: a leave with a stale join_ref is ignored and the channel stays', async () => {
    await client.join('room:a', '40');
    client.send(['99', '25', 'room:a', 'phx_leave', {}]);
    await client.nothing();
    expect(await client.request(['40', '26', 'room:a', 'echo', { still: true }])).toEqual([
      '40',
      '26',
      'room:a',
      'phx_reply',
      { status: 'ok', response: { still: true } },
    ]);
  });

  it('53: a leave with a null join_ref on a joined channel leaves', async () => {
    await client.join('room:a', '40');
    client.send([null, '29', 'room:a', 'phx_leave', {}]);
    expect(await client.take(2)).toEqual([
      ['40', '29', 'room:a', 'phx_reply', OK],
      ['40', '40', 'room:a', 'phx_close', {}],
    ]);
  });

  it('54: a leave on a never-joined topic replies ok with the join_ref as sent, and no close', async () => {
    expect(await client.request(['30', '24', 'room:never', 'phx_leave', {}])).toEqual(['30', '24', 'room:never', 'phx_reply', OK]);
    await client.nothing();
  });

  it('55: pushes made by terminate() arrive after the phx_close', async () => {
    await client.join('room:term1', '1');
    client.send(['1', '2', 'room:term1', 'phx_leave', {}]);
    expect(await client.take(3)).toEqual([
      ['1', '2', 'room:term1', 'phx_reply', OK],
      ['1', '1', 'room:term1', 'phx_close', {}],
      ['1', null, 'room:term1', 'you_left', { message: 'bye!' }],
    ]);
  });

  it('a leave queued behind a slow message is processed after it, in order', async () => {
    await client.join('room:a', '7');
    client.send(['7', '8', 'room:a', 'slow', { ms: 150 }]);
    client.send(['7', '9', 'room:a', 'phx_leave', {}]);
    expect(await client.take(3)).toEqual([
      ['7', '8', 'room:a', 'phx_reply', { status: 'ok', response: { slept: 150 } }],
      ['7', '9', 'room:a', 'phx_reply', OK],
      ['7', '7', 'room:a', 'phx_close', {}],
    ]);
  });
});

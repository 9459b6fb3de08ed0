/**
 * Protocol spec §8 E (cases 50–55): leave.
 */
import { describe, expect, it } from 'vitest';
import { conformance } from '../support/conformance.js';

const t = conformance();

const OK = { status: 'ok', response: {} };

describe('§E leave', () => {
  it('50–51: leave replies ok then closes; later messages are unmatched', async () => {
    await t.client.join('room:a', '40');
    t.client.send(['40', '29', 'room:a', 'phx_leave', {}]);
    expect(await t.client.take(2)).toEqual([
      ['40', '29', 'room:a', 'phx_reply', OK],
      ['40', '40', 'room:a', 'phx_close', {}],
    ]);
    expect(await t.client.request(['40', '30', 'room:a', 'echo', {}])).toEqual([
      null,
      '30',
      'room:a',
      'phx_reply',
      { status: 'error', response: { reason: 'unmatched topic' } },
    ]);
    expect(t.app.gateway.stats.channels).toBe(0);
  });

  it('52: a leave with a stale join_ref is ignored and the channel stays', async () => {
    await t.client.join('room:a', '40');
    t.client.send(['99', '25', 'room:a', 'phx_leave', {}]);
    await t.client.quiet();
    expect(await t.client.request(['40', '26', 'room:a', 'echo', { still: true }])).toEqual([
      '40',
      '26',
      'room:a',
      'phx_reply',
      { status: 'ok', response: { still: true } },
    ]);
  });

  it('53: a leave with a null join_ref on a joined channel leaves', async () => {
    await t.client.join('room:a', '40');
    t.client.send([null, '29', 'room:a', 'phx_leave', {}]);
    expect(await t.client.take(2)).toEqual([
      ['40', '29', 'room:a', 'phx_reply', OK],
      ['40', '40', 'room:a', 'phx_close', {}],
    ]);
  });

  it('54: a leave on a never-joined topic replies ok with the join_ref as sent, and no close', async () => {
    expect(await t.client.request(['30', '24', 'room:never', 'phx_leave', {}])).toEqual([
      '30',
      '24',
      'room:never',
      'phx_reply',
      OK,
    ]);
    await t.client.quiet();
  });

  it('55: pushes made by terminate() arrive after the phx_close', async () => {
    await t.client.join('room:term1', '1');
    t.client.send(['1', '2', 'room:term1', 'phx_leave', {}]);
    expect(await t.client.take(3)).toEqual([
      ['1', '2', 'room:term1', 'phx_reply', OK],
      ['1', '1', 'room:term1', 'phx_close', {}],
      ['1', null, 'room:term1', 'you_left', { message: 'bye!' }],
    ]);
  });

  it('a leave queued behind a slow message is processed after it, in order', async () => {
    await t.client.join('room:a', '7');
    t.client.send(['7', '8', 'room:a', 'slow', { ms: 150 }]);
    t.client.send(['7', '9', 'room:a', 'phx_leave', {}]);
    expect(await t.client.take(3)).toEqual([
      ['7', '8', 'room:a', 'phx_reply', { status: 'ok', response: { slept: 150 } }],
      ['7', '9', 'room:a', 'phx_reply', OK],
      ['7', '7', 'room:a', 'phx_close', {}],
    ]);
  });
});

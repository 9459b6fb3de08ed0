/**
 * Protocol spec §8 G (cases 67–71): V2 binary frames, byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { conformance } from '../support/conformance.js';
import { RawClient, bytes } from '../support/ws-client.js';

// Case 71 joins a topic over 255 bytes: above the default maxTopicBytes, so this app allows more.
const t = conformance({ join: ['room:reply', '10'], app: { socket: { maxTopicBytes: 1024 } } });

describe('§G binary', () => {
  it('67: a binary push → binary push, broadcast and reply, in that order, byte for byte', async () => {
    t.client.sendBinary(bytes([0, 2, 2, 10, 3], '10', '46', 'room:reply', 'bin', [1, 2, 3]));
    const [push, broadcast, reply] = await t.client.take(3);
    expect(push).toEqual(
      bytes([0x00, 0x02, 0x0a, 0x08], '10', 'room:reply', 'bin_push', [0x00, 0x01]),
    );
    expect(broadcast).toEqual(bytes([0x02, 0x0a, 0x09], 'room:reply', 'bin_bcast', [0x02, 0x03]));
    expect(reply).toEqual(
      bytes(
        [0x01, 0x02, 0x02, 0x0a, 0x02],
        '10',
        '46',
        'room:reply',
        'ok',
        [0x01, 0x02, 0x03, 0xff],
      ),
    );
  });

  it('69: the JS client\'s encoding of a binary push is accepted (join_ref "3", ref "7")', async () => {
    const lobby = await RawClient.connect(t.app.wsUrl());
    await lobby.join('room:lobby', '3');
    lobby.sendBinary(
      Buffer.from('0001010a03333772' + '6f6f6d3a6c6f626279' + '62696e' + '010203', 'hex'),
    );
    const frames = await lobby.take(3);
    expect(frames[2]).toEqual(
      bytes([0x01, 0x01, 0x01, 0x0a, 0x02], '3', '7', 'room:lobby', 'ok', [1, 2, 3, 0xff]),
    );
    lobby.close();
  });

  it('70: a text frame to a binary handler stays JSON', async () => {
    expect(await t.client.request(['10', '47', 'room:reply', 'bin', {}])).toEqual([
      '10',
      '47',
      'room:reply',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
  });

  it('a binary reply to a JSON request is a kind-1 frame', async () => {
    expect(await t.client.request(['10', '48', 'room:reply', 'bin_reply_only', {}])).toEqual(
      bytes([0x01, 0x02, 0x02, 0x0a, 0x02], '10', '48', 'room:reply', 'ok', [9, 8, 7]),
    );
  });

  it('71: fields are measured in UTF-8 bytes ("room:café" is 10 bytes)', async () => {
    const cafe = await RawClient.connect(t.app.wsUrl());
    await cafe.join('room:café', '1');
    expect(await cafe.request(['1', '2', 'room:café', 'bin_reply_only', {}])).toEqual(
      bytes([0x01, 0x01, 0x01, 0x0a, 0x02], '1', '2', 'room:café', 'ok', [9, 8, 7]),
    );
    cafe.close();
  });

  it('71: a reply whose topic is over 255 bytes cannot be binary; it is dropped and the socket lives on', async () => {
    const topic = 'room:' + 'x'.repeat(260);
    const dropped = t.app.gateway.stats.droppedFrames;
    await t.client.join(topic, '5');
    t.client.send(['5', '6', topic, 'bin_reply_only', {}]);
    await t.client.quiet();
    expect(t.app.gateway.stats.droppedFrames).toBe(dropped + 1);
    expect(await t.client.request(['5', '7', topic, 'echo', { still: 'here' }])).toEqual([
      '5',
      '7',
      topic,
      'phx_reply',
      { status: 'ok', response: { still: 'here' } },
    ]);
  });

  it('JSON and binary frames mix freely on one socket', async () => {
    t.client.sendBinary(bytes([0, 2, 1, 10, 3], '10', 'a', 'room:reply', 'bin', [5]));
    t.client.send(['10', 'b', 'room:reply', 'echo', { json: true }]);
    const frames = await t.client.take(4);
    expect(frames[2]).toEqual(
      bytes([0x01, 0x02, 0x01, 0x0a, 0x02], '10', 'a', 'room:reply', 'ok', [5, 0xff]),
    );
    expect(frames[3]).toEqual([
      '10',
      'b',
      'room:reply',
      'phx_reply',
      { status: 'ok', response: { json: true } },
    ]);
  });
});

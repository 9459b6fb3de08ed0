/**
 * Unit tests for the wire serializers (protocol spec §2): V1 JSON objects, V2 JSON arrays and
 * V2 binary frames, byte for byte against the frames observed on a real Phoenix server.
 */
import { describe, expect, it } from 'vitest';
import { FrameDecodeError, FrameEncodeError } from '../../src/wire/message.js';
import { v1Serializer } from '../../src/wire/v1-json.js';
import { v2Serializer } from '../../src/wire/v2-json.js';
import {
  MAX_BINARY_FIELD_BYTES,
  decodeBinaryPush,
  encodeBinaryBroadcast,
  encodeBinaryPush,
  encodeBinaryReply,
} from '../../src/wire/v2-binary.js';
import { bytes } from '../support/ws-client.js';

function hex(buffer: Uint8Array): string {
  return Buffer.from(buffer).toString('hex');
}

function decodeError(fn: () => unknown): FrameDecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FrameDecodeError);
    return err as FrameDecodeError;
  }
  throw new Error('expected a FrameDecodeError');
}

describe('V2 binary frames (spec §2.3, case 67/69)', () => {
  it('encodes the observed server push byte for byte', () => {
    const frame = encodeBinaryPush('10', 'room:reply', 'bin_push', Uint8Array.of(0, 1));
    expect(hex(frame)).toBe(
      hex(bytes([0x00, 0x02, 0x0a, 0x08], '10', 'room:reply', 'bin_push', [0x00, 0x01])),
    );
  });

  it('encodes the observed server reply byte for byte', () => {
    const frame = encodeBinaryReply('10', '46', 'room:reply', 'ok', Uint8Array.of(1, 2, 3, 0xff));
    expect(hex(frame)).toBe(
      hex(bytes([0x01, 0x02, 0x02, 0x0a, 0x02], '10', '46', 'room:reply', 'ok', [1, 2, 3, 0xff])),
    );
  });

  it('encodes the observed server broadcast byte for byte', () => {
    const frame = encodeBinaryBroadcast('room:reply', 'bin_bcast', Uint8Array.of(2, 3));
    expect(hex(frame)).toBe(hex(bytes([0x02, 0x0a, 0x09], 'room:reply', 'bin_bcast', [2, 3])));
  });

  it('the V2 serializer picks binary frames for Uint8Array payloads', () => {
    expect(
      hex(
        v2Serializer.encodeMessage(
          '10',
          null,
          'room:reply',
          'bin_push',
          Uint8Array.of(0, 1),
        ) as Buffer,
      ),
    ).toBe('00020a08' + Buffer.from('10room:replybin_push').toString('hex') + '0001');
    expect(
      hex(
        v2Serializer.encodeReply(
          '10',
          '46',
          'room:reply',
          'ok',
          Buffer.from([1, 2, 3, 0xff]),
        ) as Buffer,
      ),
    ).toBe(hex(bytes([1, 2, 2, 10, 2], '1046room:replyok', [1, 2, 3, 0xff])));
    expect(
      hex(v2Serializer.encodeBroadcast('room:reply', 'bin_bcast', Uint8Array.of(2, 3)) as Buffer),
    ).toBe(hex(bytes([2, 10, 9], 'room:replybin_bcast', [2, 3])));
  });

  it('a null join_ref or ref is encoded as an empty field; numeric refs as their digits', () => {
    expect(hex(encodeBinaryReply(null, null, 't', 'ok', new Uint8Array()))).toBe(
      hex(bytes([1, 0, 0, 1, 2], 'tok')),
    );
    expect(hex(encodeBinaryPush(null, 't', 'e', Uint8Array.of(7)))).toBe(
      hex(bytes([0, 0, 1, 1], 'te', [7])),
    );
    expect(hex(encodeBinaryReply(12, 7, 't', 'ok', new Uint8Array()))).toBe(
      hex(bytes([1, 2, 1, 1, 2], '127tok')),
    );
  });

  it('decodes the observed client push', () => {
    const frame = Buffer.from(
      '0001010a03' + '33' + '37' + '726f6f6d3a6c6f626279' + '62696e' + '010203',
      'hex',
    );
    expect(hex(frame)).toBe(hex(bytes([0, 1, 1, 10, 3], '3', '7', 'room:lobby', 'bin', [1, 2, 3])));
    const message = v2Serializer.decode(frame, true);
    expect(message.joinRef).toBe('3');
    expect(message.ref).toBe('7');
    expect(message.topic).toBe('room:lobby');
    expect(message.event).toBe('bin');
    expect(message.payload).toBeInstanceOf(Uint8Array);
    expect(hex(message.payload as Uint8Array)).toBe('010203');
  });

  it('decodes empty fields as empty strings and an empty payload as zero bytes', () => {
    const message = decodeBinaryPush(bytes([0, 0, 0, 1, 1], 'te'));
    expect(message).toMatchObject({ joinRef: '', ref: '', topic: 't', event: 'e' });
    expect((message.payload as Uint8Array).length).toBe(0);
  });

  it('decodes multi-byte UTF-8 fields by their byte lengths', () => {
    const message = decodeBinaryPush(bytes([0, 1, 1, 10, 2], '1', '2', 'room:café', 'é', [9]));
    expect(message.topic).toBe('room:café');
    expect(message.event).toBe('é');
    expect(hex(message.payload as Uint8Array)).toBe('09');
  });

  it.each([
    ['empty', []],
    ['1 byte', [0]],
    ['4 bytes', [0, 0, 0, 0]],
  ])('rejects a frame shorter than 5 bytes (%s)', (_name, frame) => {
    expect(decodeError(() => v2Serializer.decode(Buffer.from(frame), true)).message).toMatch(
      /short/,
    );
  });

  it.each([1, 2, 3, 255])('rejects kind %i from a client', (kind) => {
    expect(
      decodeError(() => v2Serializer.decode(Buffer.from([kind, 0, 0, 0, 0]), true)).message,
    ).toMatch(/kind/);
  });

  it('rejects a header that declares more bytes than the frame has', () => {
    decodeError(() => decodeBinaryPush(bytes([0, 1, 1, 10, 3], '3', '7', 'room:lobb')));
    decodeError(() => decodeBinaryPush(bytes([0, 255, 255, 255, 255], 'x')));
    // Exactly enough bytes (no payload) is fine.
    expect(decodeBinaryPush(bytes([0, 1, 1, 10, 3], '3', '7', 'room:lobby', 'bin')).event).toBe(
      'bin',
    );
  });

  it.each([
    ['join_ref', bytes([0, 1, 0, 1, 1], [0xff], 't', 'e')],
    ['ref', bytes([0, 0, 1, 1, 1], [0xc3], 't', 'e')],
    ['topic', bytes([0, 0, 0, 2, 1], [0xff, 0xfe], 'e')],
    ['event', bytes([0, 0, 0, 1, 2], 't', [0xed, 0xa0])],
  ])('rejects invalid UTF-8 in the %s, naming the field', (field, frame) => {
    const err = decodeError(() => decodeBinaryPush(frame));
    expect(err.message).toContain(field);
    expect(err.message).toMatch(/UTF-8/);
  });

  it('the payload may hold any bytes, including invalid UTF-8', () => {
    const message = decodeBinaryPush(bytes([0, 0, 0, 1, 1], 't', 'e', [0xff, 0xfe, 0x00]));
    expect(hex(message.payload as Uint8Array)).toBe('fffe00');
  });

  it('counts the 255-byte limit in UTF-8 bytes, not characters (case 71)', () => {
    expect(MAX_BINARY_FIELD_BYTES).toBe(255);
    // "room:café" is 9 characters but 10 bytes.
    expect(encodeBinaryBroadcast('room:café', 'e', new Uint8Array())[1]).toBe(10);
    const max = 'x'.repeat(255);
    expect(encodeBinaryPush('1', max, 'e', new Uint8Array())[2]).toBe(255);
    expect(() => encodeBinaryPush('1', 'x'.repeat(256), 'e', new Uint8Array())).toThrow(
      FrameEncodeError,
    );
    // 128 "é" are 128 characters (< 255) but 256 bytes.
    const wide = 'é'.repeat(128);
    expect(wide.length).toBeLessThan(255);
    expect(() => encodeBinaryBroadcast(wide, 'e', new Uint8Array())).toThrow(FrameEncodeError);
    // 5 + 125 * 2 = 255 bytes exactly.
    const edge = 'room:' + 'é'.repeat(125);
    const frame = encodeBinaryReply('1', '2', edge, 'ok', Uint8Array.of(1));
    expect(frame[3]).toBe(255);
    expect(frame.subarray(5 + 1 + 1, 5 + 1 + 1 + 255).toString('utf8')).toBe(edge);
  });

  it.each([
    ['join_ref', () => encodeBinaryPush('j'.repeat(256), 't', 'e', new Uint8Array())],
    ['event', () => encodeBinaryPush('1', 't', 'e'.repeat(256), new Uint8Array())],
    ['ref', () => encodeBinaryReply('1', 'r'.repeat(256), 't', 'ok', new Uint8Array())],
    ['status', () => encodeBinaryReply('1', '2', 't', 's'.repeat(256), new Uint8Array())],
    ['topic', () => encodeBinaryBroadcast('t'.repeat(256), 'e', new Uint8Array())],
  ])('an oversize %s is a FrameEncodeError naming the field', (field, encode) => {
    expect(encode).toThrow(FrameEncodeError);
    expect(encode).toThrow(new RegExp(field));
  });
});

describe('V2 JSON (spec §2.2)', () => {
  it('decodes [join_ref, ref, topic, event, payload], ignoring extra elements', () => {
    expect(v2Serializer.decode('["11","2","room:a","phx_join",{"a":1}]', false)).toEqual({
      joinRef: '11',
      ref: '2',
      topic: 'room:a',
      event: 'phx_join',
      payload: { a: 1 },
    });
    expect(
      v2Serializer.decode(Buffer.from('["10","44","room:reply","echo",{},"extra",1]'), false),
    ).toEqual({
      joinRef: '10',
      ref: '44',
      topic: 'room:reply',
      event: 'echo',
      payload: {},
    });
  });

  it('keeps refs exactly as sent (numbers stay numbers, null stays null)', () => {
    expect(v2Serializer.decode('[11,9,"room:a","echo",[1,"two"]]', false)).toMatchObject({
      joinRef: 11,
      ref: 9,
      payload: [1, 'two'],
    });
    expect(v2Serializer.decode('[null,null,"t","e","str"]', false)).toMatchObject({
      joinRef: null,
      ref: null,
      payload: 'str',
    });
  });

  it.each([
    ['invalid JSON', '{nope', /JSON/],
    ['3 elements', '["1","2","t"]', /5 elements/],
    ['4 elements', '["1","2","t","e"]', /5 elements/],
    ['empty array', '[]', /5 elements/],
    ['an object', '{"topic":"t"}', /array/],
    ['a string', '"hello"', /array/],
    ['a number', '42', /array/],
    ['null', 'null', /array/],
    ['topic a number', '[null,"1",42,"e",{}]', /topic/],
    ['topic null', '[null,"1",null,"e",{}]', /topic/],
    ['event an object', '[null,"1","t",{},{}]', /event/],
    ['event null', '[null,"1","t",null,{}]', /event/],
  ])('rejects %s', (_name, text, reason) => {
    expect(decodeError(() => v2Serializer.decode(text, false)).message).toMatch(reason);
  });

  it.each([
    ['an object', '{}'],
    ['a boolean', 'true'],
    ['an array', '[1]'],
  ])('rejects a ref that is %s, naming ref (not join_ref)', (_name, value) => {
    const message = decodeError(() =>
      v2Serializer.decode(`[null,${value},"t","e",{}]`, false),
    ).message;
    expect(message).toMatch(/(^|[^_])ref\b/);
    expect(message).not.toContain('join_ref');
  });

  it.each([
    ['an object', '{}'],
    ['a boolean', 'false'],
    ['an array', '["1"]'],
  ])('rejects a join_ref that is %s, naming join_ref', (_name, value) => {
    expect(
      decodeError(() => v2Serializer.decode(`[${value},"1","t","e",{}]`, false)).message,
    ).toContain('join_ref');
  });

  it('encodes pushes, replies and broadcasts as arrays', () => {
    expect(
      JSON.parse(v2Serializer.encodeMessage('11', null, 'room:a', 'pushed', { p: 1 }) as string),
    ).toEqual(['11', null, 'room:a', 'pushed', { p: 1 }]);
    expect(
      JSON.parse(v2Serializer.encodeReply('11', 7, 'room:a', 'weird', 'str') as string),
    ).toEqual(['11', 7, 'room:a', 'phx_reply', { status: 'weird', response: 'str' }]);
    expect(JSON.parse(v2Serializer.encodeBroadcast('room:a', 'bcast', { b: 1 }) as string)).toEqual(
      [null, null, 'room:a', 'bcast', { b: 1 }],
    );
    expect(
      JSON.parse(v2Serializer.encodeMessage('11', '11', 'room:a', 'phx_close', {}) as string),
    ).toEqual(['11', '11', 'room:a', 'phx_close', {}]);
  });

  it('an unencodable payload is a FrameEncodeError', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => v2Serializer.encodeMessage('1', null, 't', 'e', cyclic)).toThrow(FrameEncodeError);
    expect(() => v2Serializer.encodeReply('1', '1', 't', 'ok', { n: 10n })).toThrow(
      FrameEncodeError,
    );
  });

  it('round-trips what the JS client sends', () => {
    const sent = JSON.stringify(['3', '3', 'room:lobby', 'phx_join', { token: 'é☃😀' }]);
    expect(v2Serializer.decode(Buffer.from(sent, 'utf8'), false)).toEqual({
      joinRef: '3',
      ref: '3',
      topic: 'room:lobby',
      event: 'phx_join',
      payload: { token: 'é☃😀' },
    });
  });
});

describe('V1 JSON (spec §2.1)', () => {
  it('decodes {topic, event, payload, ref}; join_ref is optional', () => {
    expect(
      v1Serializer.decode(
        '{"topic":"room:v1","event":"phx_join","payload":{"a":1},"ref":"1"}',
        false,
      ),
    ).toEqual({
      joinRef: null,
      ref: '1',
      topic: 'room:v1',
      event: 'phx_join',
      payload: { a: 1 },
    });
    expect(
      v1Serializer.decode(
        '{"topic":"t","event":"e","payload":null,"ref":null,"join_ref":"5"}',
        false,
      ),
    ).toEqual({
      joinRef: '5',
      ref: null,
      topic: 't',
      event: 'e',
      payload: null,
    });
  });

  it.each(['topic', 'event', 'payload', 'ref'])(
    'rejects an object missing "%s", naming it',
    (key) => {
      const frame: Record<string, unknown> = { topic: 't', event: 'e', payload: {}, ref: '1' };
      delete frame[key];
      expect(
        decodeError(() => v1Serializer.decode(JSON.stringify(frame), false)).message,
      ).toContain(key);
    },
  );

  it.each([
    ['an array', '["1","2","t","e",{}]'],
    ['a string', '"x"'],
    ['null', 'null'],
    ['invalid JSON', '{nope'],
  ])('rejects %s', (_name, text) => {
    decodeError(() => v1Serializer.decode(text, false));
  });

  it('rejects wrong field types, naming the field', () => {
    expect(
      decodeError(() =>
        v1Serializer.decode('{"topic":1,"event":"e","payload":{},"ref":"1"}', false),
      ).message,
    ).toContain('topic');
    expect(
      decodeError(() =>
        v1Serializer.decode('{"topic":"t","event":[],"payload":{},"ref":"1"}', false),
      ).message,
    ).toContain('event');
    expect(
      decodeError(() =>
        v1Serializer.decode('{"topic":"t","event":"e","payload":{},"ref":{}}', false),
      ).message,
    ).toMatch(/(^|[^_])ref\b/);
    expect(
      decodeError(() =>
        v1Serializer.decode(
          '{"topic":"t","event":"e","payload":{},"ref":"1","join_ref":true}',
          false,
        ),
      ).message,
    ).toContain('join_ref');
  });

  it('rejects binary frames', () => {
    decodeError(() =>
      v1Serializer.decode(bytes([0, 1, 1, 10, 3], '3', '7', 'room:lobby', 'bin', [1, 2, 3]), true),
    );
  });

  it('server frames have exactly topic, event, payload and ref — never join_ref', () => {
    const push = JSON.parse(
      v1Serializer.encodeMessage('1', null, 'room:v1', 'pushed', { p: 1 }) as string,
    ) as Record<string, unknown>;
    expect(push).toEqual({ topic: 'room:v1', event: 'pushed', payload: { p: 1 }, ref: null });
    expect(Object.keys(push).sort()).toEqual(['event', 'payload', 'ref', 'topic']);
    const reply = JSON.parse(
      v1Serializer.encodeReply('1', '3', 'phoenix', 'ok', {}) as string,
    ) as Record<string, unknown>;
    expect(reply).toEqual({
      topic: 'phoenix',
      event: 'phx_reply',
      payload: { status: 'ok', response: {} },
      ref: '3',
    });
    expect(reply).not.toHaveProperty('join_ref');
    const bcast = JSON.parse(
      v1Serializer.encodeBroadcast('room:v1', 'bcast', { b: 1 }) as string,
    ) as Record<string, unknown>;
    expect(bcast).toEqual({ topic: 'room:v1', event: 'bcast', payload: { b: 1 }, ref: null });
    // phx_close / phx_error: ref is the stored join_ref (null for V1 joins without one).
    expect(
      JSON.parse(
        v1Serializer.encodeMessage(null, null, 'room:v1', 'phx_error', {
          reason: 'channel_crash',
        }) as string,
      ),
    ).toEqual({
      topic: 'room:v1',
      event: 'phx_error',
      payload: { reason: 'channel_crash' },
      ref: null,
    });
  });

  it('cannot carry binary payloads', () => {
    expect(() => v1Serializer.encodeMessage('1', null, 't', 'e', Uint8Array.of(1))).toThrow(
      FrameEncodeError,
    );
    expect(() => v1Serializer.encodeReply('1', '1', 't', 'ok', Buffer.from([1]))).toThrow(
      FrameEncodeError,
    );
    expect(() => v1Serializer.encodeBroadcast('t', 'e', Uint8Array.of(1))).toThrow(
      FrameEncodeError,
    );
  });

  it('describes itself', () => {
    expect(v1Serializer.vsn).toBe('1.0.0');
    expect(v1Serializer.supportsBinary).toBe(false);
    expect(v2Serializer.vsn).toBe('2.0.0');
    expect(v2Serializer.supportsBinary).toBe(true);
  });
});

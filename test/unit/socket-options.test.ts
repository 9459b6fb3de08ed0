/**
 * Socket option validation (src/config/socket-options.ts): defaults for every limit, and errors
 * that name the offending option.
 */
import { describe, expect, it } from 'vitest';
import {
  resolveSocketOptions,
  SOCKET_DEFAULTS,
  type SocketOptions,
} from '../../src/config/socket-options.js';
import { createGateway } from '../../src/gateway.js';

describe('resolveSocketOptions: defaults', () => {
  it('every limit has its documented default', () => {
    const options = resolveSocketOptions('/socket');
    expect(options).toMatchObject({
      path: '/socket',
      connect: null,
      checkOrigin: true,
      authToken: true,
      subprotocols: [],
      maxChannels: 100,
      joinTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      maxFrameSize: 65_536,
      maxBufferedBytes: 1_048_576,
      maxQueuedFrames: 1_000,
      websocket: { path: '/websocket', idleTimeoutMs: 60_000, compress: false },
      longpoll: {
        path: '/longpoll',
        windowMs: 10_000,
        maxBatchLines: 100,
        maxBodyBytes: 65_536,
      },
      inboundByteRate: { bytesPerSecond: 1_048_576, burstBytes: 1_048_576 },
      slowConsumerGraceMs: 5_000,
      maxBufferedBytesHard: 33_554_432,
      maxBroadcastBytes: 8_388_608,
    });
    expect(SOCKET_DEFAULTS.maxChannels).toBe(100);
    expect(SOCKET_DEFAULTS.maxFrameSize).toBe(65_536);
  });

  it('inboundByteRate: false disables it; its burst is never below maxFrameSize by default', () => {
    expect(resolveSocketOptions('/s', { inboundByteRate: false }).inboundByteRate).toBeNull();
    expect(resolveSocketOptions('/s', { maxFrameSize: 10_000_000 }).inboundByteRate).toEqual({
      bytesPerSecond: 1_048_576,
      burstBytes: 10_000_000,
    });
    expect(
      resolveSocketOptions('/s', { inboundByteRate: { bytesPerSecond: 100, burstBytes: 70_000 } })
        .inboundByteRate,
    ).toEqual({ bytesPerSecond: 100, burstBytes: 70_000 });
  });

  it('maxBufferedBytesHard defaults to at least maxBufferedBytes', () => {
    expect(resolveSocketOptions('/s', { maxBufferedBytes: 64_000_000 }).maxBufferedBytesHard).toBe(
      64_000_000,
    );
  });

  it('longpoll.maxBodyBytes defaults to maxFrameSize', () => {
    expect(resolveSocketOptions('/s', { maxFrameSize: 1024 }).longpoll?.maxBodyBytes).toBe(1024);
    expect(
      resolveSocketOptions('/s', { maxFrameSize: 1024, longpoll: { maxBodyBytes: 4096 } }).longpoll
        ?.maxBodyBytes,
    ).toBe(4096);
  });

  it('given values are kept', () => {
    const connect = () => false as const;
    const options = resolveSocketOptions('/ws/', {
      connect,
      checkOrigin: ['//a.example'],
      authToken: false,
      subprotocols: ['mqtt'],
      maxChannels: 1,
      joinTimeoutMs: 300,
      connectTimeoutMs: 50,
      maxFrameSize: 1024,
      maxBufferedBytes: 65_536,
      maxQueuedFrames: 3,
      websocket: { path: '/w', idleTimeoutMs: 3_000, compress: true },
      longpoll: { path: '/lp/', windowMs: 1_000, maxBatchLines: 5 },
    });
    expect(options).toMatchObject({
      path: '/ws',
      connect,
      checkOrigin: ['//a.example'],
      authToken: false,
      subprotocols: ['mqtt'],
      maxChannels: 1,
      joinTimeoutMs: 300,
      connectTimeoutMs: 50,
      maxFrameSize: 1024,
      maxBufferedBytes: 65_536,
      maxQueuedFrames: 3,
      websocket: { path: '/w', idleTimeoutMs: 3_000, compress: true },
      longpoll: { path: '/lp', windowMs: 1_000, maxBatchLines: 5, maxBodyBytes: 1024 },
    });
  });

  it('a transport can be disabled; true means defaults', () => {
    expect(resolveSocketOptions('/s', { websocket: false }).websocket).toBeNull();
    expect(resolveSocketOptions('/s', { longpoll: false }).longpoll).toBeNull();
    expect(resolveSocketOptions('/s', { websocket: true }).websocket).toEqual(
      SOCKET_DEFAULTS.websocket,
    );
  });

  it('checkOrigin accepts false, "conn" and a function', () => {
    const fn = () => true;
    expect(resolveSocketOptions('/s', { checkOrigin: false }).checkOrigin).toBe(false);
    expect(resolveSocketOptions('/s', { checkOrigin: 'conn' }).checkOrigin).toBe('conn');
    expect(resolveSocketOptions('/s', { checkOrigin: fn }).checkOrigin).toBe(fn);
  });
});

const LIMITS = [
  'maxChannels',
  'joinTimeoutMs',
  'connectTimeoutMs',
  'maxFrameSize',
  'maxBufferedBytes',
  'maxQueuedFrames',
  'slowConsumerGraceMs',
  'maxBufferedBytesHard',
  'maxBroadcastBytes',
] as const;
const BAD_NUMBERS: unknown[] = [
  0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '10',
  null,
  true,
  {},
];

describe('resolveSocketOptions: errors name the option', () => {
  for (const name of LIMITS) {
    it.each(BAD_NUMBERS.map((value) => [JSON.stringify(value) ?? String(value), value]))(
      `${name} = %s is refused`,
      (_label, value) => {
        expect(() => resolveSocketOptions('/s', { [name]: value })).toThrow(
          new RegExp(`\\b${name}\\b`),
        );
        expect(() => resolveSocketOptions('/s', { [name]: value })).toThrow(TypeError);
      },
    );
  }

  it.each([
    ['websocket.idleTimeoutMs', { websocket: { idleTimeoutMs: 0 } }],
    ['websocket.compress', { websocket: { compress: 'yes' } }],
    ['websocket.path', { websocket: { path: 'websocket' } }],
    ['longpoll.windowMs', { longpoll: { windowMs: -5 } }],
    ['longpoll.maxBatchLines', { longpoll: { maxBatchLines: 2.5 } }],
    ['longpoll.maxBodyBytes', { longpoll: { maxBodyBytes: 0 } }],
    ['longpoll.path', { longpoll: { path: '/lp?x' } }],
    ['authToken', { authToken: 'yes' }],
    ['checkOrigin', { checkOrigin: 'yes' }],
    ['checkOrigin', { checkOrigin: [1] }],
    ['connect', { connect: 'fn' }],
    ['subprotocols', { subprotocols: 'mqtt' }],
    ['subprotocols', { subprotocols: [1] }],
    ['inboundByteRate', { inboundByteRate: 'fast' }],
    ['inboundByteRate.bytesPerSecond', { inboundByteRate: { bytesPerSecond: 0 } }],
    ['inboundByteRate.burstBytes', { inboundByteRate: { burstBytes: 1.5 } }],
    ['inboundByteRate.burstBytes', { maxFrameSize: 4096, inboundByteRate: { burstBytes: 4095 } }],
    ['maxBufferedBytesHard', { maxBufferedBytes: 2048, maxBufferedBytesHard: 1024 }],
  ])('%s: a bad value is refused with an error naming it', (name, options) => {
    expect(() => resolveSocketOptions('/s', options as unknown as SocketOptions)).toThrow(
      TypeError,
    );
    expect(() => resolveSocketOptions('/s', options as unknown as SocketOptions)).toThrow(name);
  });

  it('unknown options are refused by name, at each level', () => {
    expect(() => resolveSocketOptions('/s', { maxChanels: 5 } as unknown as SocketOptions)).toThrow(
      /maxChanels/,
    );
    expect(() =>
      resolveSocketOptions('/s', { websocket: { idleTimeout: 5 } } as unknown as SocketOptions),
    ).toThrow(/idleTimeout/);
    expect(() =>
      resolveSocketOptions('/s', { longpoll: { window: 5 } } as unknown as SocketOptions),
    ).toThrow(/window/);
  });

  it.each(['socket', '', '/a b', '/a#b', '/a?b'])('the socket path %j is refused', (path) => {
    expect(() => resolveSocketOptions(path)).toThrow(/socket path/);
  });

  it('paths are normalised (trailing slash removed, "/" kept)', () => {
    expect(resolveSocketOptions('/socket/').path).toBe('/socket');
    expect(resolveSocketOptions('/').path).toBe('/');
  });

  it('gateway.socket() validates the same way', async () => {
    const gateway = createGateway({ logger: false });
    try {
      expect(() => gateway.socket('/s', { maxFrameSize: 0 })).toThrow(/maxFrameSize/);
      gateway.socket('/ok', {});
      expect(() => gateway.socket('/ok/', {})).toThrow(/already mounted/);
    } finally {
      await gateway.close();
    }
  });
});

/**
 * Channel routing (protocol spec §3.2): patterns in declaration order; a trailing `*` is a prefix
 * match, anything else is exact.
 */
import { describe, expect, it } from 'vitest';
import { ChannelRouter } from '../../src/channel/router.js';
import { defineChannel, type ChannelHandler } from '../../src/channel/types.js';

function handler(name: string): ChannelHandler & { name: string } {
  return { name, join: () => undefined };
}

describe('ChannelRouter', () => {
  it('a trailing "*" matches by prefix', () => {
    const router = new ChannelRouter();
    const room = handler('room');
    router.add('room:*', room);
    expect(router.match('room:lobby')).toBe(room);
    expect(router.match('room:')).toBe(room);
    expect(router.match('room:a:b:c')).toBe(room);
    expect(router.match('room')).toBeNull();
    expect(router.match('rooms:a')).toBeNull();
    expect(router.match('Room:a')).toBeNull();
    expect(router.match('xroom:a')).toBeNull();
  });

  it('a pattern without "*" matches exactly', () => {
    const router = new ChannelRouter();
    const lobby = handler('lobby');
    router.add('lobby', lobby);
    expect(router.match('lobby')).toBe(lobby);
    expect(router.match('lobby:1')).toBeNull();
    expect(router.match('lobb')).toBeNull();
    expect(router.match('')).toBeNull();
  });

  it('"*" alone matches every topic, the empty one included', () => {
    const router = new ChannelRouter();
    const all = handler('all');
    router.add('*', all);
    expect(router.match('anything')).toBe(all);
    expect(router.match('')).toBe(all);
  });

  it('the first declared match wins', () => {
    const special = handler('special');
    const rooms = handler('rooms');
    const a = new ChannelRouter();
    a.add('room:special', special);
    a.add('room:*', rooms);
    expect(a.match('room:special')).toBe(special);
    expect(a.match('room:other')).toBe(rooms);

    const b = new ChannelRouter();
    b.add('room:*', rooms);
    b.add('room:special', special);
    expect(b.match('room:special')).toBe(rooms);

    const c = new ChannelRouter();
    const broad = handler('broad');
    c.add('room*', broad);
    c.add('room:*', rooms);
    expect(c.match('room:x')).toBe(broad);
    expect(c.patterns).toEqual(['room*', 'room:*']);
  });

  it('no routes: nothing matches', () => {
    expect(new ChannelRouter().match('room:a')).toBeNull();
    expect(new ChannelRouter().patterns).toEqual([]);
  });

  it.each(['', 'a*b', '*a', '**', 'room:**', 'room:*:x', '*:*'])(
    'rejects the invalid pattern %j',
    (pattern) => {
      expect(() => new ChannelRouter().add(pattern, handler('x'))).toThrow(TypeError);
    },
  );

  it('rejects a non-string pattern', () => {
    expect(() => new ChannelRouter().add(42 as unknown as string, handler('x'))).toThrow(TypeError);
  });

  it('rejects a handler without join(), and intercept without handleOut()', () => {
    const router = new ChannelRouter();
    expect(() => router.add('room:*', {} as ChannelHandler)).toThrow(/join/);
    expect(() => router.add('room:*', null as unknown as ChannelHandler)).toThrow(TypeError);
    expect(() =>
      router.add('room:*', defineChannel({ join: () => undefined, intercept: ['e'] })),
    ).toThrow(/handleOut/);
    expect(() =>
      router.add(
        'room:*',
        defineChannel({ join: () => undefined, intercept: ['e'], handleOut: () => undefined }),
      ),
    ).not.toThrow();
    expect(router.patterns).toEqual(['room:*']);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isWellFormedTopic, topicFromToken, topicToken } from '../../src/nats/topic-token.js';

/** One NATS subject token: printable ASCII, no whitespace, no '.', no wildcards, not empty. */
function isNatsToken(token: string): boolean {
  if (token.length === 0) return false;
  for (const ch of token) {
    const code = ch.charCodeAt(0);
    if (code <= 0x20 || code >= 0x7f || ch === '.' || ch === '*' || ch === '>') return false;
  }
  return true;
}

/** Topics likely to hit every branch: Phoenix-like names, subject syntax, unicode, lone surrogates. */
const topics = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc
    .array(
      fc.constantFrom('room', ':', '.', '*', '>', ' ', '~', 'é', '🙂', '/', '-', '\t', '\u0000'),
      {
        maxLength: 12,
      },
    )
    .map((parts) => parts.join('')),
);

/** Well-formed UTF-16 (what survives the UTF-8 round trip; lone surrogates do not exist in UTF-8). */
const wellFormed = isWellFormedTopic;

describe('topicToken', () => {
  it('keeps common Phoenix topics as they are, so other languages publish without encoding', () => {
    for (const topic of ['room:lobby', 'users_socket:42', 'gen_api', 'a/b-c=d+e,f!g@h', 'Room_1']) {
      expect(topicToken(topic)).toBe(topic);
      expect(topicFromToken(topic)).toBe(topic);
    }
  });

  it('encodes everything else as ~ + base64url(UTF-8)', () => {
    expect(topicToken('room:a.b')).toBe(`~${Buffer.from('room:a.b').toString('base64url')}`);
    expect(topicToken('room:*')).toBe('~cm9vbToq');
    expect(topicToken('')).toBe('~');
    expect(topicToken('~x')).toBe('~fng');
    expect(topicToken('salle:café')).toBe(`~${Buffer.from('salle:café').toString('base64url')}`);
    expect(topicFromToken('~')).toBe('');
  });

  it('always yields one valid NATS subject token', () => {
    fc.assert(
      fc.property(topics, (topic) => {
        const token = topicToken(topic);
        expect(isNatsToken(token), token).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('is lossless for every well-formed topic', () => {
    fc.assert(
      fc.property(topics.filter(wellFormed), (topic) => {
        expect(topicFromToken(topicToken(topic))).toBe(topic);
      }),
      { numRuns: 2000 },
    );
  });

  it('is injective: two different topics never share a token', () => {
    fc.assert(
      fc.property(topics.filter(wellFormed), topics.filter(wellFormed), (a, b) => {
        fc.pre(a !== b);
        expect(topicToken(a)).not.toBe(topicToken(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('tells topics with lone surrogates apart (the cluster keeps them local)', () => {
    expect(isWellFormedTopic('room:\ud800')).toBe(false);
    expect(isWellFormedTopic('room:\udc00x')).toBe(false);
    expect(isWellFormedTopic('room:🙂')).toBe(true);
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (topic) => {
        expect(isWellFormedTopic(topic)).toBe(Buffer.from(topic).toString() === topic);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads back only tokens it produces (no aliases for one topic)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), (token) => {
        const topic = topicFromToken(token);
        if (topic !== null) expect(topicToken(topic)).toBe(token);
      }),
      { numRuns: 2000 },
    );
    // Non-canonical: an identity topic encoded, padding, invalid base64url characters.
    expect(topicFromToken(`~${Buffer.from('room:lobby').toString('base64url')}`)).toBeNull();
    expect(topicFromToken('~cm9vbToq=')).toBeNull();
    expect(topicFromToken('~cm9v+bTo')).toBeNull();
    expect(topicFromToken('room.lobby')).toBeNull();
  });
});

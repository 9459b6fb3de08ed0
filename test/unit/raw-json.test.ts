/**
 * RawJson (issue 15, raw JSON passthrough): the validator accepts exactly what JSON.parse accepts
 * (fixed cases, then random texts and mutations of valid ones with JSON.parse as the oracle), and
 * stringifyFrame puts a RawJson's text in the frame as it is, wherever it sits, without a client
 * string ever being mistaken for its placeholder.
 */
import { describe, expect, it } from 'vitest';
import { isJsonText, RawJson } from '../../src/wire/raw-json.js';
import { stringifyFrame } from '../../src/wire/json.js';
import { v1Serializer } from '../../src/wire/v1-json.js';
import { v2Serializer } from '../../src/wire/v2-json.js';

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const VALID = [
  '0',
  '-0',
  '1.5e+10',
  '-12.25E-3',
  '"a"',
  '""',
  '"\\u00e9\\n\\t\\"\\\\\\/\\b\\f\\r"',
  '"\ud83d\ude00 é"',
  'true',
  'false',
  'null',
  '[]',
  '{}',
  ' \t\r\n[ 1 , "x" , { "a" : [ null , true ] } ] \n',
  '{"a":{"b":{"c":[[[]]]}},"d":-1}',
  '{"__proto__":1,"a":1,"a":2}',
  '[' + '['.repeat(5000) + ']'.repeat(5000) + ']',
];

const INVALID = [
  '',
  ' ',
  '01',
  '-',
  '1.',
  '.5',
  '1e',
  '+1',
  'NaN',
  'Infinity',
  '"a',
  '"\\x"',
  '"\\u12"',
  '"\\u12g4"',
  '"a\nb"',
  '"\u0001"',
  "'a'",
  'tru',
  'nul',
  'true false',
  '[1,]',
  '[,1]',
  '[1 2]',
  '{"a":1,}',
  '{,}',
  '{"a"}',
  '{"a" 1}',
  '{a:1}',
  '{"a":1 "b":2}',
  '[1}',
  '{"a":1]',
  '[',
  ']',
  '{',
  '[[]',
  '[]]',
  '1 2',
  '\u00a0 1',
];

/** A small random JSON value, as text. */
function randomJson(rand: () => number, depth = 0): string {
  const pick = Math.floor(rand() * (depth > 3 ? 5 : 7));
  switch (pick) {
    case 0:
      return String(Math.floor((rand() - 0.5) * 1e6) / (rand() < 0.5 ? 1 : 1000));
    case 1:
      return JSON.stringify(String.fromCharCode(...Array.from({ length: 4 }, () => rand() * 300)));
    case 2:
      return 'true';
    case 3:
      return 'null';
    case 4:
      return '-1.5e-7';
    case 5:
      return `[${Array.from({ length: Math.floor(rand() * 4) }, () => randomJson(rand, depth + 1)).join(',')}]`;
    default:
      return `{${Array.from(
        { length: Math.floor(rand() * 4) },
        (_, i) => `"k${i}" : ${randomJson(rand, depth + 1)}`,
      ).join(' , ')}}`;
  }
}

/** A deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('isJsonText: exactly the grammar JSON.parse accepts', () => {
  it.each(VALID)('valid: %s', (text) => {
    expect(parses(text)).toBe(true);
    expect(isJsonText(text)).toBe(true);
  });

  it.each(INVALID)('invalid: %j', (text) => {
    expect(parses(text)).toBe(false);
    expect(isJsonText(text)).toBe(false);
  });

  it('agrees with JSON.parse on 20,000 random texts and mutations of them', () => {
    const rand = prng(15);
    const alphabet = ' \t\n{}[]:,"\\-+.0123456789eEtrufalsn\u0001é';
    for (let n = 0; n < 20_000; n++) {
      let text = randomJson(rand);
      // Most get one to three edits: a character dropped, inserted or replaced.
      for (let edits = Math.floor(rand() * 4); edits > 0; edits--) {
        const at = Math.floor(rand() * (text.length + 1));
        const ch = alphabet[Math.floor(rand() * alphabet.length)]!;
        const kind = rand();
        if (kind < 0.33) text = text.slice(0, at) + text.slice(at + 1);
        else if (kind < 0.66) text = text.slice(0, at) + ch + text.slice(at);
        else text = text.slice(0, at) + ch + text.slice(at + 1);
      }
      if (isJsonText(text) !== parses(text)) throw new Error(`disagree on ${JSON.stringify(text)}`);
    }
  });
});

describe('RawJson in frames', () => {
  const raw = (text: string): RawJson => RawJson.from(text)!;

  it('is made only from valid JSON', () => {
    expect(RawJson.from('{"a":1}')).toBeInstanceOf(RawJson);
    expect(RawJson.from('{"a":1')).toBeNull();
  });

  it('is spliced into the frame as sent, in V1 and V2 frames alike', () => {
    const text = '{ "b" : [1, 2.50, "\\u00e9"] }';
    const v2 = v2Serializer.encodeMessage('1', null, 'gen_api', 'gen_api_result', {
      request_id: 'r1',
      result: raw(text),
      success: true,
    }) as string;
    expect(v2).toBe(
      `["1",null,"gen_api","gen_api_result",{"request_id":"r1","result":${text},"success":true}]`,
    );
    const v1 = v1Serializer.encodeMessage(null, '2', 't', 'e', { result: raw('7') }) as string;
    expect(JSON.parse(v1)).toEqual({ topic: 't', event: 'e', payload: { result: 7 }, ref: '2' });
  });

  it('several RawJson values and nesting: each lands where it was', () => {
    const frame = stringifyFrame([raw('[1]'), { x: raw('"s"'), y: [raw('null'), raw('{}')] }]);
    expect(frame).toBe('[[1],{"x":"s","y":[null,{}]}]');
  });

  it('a client string that looks like a placeholder stays a string', () => {
    const sneaky = '\u0000raw-json:AAAAAAAAAAAAAAAA:0';
    const frame = stringifyFrame({ request_id: sneaky, result: raw('{"ok":true}') });
    expect(JSON.parse(frame)).toEqual({ request_id: sneaky, result: { ok: true } });
  });

  it('outside the frame encoder, a RawJson serializes as its value', () => {
    expect(JSON.stringify({ r: raw('{"a":[1,2]}') })).toBe('{"r":{"a":[1,2]}}');
    expect(raw('[true]').value()).toEqual([true]);
  });

  it('a frame that cannot be encoded leaves no RawJson behind for the next one', () => {
    const cycle: Record<string, unknown> = { result: raw('1') };
    cycle.self = cycle;
    expect(() => stringifyFrame(cycle)).toThrow(/cannot be encoded/);
    expect(stringifyFrame({ result: raw('2') })).toBe('{"result":2}');
  });
});

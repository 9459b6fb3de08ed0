/**
 * W3C trace context parsing (src/nats/trace-context.ts), shared by the gateway and the worker SDK:
 * strict version-00 traceparents, bounded tracestates, and the vectors in protocol/vectors/nats.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatTraceparent,
  parseTraceparent,
  parseTracestate,
  readTraceContext,
  TRACE_LIMITS,
} from '../../src/nats/trace-context.js';
import { ROOT } from '../support/spawn.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

const vectors = JSON.parse(readFileSync(join(ROOT, 'protocol/vectors/nats.json'), 'utf8')) as {
  traced_call: {
    client_request: { traceparent: string; tracestate: string };
    request: { headers: Record<string, string> };
    reply: { headers: { traceparent: string } };
    client_push: { trace_id: string };
    ignored_traceparents: string[];
  };
};

describe('traceparent', () => {
  it('parses a version-00 traceparent', () => {
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-01`)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      flags: 1,
    });
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-00`)?.flags).toBe(0);
    expect(formatTraceparent(TRACE_ID, SPAN_ID, 1)).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`);
  });

  it('ignores everything else', () => {
    for (const value of vectors.traced_call.ignored_traceparents)
      expect(parseTraceparent(value), value).toBeNull();
    for (const value of [undefined, null, 42, {}, ['x'], `00-${TRACE_ID}-${SPAN_ID}-0g`])
      expect(parseTraceparent(value)).toBeNull();
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-01`.padEnd(10_000, '0'))).toBeNull();
  });
});

describe('tracestate', () => {
  it('keeps well-formed lists within the limits', () => {
    expect(parseTracestate('vendor=abc,other@sys=1')).toBe('vendor=abc,other@sys=1');
    expect(parseTracestate(' a=1 , ,b=2 ')).toBe('a=1 , ,b=2');
  });

  it(`drops malformed ones, and ones over ${TRACE_LIMITS.maxTracestateLength} characters or ${TRACE_LIMITS.maxTracestateMembers} members`, () => {
    for (const value of ['Vendor=abc', 'novalue', 'a=b=c', 'a=1\r\nb=2', '', ',', 7])
      expect(parseTracestate(value), String(value)).toBeNull();
    const long = `a=${'x'.repeat(TRACE_LIMITS.maxTracestateLength)}`;
    expect(parseTracestate(long)).toBeNull();
    const many = Array.from({ length: TRACE_LIMITS.maxTracestateMembers + 1 }, (_, i) => `k${i}=v`);
    expect(parseTracestate(many.join(','))).toBeNull();
    expect(parseTracestate(many.slice(1).join(','))).not.toBeNull();
  });

  it('is kept only with a valid traceparent', () => {
    expect(readTraceContext('bad', 'a=1')).toBeNull();
    expect(readTraceContext(`00-${TRACE_ID}-${SPAN_ID}-01`, 'BAD')).toMatchObject({
      traceId: TRACE_ID,
      tracestate: null,
    });
  });
});

describe('vectors (protocol/vectors/nats.json traced_call)', () => {
  it('are consistent with the parser', () => {
    const v = vectors.traced_call;
    const client = readTraceContext(v.client_request.traceparent, v.client_request.tracestate);
    expect(client).not.toBeNull();
    // Without an SDK the gateway forwards the client's context as it came.
    expect(v.request.headers.traceparent).toBe(v.client_request.traceparent);
    expect(v.request.headers.tracestate).toBe(v.client_request.tracestate);
    expect(parseTraceparent(v.reply.headers.traceparent)?.traceId).toBe(client?.traceId);
    expect(v.client_push.trace_id).toBe(client?.traceId);
  });
});

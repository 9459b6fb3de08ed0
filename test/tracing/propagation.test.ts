/**
 * Trace context without an OTel SDK: a client's traceparent (request field or join param) reaches
 * a real NATS worker unchanged, comes back as `trace_id`, and tags the gateway's log lines;
 * invalid ones are ignored and the request runs as if none was sent.
 */
import { trace } from '@opentelemetry/api';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTraced, tracedClient, type SeenTrace, type TracedSetup } from './support.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;
const JOIN_TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const JOIN_TRACEPARENT = `00-${JOIN_TRACE_ID}-b7ad6b7169203331-00`;

let setup: TracedSetup;

beforeAll(async () => {
  trace.disable(); // no SDK in this process
  setup = await startTraced();
});
afterAll(() => setup?.close());

function resultOf(push: unknown): SeenTrace {
  return (push as { result: SeenTrace }).result;
}

describe('trace context without an SDK', () => {
  it("forwards the client's traceparent and tracestate to the worker as they came", async () => {
    const { socket, call } = await tracedClient(setup.port);
    const [push] = await call({
      service: 'traced',
      request_type: 'seen',
      args: {},
      traceparent: TRACEPARENT,
      tracestate: 'vendor=abc,other=1',
    });
    expect(push).toMatchObject({ success: true, trace_id: TRACE_ID });
    expect(resultOf(push).trace).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      flags: 1,
      traceparent: TRACEPARENT,
      tracestate: 'vendor=abc,other=1',
    });
    socket.disconnect();
  });

  it('a telemetry listener (what /metrics and the dashboard add) keeps the trace intact', async () => {
    const seen: string[] = [];
    const off = setup.gateway.telemetry.on('genapi_request', (event) =>
      seen.push(`${event.function}:${event.outcome}`),
    );
    try {
      const { socket, call } = await tracedClient(setup.port);
      const [push] = await call({
        service: 'traced',
        request_type: 'seen',
        args: {},
        traceparent: TRACEPARENT,
      });
      expect(push).toMatchObject({ success: true, trace_id: TRACE_ID });
      expect(resultOf(push).trace?.traceparent).toBe(TRACEPARENT);
      expect(seen).toContain('seen:ok');
      socket.disconnect();
    } finally {
      off();
    }
  });

  it('an untraced request stays untraced: no trace on the worker, the 7-field response', async () => {
    const { socket, call } = await tracedClient(setup.port);
    const [push] = await call({ service: 'traced', request_type: 'seen', args: {} });
    expect(Object.keys(push as object).sort()).toEqual(
      ['async', 'can_retry', 'error', 'has_more', 'request_id', 'result', 'success'].sort(),
    );
    expect(resultOf(push).trace).toBeNull();
    socket.disconnect();
  });

  it("a join param's traceparent applies to every request without its own", async () => {
    const { socket, call } = await tracedClient(setup.port, { traceparent: JOIN_TRACEPARENT });
    const [inherited] = await call({ service: 'traced', request_type: 'seen', args: {} });
    expect(inherited).toMatchObject({ trace_id: JOIN_TRACE_ID });
    expect(resultOf(inherited).trace?.traceparent).toBe(JOIN_TRACEPARENT);
    const [own] = await call({
      service: 'traced',
      request_type: 'seen',
      args: {},
      traceparent: TRACEPARENT,
    });
    expect(own).toMatchObject({ trace_id: TRACE_ID });
    expect(resultOf(own).trace?.traceId).toBe(TRACE_ID);
    socket.disconnect();
  });

  it('ignores invalid traceparents (the request runs untraced) and an invalid tracestate', async () => {
    const { socket, call } = await tracedClient(setup.port);
    const invalid: unknown[] = [
      `01-${TRACE_ID}-${SPAN_ID}-01`, // another version
      `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`, // upper case
      `00-${'0'.repeat(32)}-${SPAN_ID}-01`, // zero trace id
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`, // zero span id
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`, // extra field
      `00-${TRACE_ID}-${SPAN_ID}`, // no flags
      ` ${TRACEPARENT}`, // padded
      `${TRACEPARENT}${'0'.repeat(4_000)}`, // long
      42,
      { traceparent: TRACEPARENT },
    ];
    for (const traceparent of invalid) {
      const [push] = await call({ service: 'traced', request_type: 'seen', args: {}, traceparent });
      expect(push, String(traceparent).slice(0, 60)).toMatchObject({ success: true });
      expect(push).not.toHaveProperty('trace_id');
      expect(resultOf(push).trace).toBeNull();
    }
    const [push] = await call({
      service: 'traced',
      request_type: 'seen',
      args: {},
      traceparent: TRACEPARENT,
      tracestate: 'Not A Valid=state',
    });
    expect(resultOf(push).trace).toMatchObject({ traceId: TRACE_ID, tracestate: null });
    socket.disconnect();
  });

  it('an invalid join traceparent is ignored too', async () => {
    const { socket, call } = await tracedClient(setup.port, { traceparent: 'nonsense' });
    const [push] = await call({ service: 'traced', request_type: 'seen', args: {} });
    expect(push).not.toHaveProperty('trace_id');
    expect(resultOf(push).trace).toBeNull();
    socket.disconnect();
  });

  it("the gateway's log line for a failed call carries the trace id", async () => {
    const { socket, call } = await tracedClient(setup.port);
    const [push] = await call({
      service: 'traced',
      request_type: 'slow',
      args: {},
      traceparent: TRACEPARENT,
    });
    expect(push).toMatchObject({ success: false, trace_id: TRACE_ID });
    const line = setup.logs.find((entry) => entry.msg === 'call failed' && entry.trace_id);
    expect(line).toMatchObject({
      trace_id: TRACE_ID,
      span_id: SPAN_ID,
      reason: 'timeout',
      service: 'traced',
    });
    socket.disconnect();
  });

  it("the worker's ctx.logger lines carry the trace", async () => {
    const { socket, call } = await tracedClient(setup.port);
    const [push] = await call({
      service: 'traced',
      request_type: 'logged',
      args: {},
      traceparent: TRACEPARENT,
    });
    expect(push).toMatchObject({ success: true });
    const line = setup.workerLogs.find((entry) => entry.msg === 'handled');
    expect(line).toMatchObject({
      trace_id: TRACE_ID,
      span_id: SPAN_ID,
      service: 'traced',
      function: 'logged',
    });
    socket.disconnect();
  });

  it('a worker answers a raw NATS request (any gateway) with the trace it was given', async () => {
    const nc = await connect({ servers: setup.nats.url });
    try {
      const h = natsHeaders();
      h.set('Genapi-Request-Id', 'raw-1');
      h.set('Genapi-Timeout', '2000');
      h.set('traceparent', TRACEPARENT);
      const reply = await nc.request('genapi.fn.traced.seen', '{}', { timeout: 2_000, headers: h });
      expect(reply.headers?.get('traceparent')).toBe(TRACEPARENT);
      expect(reply.json<SeenTrace>().trace?.traceId).toBe(TRACE_ID);
      const plain = natsHeaders();
      plain.set('Genapi-Request-Id', 'raw-2');
      plain.set('traceparent', 'ff-not-a-traceparent');
      const untraced = await nc.request('genapi.fn.traced.seen', '{}', {
        timeout: 2_000,
        headers: plain,
      });
      expect(untraced.headers?.get('traceparent') ?? '').toBe('');
      expect(untraced.json<SeenTrace>().trace).toBeNull();
    } finally {
      await nc.close();
    }
  });
});

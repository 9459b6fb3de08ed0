/**
 * Spans with a real OTel SDK registered in the test process (BasicTracerProvider, in-memory
 * exporter, AsyncLocalStorage context manager): a real `phoenix` client's traceparent is followed
 * through the gateway's request span, its NATS attempt span, and the span of a real NATS worker
 * (the SDK, in this process), with the right parentage, kinds, attributes and statuses.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/phoenix-client.js';
import { startTraced, tracedClient, type SeenTrace, type TracedSetup } from './support.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let setup: TracedSetup;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  setup = await startTraced();
});
afterAll(async () => {
  await setup?.close();
  trace.disable();
  context.disable();
});
beforeEach(() => exporter.reset());

function byScope(scope: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.instrumentationScope.name === scope);
}

/** Waits for `count` finished spans of the trace `traceId`. */
async function spansOf(traceId: string, count: number): Promise<ReadableSpan[]> {
  return waitFor(() => {
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    return spans.length >= count ? spans : null;
  }, `${count} spans of ${traceId}`);
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('spans through the gateway and a NATS worker', () => {
  it('client → gateway request span → NATS attempt span → worker span, one trace', async () => {
    const { socket, call } = await tracedClient(setup.port);
    exporter.reset();
    const [push] = await call({
      service: 'traced',
      request_type: 'seen',
      args: {},
      traceparent: TRACEPARENT,
      tracestate: 'vendor=abc',
    });
    expect(push).toMatchObject({ success: true, trace_id: TRACE_ID });
    const spans = await spansOf(TRACE_ID, 3);
    const server = spans.find(
      (s) => s.instrumentationScope.name === 'gen-gateway' && s.kind === SpanKind.SERVER,
    )!;
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    const worker = spans.find((s) => s.instrumentationScope.name === 'gen-gateway/worker')!;
    expect(server.name).toBe('gen_api traced.seen');
    expect(parentOf(server)).toBe(SPAN_ID);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(parentOf(client)).toBe(server.spanContext().spanId);
    expect(parentOf(worker)).toBe(client.spanContext().spanId);
    expect(worker.kind).toBe(SpanKind.SERVER);
    expect(server.attributes).toMatchObject({
      'gen_api.service': 'traced',
      'gen_api.function': 'seen',
      'gen_api.outcome': 'ok',
    });
    expect(server.attributes['gen_api.request_id']).toMatch(/^r\d+$/);
    expect(server.status.code).not.toBe(SpanStatusCode.ERROR);
    // The worker's reply carried its span back to the attempt span.
    expect(client.attributes['gen_api.worker.span_id']).toBe(worker.spanContext().spanId);
    // The handler saw the worker span as its trace, with the client's tracestate.
    const seen = (push as { result: SeenTrace }).result.trace!;
    expect(seen.traceId).toBe(TRACE_ID);
    expect(seen.spanId).toBe(worker.spanContext().spanId);
    expect(seen.traceparent).toBe(`00-${TRACE_ID}-${worker.spanContext().spanId}-01`);
    expect(seen.tracestate).toBe('vendor=abc');
    socket.disconnect();
  });

  it("the worker's ctx.logger lines carry its span", async () => {
    const { socket, call } = await tracedClient(setup.port);
    exporter.reset();
    await call({ service: 'traced', request_type: 'logged', args: {}, traceparent: TRACEPARENT });
    const [worker] = byScope('gen-gateway/worker');
    const line = setup.workerLogs.findLast((entry) => entry.msg === 'handled');
    expect(line).toMatchObject({ trace_id: TRACE_ID, span_id: worker?.spanContext().spanId });
    socket.disconnect();
  });

  it('with an SDK and no client traceparent the gateway starts the trace (no trace_id back)', async () => {
    const { socket, call } = await tracedClient(setup.port);
    exporter.reset();
    const [push] = await call({ service: 'traced', request_type: 'seen', args: {} });
    expect(push).not.toHaveProperty('trace_id');
    const seen = (push as { result: SeenTrace }).result.trace!;
    const spans = await spansOf(seen.traceId, 3);
    const server = spans.find(
      (s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === 'gen-gateway',
    )!;
    expect(server.parentSpanContext).toBeUndefined();
    const worker = spans.find((s) => s.instrumentationScope.name === 'gen-gateway/worker')!;
    expect(seen.spanId).toBe(worker.spanContext().spanId);
    socket.disconnect();
  });

  it('a failed request: request and worker spans end with status error', async () => {
    const { socket, call } = await tracedClient(setup.port);
    exporter.reset();
    const [push] = await call({
      service: 'traced',
      request_type: 'fail',
      args: {},
      traceparent: TRACEPARENT,
    });
    expect(push).toMatchObject({ success: false, trace_id: TRACE_ID });
    const spans = await spansOf(TRACE_ID, 3);
    const server = spans.find(
      (s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === 'gen-gateway',
    )!;
    const worker = spans.find((s) => s.instrumentationScope.name === 'gen-gateway/worker')!;
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes['gen_api.outcome']).toBe('error');
    expect(worker.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'boom' });
    expect(client.status.code).toBe(SpanStatusCode.ERROR);
    socket.disconnect();
  });

  it('each retry is its own attempt span under the request span', async () => {
    const { socket, call } = await tracedClient(setup.port);
    exporter.reset();
    const [push] = await call({
      service: 'traced',
      request_type: 'flaky',
      args: {},
      traceparent: TRACEPARENT,
    });
    expect(push).toMatchObject({ success: true });
    const spans = await spansOf(TRACE_ID, 5);
    const server = spans.find(
      (s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === 'gen-gateway',
    )!;
    const attempts = spans.filter((s) => s.kind === SpanKind.CLIENT);
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) expect(parentOf(attempt)).toBe(server.spanContext().spanId);
    expect(attempts.map((a) => a.status.code === SpanStatusCode.ERROR).sort()).toEqual([
      false,
      true,
    ]);
    const workers = byScope('gen-gateway/worker');
    expect(workers.map(parentOf).sort()).toEqual(
      attempts.map((a) => a.spanContext().spanId).sort(),
    );
    socket.disconnect();
  });

  it("a stream's request span lasts until the stream ends", async () => {
    const { socket, call } = await tracedClient(setup.port);
    exporter.reset();
    const pushes = await call(
      { service: 'traced', request_type: 'ticks', args: {}, traceparent: TRACEPARENT },
      6, // init, start, 1, 2, 3, end
    );
    expect(pushes.at(-1)).toMatchObject({ has_more: false, success: true, trace_id: TRACE_ID });
    const spans = await spansOf(TRACE_ID, 3);
    const server = spans.find(
      (s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === 'gen-gateway',
    )!;
    const worker = spans.find((s) => s.instrumentationScope.name === 'gen-gateway/worker')!;
    // The worker span ends with the stream; the request span only after the stream's end reached it.
    expect(server.attributes['gen_api.outcome']).toBe('ok');
    const endOf = (s: ReadableSpan) => s.endTime[0] * 1e9 + s.endTime[1];
    expect(endOf(server)).toBeGreaterThanOrEqual(endOf(worker));
    socket.disconnect();
  });

  it('a stream the client cancels, or leaves, still ends its request span', async () => {
    for (const how of ['cancel', 'leave'] as const) {
      const { socket, channel, call } = await tracedClient(setup.port);
      exporter.reset();
      // init, start and two chunks: the stream is live.
      const pushes = await call(
        { service: 'traced', request_type: 'forever', args: {}, traceparent: TRACEPARENT },
        4,
      );
      const requestId = (pushes[0] as { request_id: string }).request_id;
      if (how === 'cancel') channel.push('phoenix_gen_api_cancel', { request_id: requestId });
      else channel.leave();
      const spans = await spansOf(TRACE_ID, 3);
      const server = spans.find(
        (s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === 'gen-gateway',
      );
      expect(server, how).toBeDefined();
      expect(server?.attributes['gen_api.outcome']).toBe('ok');
      socket.disconnect();
    }
  });
});

/**
 * The bridge between the W3C trace context gen_api carries and `@opentelemetry/api`, shared by the
 * gateway and the worker SDK. Spans go through the global tracer provider: without an SDK
 * registered by the host application they are the API's no-op spans, which keep (and hand on) the
 * context they were started in, so a client's traceparent still reaches workers.
 */

import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import {
  formatTraceparent,
  TRACE_HEADERS,
  type RequestTrace,
  type TraceContext,
} from './trace-context.js';

/** Span attribute names of gen_api spans (gateway and worker). */
export const SPAN_ATTRIBUTES = {
  system: 'rpc.system',
  service: 'gen_api.service',
  function: 'gen_api.function',
  requestId: 'gen_api.request_id',
  outcome: 'gen_api.outcome',
  instance: 'gen_api.instance',
  subject: 'messaging.destination.name',
  workerSpanId: 'gen_api.worker.span_id',
} as const;

/**
 * One tracer per name, or null while no OTel SDK is registered (then nothing needs a span: the
 * trace context is handed on as it came, and untraced requests cost nothing). Re-read only when
 * the global provider or its delegate changes (an SDK registered or disabled).
 */
export class TracerCache {
  private key: unknown = undefined;
  private tracer: Tracer | null = null;

  constructor(private readonly name: string) {}

  /** The tracer of the registered SDK, or null when none is registered. */
  get(): Tracer | null {
    const provider: TracerProvider = trace.getTracerProvider();
    // The global provider is the API's proxy; an SDK is its delegate. A provider of another copy
    // of the API (not our proxy class) is taken as an SDK.
    const proxy = provider instanceof ProxyTracerProvider ? provider : null;
    const key = proxy === null ? provider : proxy.getDelegate();
    if (key !== this.key) {
      this.key = key;
      this.tracer =
        proxy === null
          ? provider.getTracer(this.name)
          : (proxy.getDelegateTracer(this.name) ?? null);
    }
    return this.tracer;
  }
}

/** The OTel span context of `parent` (only its sampled flag carries over). */
function spanContextOf(parent: TraceContext | RequestTrace, isRemote: boolean): SpanContext {
  return {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.flags & TraceFlags.SAMPLED,
    isRemote,
  };
}

/** A span for `parent` that records nothing: what hands a trace on when no SDK is registered. */
export function passThroughSpan(parent: TraceContext | RequestTrace, isRemote: boolean): Span {
  return trace.wrapSpanContext(spanContextOf(parent, isRemote));
}

/** The OTel context whose parent is the remote span a client or a peer sent. */
export function remoteParent(parent: TraceContext): Context {
  return trace.setSpanContext(ROOT_CONTEXT, spanContextOf(parent, true));
}

/** The OTel context whose parent is a span of this process, known by its trace. */
export function localParent(parent: RequestTrace): Context {
  return trace.setSpanContext(ROOT_CONTEXT, spanContextOf(parent, false));
}

/**
 * The trace a span hands on, or null when it has no valid context (no SDK and no incoming
 * trace: nothing to propagate). `tracestate` is the span's own, else the incoming one.
 */
export function traceOfSpan(span: Span, incomingState: string | null): RequestTrace | null {
  const context: SpanContext = span.spanContext();
  if (!trace.isSpanContextValid(context)) return null;
  const flags = context.traceFlags & 0xff;
  const state = context.traceState?.serialize() || incomingState;
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    flags,
    traceparent: formatTraceparent(context.traceId, context.spanId, flags),
    tracestate: state === '' ? null : state,
  };
}

/** Appends `traceparent` (and `tracestate`) to outgoing NATS headers. */
export function injectTrace(
  headers: { append(name: string, value: string): void },
  current: RequestTrace,
): void {
  headers.append(TRACE_HEADERS.traceparent, current.traceparent);
  if (current.tracestate !== null) headers.append(TRACE_HEADERS.tracestate, current.tracestate);
}

/** Log fields of a traced request (`trace_id`, `span_id`); empty when untraced. */
export function traceLogFields(current: RequestTrace | null | undefined): {
  trace_id?: string;
  span_id?: string;
} {
  return current ? { trace_id: current.traceId, span_id: current.spanId } : NO_FIELDS;
}

const NO_FIELDS = Object.freeze({});

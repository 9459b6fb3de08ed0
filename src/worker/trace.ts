/**
 * The worker SDK continues the trace a gateway sends in the `traceparent`/`tracestate` headers: a
 * span (kind server) per call or stream, parented on the gateway's span, active while the handler
 * runs (so the handler's own instrumentation nests under it), exposed as `ctx.trace`, and sent back
 * in the reply's `traceparent`. Without an OTel SDK registered in the worker process the span is
 * a no-op and `ctx.trace` is the caller's context; with neither an SDK nor an incoming
 * traceparent the request is untraced (`ctx.trace` null) and nothing of this runs.
 */

import {
  context,
  SpanKind,
  SpanStatusCode,
  trace as traceApi,
  type Context,
  type Span,
} from '@opentelemetry/api';
import type { HeaderValues } from '../nats/header-reader.js';
import { readTraceContext, TRACE_HEADERS, type RequestTrace } from '../nats/trace-context.js';
import {
  passThroughSpan,
  remoteParent,
  SPAN_ATTRIBUTES,
  traceOfSpan,
  TracerCache,
} from '../nats/trace-otel.js';
import type { RequestMeta } from './context.js';

/** The instrumentation scope of the worker SDK's spans. */
export const WORKER_TRACER_NAME = 'gen-gateway/worker';

const tracer = new TracerCache(WORKER_TRACER_NAME);

/** One call's or stream's span on the worker. */
export class WorkerSpan {
  private ended = false;
  private readonly active: Context;

  constructor(
    private readonly span: Span,
    parent: Context | undefined,
    /** What `ctx.trace` shows and the reply carries back. */
    readonly trace: RequestTrace,
  ) {
    this.active = traceApi.setSpan(parent ?? context.active(), span);
  }

  /** Runs `work` with this span active (handlers' own spans become its children). */
  run<T>(work: () => T): T {
    return context.with(this.active, work);
  }

  /** The reply header that hands the worker span's context back to the gateway. */
  replyHeaders(): Record<string, string> {
    return { [TRACE_HEADERS.traceparent]: this.trace.traceparent };
  }

  /** Ends the span (once); an error message makes its status an error. */
  end(error: string | null): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute(SPAN_ATTRIBUTES.outcome, error === null ? 'ok' : 'error');
    if (error !== null) this.span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    this.span.end();
  }
}

/**
 * Starts the span of a request whose metadata is `meta` and whose headers are `headers`; null
 * when the request is untraced. An invalid traceparent is ignored (a new trace when an SDK is
 * registered).
 */
export function startWorkerSpan(headers: HeaderValues, meta: RequestMeta): WorkerSpan | null {
  const incoming = readTraceContext(
    headers.get(TRACE_HEADERS.traceparent),
    headers.get(TRACE_HEADERS.tracestate),
  );
  const sdk = tracer.get();
  const parent = incoming === null ? undefined : remoteParent(incoming);
  let span: Span;
  if (sdk !== null)
    span = sdk.startSpan(
      `gen_api ${meta.service}.${meta.requestType}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [SPAN_ATTRIBUTES.system]: 'gen_api',
          [SPAN_ATTRIBUTES.service]: meta.service,
          [SPAN_ATTRIBUTES.function]: meta.requestType,
          [SPAN_ATTRIBUTES.requestId]: meta.requestId,
        },
      },
      parent,
    );
  // No SDK: hand the caller's context on as it came (no span of our own).
  else if (incoming !== null) span = passThroughSpan(incoming, true);
  else return null;
  const current = traceOfSpan(span, incoming?.tracestate ?? null);
  return current === null ? null : new WorkerSpan(span, parent, current);
}

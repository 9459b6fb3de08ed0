/**
 * The gateway's span per gen_api request (kind server, `gen_api <service>.<function>`). It is
 * parented on the client's traceparent when there is one, and it is what the request's NATS calls
 * are children of. Without an OTel SDK the span is the API's no-op span wrapping the client's
 * context, so the client's traceparent is what travels on; without an SDK and without a client
 * traceparent there is no span at all (the request is untraced and costs nothing more).
 */

import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import {
  passThroughSpan,
  remoteParent,
  SPAN_ATTRIBUTES,
  traceOfSpan,
  TracerCache,
} from '../nats/trace-otel.js';
import type { RequestTrace, TraceContext } from '../nats/trace-context.js';

/** The instrumentation scope of the gateway's spans. */
export const GATEWAY_TRACER_NAME = 'gen-gateway';

/** How a request ended, as its span's `gen_api.outcome` says. */
export type RequestOutcome = 'ok' | 'error';

const tracer = new TracerCache(GATEWAY_TRACER_NAME);

/** One request's span: what it hands on, and how it ends. */
export class RequestSpan {
  private ended = false;
  private failure: string | null = null;

  constructor(
    private readonly span: Span,
    /** The trace the request's NATS calls are children of. */
    readonly trace: RequestTrace,
    /** The trace id the client sent (its responses carry it back), or null. */
    readonly clientTraceId: string | null,
  ) {}

  /** Notes a failure the client saw (the first one is the span's status message). */
  fail(message: string): void {
    this.failure ??= message;
  }

  /** Ends the span (once): status error when a failure was noted. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const outcome: RequestOutcome = this.failure === null ? 'ok' : 'error';
    this.span.setAttribute(SPAN_ATTRIBUTES.outcome, outcome);
    if (this.failure !== null)
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: this.failure });
    this.span.end();
  }
}

/**
 * Starts the span of a request to `service`.`fn`, or returns null when there is nothing to trace
 * (no SDK registered and no client trace context).
 */
export function startRequestSpan(
  service: string,
  fn: string,
  requestId: string,
  client: TraceContext | null,
): RequestSpan | null {
  const sdk = tracer.get();
  let span: Span;
  if (sdk !== null) {
    span = sdk.startSpan(
      `gen_api ${service}.${fn}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [SPAN_ATTRIBUTES.system]: 'gen_api',
          [SPAN_ATTRIBUTES.service]: service,
          [SPAN_ATTRIBUTES.function]: fn,
          [SPAN_ATTRIBUTES.requestId]: requestId,
        },
      },
      client === null ? undefined : remoteParent(client),
    );
  } else if (client !== null) span = passThroughSpan(client, true);
  else return null;
  const current = traceOfSpan(span, client?.tracestate ?? null);
  if (current === null) return null;
  return new RequestSpan(span, current, client?.traceId ?? null);
}

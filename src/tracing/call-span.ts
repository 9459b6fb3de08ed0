/**
 * The gateway's span per NATS request attempt (kind client): each attempt, retry or fallback to
 * another instance is its own span, a child of the request's span. Its context is what the
 * worker gets in the `traceparent` header; the worker's reply may carry the worker span's
 * traceparent back, recorded on the attempt's span.
 */

import { SpanKind, SpanStatusCode, type Link, type Span } from '@opentelemetry/api';
import {
  injectTrace,
  localParent,
  SPAN_ATTRIBUTES,
  traceOfSpan,
  TracerCache,
} from '../nats/trace-otel.js';
import { parseTraceparent, TRACE_HEADERS, type RequestTrace } from '../nats/trace-context.js';
import type { RequestMeta } from '../worker/context.js';
import { GATEWAY_TRACER_NAME } from './request-span.js';

const tracer = new TracerCache(GATEWAY_TRACER_NAME);

/** What an attempt's span needs to know about how the attempt ended. */
export type AttemptEnd =
  | { readonly ok: true }
  | { readonly ok: false; readonly kind: 'business' | 'transport'; readonly message: string };

/** One NATS request attempt's span. */
export class AttemptSpan {
  constructor(
    private readonly span: Span,
    /** The trace sent to the worker. */
    readonly trace: RequestTrace,
  ) {}

  /**
   * Ends the span: status error on failure; `replyTraceparent` (the worker's reply header, '' when
   * absent) is recorded when valid: as an attribute within the same trace, as a link otherwise.
   */
  end(outcome: AttemptEnd, replyTraceparent: string): void {
    const worker = replyTraceparent === '' ? null : parseTraceparent(replyTraceparent);
    if (worker !== null) {
      if (worker.traceId === this.trace.traceId)
        this.span.setAttribute(SPAN_ATTRIBUTES.workerSpanId, worker.spanId);
      else {
        const link: Link = {
          context: { traceId: worker.traceId, spanId: worker.spanId, traceFlags: worker.flags },
        };
        this.span.addLink(link);
      }
    }
    if (!outcome.ok) {
      this.span.setAttribute(SPAN_ATTRIBUTES.outcome, outcome.kind);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
    } else this.span.setAttribute(SPAN_ATTRIBUTES.outcome, 'ok');
    this.span.end();
  }
}

/**
 * Starts the span of one attempt of a traced request and adds its `traceparent`/`tracestate` to
 * `headers`; null (and no headers) for an untraced request.
 */
export function startAttemptSpan(
  meta: RequestMeta,
  kind: 'call' | 'permission',
  subject: string,
  instance: string | null,
  headers: { append(name: string, value: string): void },
): AttemptSpan | null {
  const parent = meta.trace;
  if (!parent) return null;
  const sdk = tracer.get();
  if (sdk === null) {
    // No SDK: the request's context (the client's) is sent on as it came.
    injectTrace(headers, parent);
    return null;
  }
  const name = `gen_api ${meta.service}.${meta.requestType}`;
  const span = sdk.startSpan(
    kind === 'call' ? name : `${name} permission`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        [SPAN_ATTRIBUTES.system]: 'gen_api',
        'messaging.system': 'nats',
        [SPAN_ATTRIBUTES.subject]: subject,
        ...(instance === null ? {} : { [SPAN_ATTRIBUTES.instance]: instance }),
      },
    },
    localParent(parent),
  );
  const current = traceOfSpan(span, parent.tracestate) ?? parent;
  injectTrace(headers, current);
  return new AttemptSpan(span, current);
}

/** The reply header that carries the worker span's traceparent back. */
export const REPLY_TRACE_HEADER = TRACE_HEADERS.traceparent;

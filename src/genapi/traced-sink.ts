import { startRequestSpan, type RequestSpan } from '../tracing/request-span.js';
import type { RequestSink } from './executor.js';
import { DelegatingSink } from './delegating-sink.js';
import type { GenApiRequest, GenApiResponse } from './types.js';
import type { RequestTrace } from '../nats/trace-context.js';

/**
 * A traced request's sink: passes everything on to the client's sink while its span watches how
 * the request ends (any error pushed or replied makes it an error). The span ends when the
 * executor is done with the request, or, for a stream still relaying then, when the stream ends.
 * Clients that sent a trace context get its trace id back as `trace_id` on every push.
 */
class TracedSink extends DelegatingSink {
  /** The last push said more follows (a stream still relaying). */
  private open = false;
  private settledOnce = false;

  constructor(
    inner: RequestSink,
    private readonly span: RequestSpan,
  ) {
    super(inner);
  }

  override get trace(): RequestTrace {
    return this.span.trace;
  }

  override push(response: GenApiResponse): void {
    if (!response.success) this.span.fail(String(response.error));
    this.open = response.has_more;
    const traceId = this.span.clientTraceId;
    this.inner.push(traceId === null ? response : { ...response, trace_id: traceId });
    if (this.settledOnce && !this.open) this.span.end();
  }

  override reply(status: 'ok' | 'error', response: string): void {
    if (status === 'error') this.span.fail(response);
    this.inner.reply(status, response);
  }

  override settled(): void {
    this.settledOnce = true;
    this.inner.settled?.();
    if (!this.open) this.span.end();
  }

  override streamEnded(): void {
    this.open = false;
    this.inner.streamEnded?.();
    // A stream's final push follows its end (and a stream stopped silently has none): the span
    // ends after this turn's pushes, with whatever they said.
    queueMicrotask(() => {
      if (this.settledOnce) this.span.end();
    });
  }
}

/**
 * The sink to run `request` with: `sink` itself when the request is untraced (no OTel SDK and no
 * client trace context), else a traced one whose `trace` the request's NATS calls continue.
 */
export function traceRequest(request: GenApiRequest, sink: RequestSink): RequestSink {
  const span = startRequestSpan(
    request.service,
    request.request_type,
    request.request_id,
    sink.clientTrace ?? null,
  );
  return span === null ? sink : new TracedSink(sink, span);
}

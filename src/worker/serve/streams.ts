import type { Msg, Subscription } from '@nats-io/nats-core';
import { CancelledError } from '../../errors.js';
import { DEFAULT_STREAM_CREDIT, ERROR_CODES, H } from '../../nats/headers.js';
import { readHeaders, type HeaderValues } from '../../nats/header-reader.js';
import { OutboundHeaders } from '../../nats/outbound-headers.js';
import { traceLogFields } from '../../nats/trace-otel.js';
import type { RequestMeta } from '../context.js';
import type { ResolvedFunction } from '../define.js';
import { outcomeOf, type CallOutcome } from '../observer.js';
import { runStream } from '../runtime.js';
import type { CreditStream, StreamEvent, StreamIO } from '../stream.js';
import type { WorkerSpan } from '../trace.js';
import type { EndpointStats } from './endpoint-stats.js';
import { respondError } from './micro-service.js';
import type { InFlight } from './inflight.js';
import { json, replyHeaders, type ServeScope } from './scope.js';

/** A stream being served: its credit, its handler's abort, and whether the gateway cancelled it. */
interface ServedStream {
  stream: CreditStream;
  controller: AbortController;
  cancelled: boolean;
}

/**
 * Serves streams (protocol/nats.md §6): starts each on its data subject, relays its events with
 * sequence numbers, and takes credit and cancels from the gateway on this instance's control
 * subject. A stream is accounted as one request lasting until it ends; an error if it failed.
 */
export class StreamServer {
  private readonly running = new Map<string, ServedStream>();
  private control: Subscription | null = null;

  constructor(
    private readonly scope: ServeScope,
    private readonly inflight: InFlight,
    private readonly creditTimeoutMs: number,
  ) {}

  /** Subscribes the control subject: credit and cancel from the gateway. */
  listen(): void {
    const { nc, subjects, definition, id } = this.scope;
    this.control = nc.subscribe(subjects.streamControlWildcard(definition.name, id), {
      callback: (err, msg) => {
        if (err) return;
        const streamId = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        const run = this.running.get(streamId);
        if (!run) return;
        const kind = readHeaders(msg).get(H.control);
        if (kind === 'credit') run.stream.grant(Number(msg.string()));
        else if (kind === 'cancel') {
          run.cancelled = true;
          run.stream.cancel('cancelled by the gateway');
          run.controller.abort(new CancelledError('stream cancelled'));
        }
      },
    });
  }

  /** Stops taking credit and cancels. */
  close(): void {
    this.control?.unsubscribe();
  }

  /** Every stream still running ends with an error (the gateway is told) and is aborted. */
  abortAll(reason: string): void {
    for (const run of this.running.values()) {
      run.cancelled = true;
      try {
        // Tells the gateway (and so the client) the stream ended, instead of leaving it to time out.
        run.stream.fail(reason, ERROR_CODES.unavailable);
      } catch {
        // The connection is gone: nobody is left to tell.
      }
      run.controller.abort(new CancelledError(reason));
    }
  }

  /** Starts an admitted stream request. */
  start(
    fn: ResolvedFunction,
    args: Record<string, unknown>,
    meta: RequestMeta,
    headers: HeaderValues,
    msg: Msg,
    stats: EndpointStats,
    startedAt: number,
    span: WorkerSpan | null,
  ): void {
    const { scope, inflight } = this;
    const { nc, observer, logger, subjects, definition, id } = scope;
    const dataSubject = headers.get(H.streamSubject);
    const streamId = headers.get(H.streamId);
    if (!dataSubject || !streamId) {
      scope.fail(
        msg,
        stats,
        startedAt,
        ERROR_CODES.badRequest,
        'stream requests need Genapi-Stream-Subject and Genapi-Stream-Id',
      );
      observer?.refused(fn.requestType, 'client_error');
      span?.end('bad stream request');
      return;
    }
    let streamError: string | null = null;
    let streamCode = 500;
    const credit = Number(headers.get(H.streamCredit)) || DEFAULT_STREAM_CREDIT;
    let seq = 0;
    let run: ReturnType<typeof runStream> | null = null;
    // A stream whose transport failed (connection closed) stops its handler.
    const lost = () => {
      run?.stream.cancel('connection lost');
      run?.controller.abort(new CancelledError('connection lost'));
    };
    const io: StreamIO = {
      start(result) {
        if (
          !scope.send(() =>
            msg.respond(json(result), {
              headers: replyHeaders({
                [H.streamControl]: subjects.streamControl(definition.name, id, streamId),
                ...span?.replyHeaders(),
              }),
            }),
          )
        )
          lost();
      },
      startError(message, code) {
        streamError = message;
        streamCode = code;
        scope.send(() =>
          respondError(
            msg,
            code,
            message,
            span === null ? undefined : replyHeaders(span.replyHeaders()),
          ),
        );
      },
      emit(event: StreamEvent, data) {
        const h = new OutboundHeaders();
        h.append(H.streamEvent, event);
        h.append(H.streamSeq, String(++seq));
        if (event === 'error') {
          streamError = String(data);
          // A failure message may hold line breaks; a header value cannot.
          h.append(H.serviceError, streamError.replace(/[\r\n]+/g, ' '));
        }
        if (
          !scope.send(() =>
            nc.publish(
              dataSubject,
              event === 'chunk' || event === 'last' ? json(data) : new Uint8Array(0),
              { headers: h },
            ),
          )
        )
          lost();
      },
    };
    inflight.begin();
    observer?.started(fn.requestType, true);
    const starting = () =>
      runStream(fn, args, meta, io, credit, this.creditTimeoutMs, scope.pushes, logger);
    const started = span === null ? starting() : span.run(starting);
    run = started;
    const entry = { stream: started.stream, controller: started.controller, cancelled: false };
    this.running.set(streamId, entry);
    started.done
      .catch((err: unknown) =>
        logger.error({ err, streamId, ...traceLogFields(meta.trace) }, 'stream handler failed'),
      )
      .finally(() => {
        span?.end(streamError);
        this.running.delete(streamId);
        stats.replied(startedAt, streamError);
        const outcome: CallOutcome = entry.cancelled
          ? 'cancelled'
          : streamError === null
            ? 'ok'
            : outcomeOf(streamCode);
        observer?.finished(fn.requestType, true, outcome, (Date.now() - startedAt) / 1000);
        inflight.end();
      });
  }
}

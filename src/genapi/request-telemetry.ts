import type { GenApiOutcome, Telemetry } from '../telemetry/events.js';
import type { RequestSink } from './executor.js';
import { DelegatingSink } from './delegating-sink.js';
import { ERRORS } from './response.js';
import type { GenApiRequest, GenApiResponse } from './types.js';

/**
 * Error responses the executor built for a call that timed out: to the client they read like any
 * internal error (unless detail_error), so the executor marks them for `genapi_request`.
 */
const timedOut = new WeakSet<GenApiResponse>();

/** @internal Marks `response` as the answer to a timed-out call (telemetry outcome `timeout`). */
export function markTimedOut(response: GenApiResponse): GenApiResponse {
  timedOut.add(response);
  return response;
}

const UNSUPPORTED_PREFIX = 'unsupported function:';
const DISABLED_PREFIX = 'disabled function:';
const HOOK_REJECTED_PREFIX = 'hook rejected:';
const RATE_LIMITED_PREFIX = 'Rate limit exceeded';

/** The outcome an error response stands for, read from what the executor pushed. */
function outcomeOf(response: GenApiResponse): GenApiOutcome {
  if (timedOut.has(response)) return 'timeout';
  const { error } = response;
  if (typeof error !== 'string') return 'error';
  if (error === ERRORS.unavailable || error === ERRORS.rateLimiterUnavailable) return 'unavailable';
  if (error === ERRORS.permissionDenied || error.startsWith(HOOK_REJECTED_PREFIX)) return 'denied';
  if (error.startsWith(RATE_LIMITED_PREFIX)) return 'rate_limited';
  if (error.startsWith(UNSUPPORTED_PREFIX) || error.startsWith(DISABLED_PREFIX)) return 'not_found';
  if (error === ERRORS.streamTimeout) return 'timeout';
  // A drain cut the stream (can_retry): the service went away, as for `unavailable`.
  if (error === ERRORS.streamInterrupted) return 'unavailable';
  return 'error';
}

/**
 * A request sink that watches what the executor answers, for the `genapi_request` event. Only
 * made when someone listens to it, so the request path pays nothing otherwise. The event goes
 * out once the executor is done and, for a stream, once the stream ended (its last push, or the
 * client leaving: `cancelled`).
 */
export class ObservedSink extends DelegatingSink {
  private readonly started = performance.now();
  private outcome: GenApiOutcome = 'ok';
  private streaming = false;
  private streamed = false;
  private executed = false;
  private emitted = false;
  private defect = false;
  /** Made only for a stream (most requests never need it). */
  private onAbort: (() => void) | null = null;

  constructor(
    inner: RequestSink,
    private readonly request: GenApiRequest,
    private readonly telemetry: Telemetry,
  ) {
    super(inner);
  }

  override push(response: GenApiResponse): void {
    this.inner.push(response);
    if (!response.success) {
      this.outcome = outcomeOf(response);
      this.endStream();
    } else if (response.async && response.has_more) {
      // A stream's init, start or chunk: the request lives on until its last push.
      if (!this.streaming) {
        this.streaming = this.streamed = true;
        this.onAbort = () => this.clientLeft();
        this.inner.signal.addEventListener('abort', this.onAbort, { once: true });
      }
    } else if (this.streaming) {
      this.outcome = 'ok';
      this.endStream();
    }
  }

  override reply(status: 'ok' | 'error', response: string): void {
    // Bad arguments end in "Request processing failed" and an error reply (a defect too, but
    // `failed()` tells those apart).
    if (status === 'error' && this.outcome === 'error') this.outcome = 'invalid';
    this.inner.reply(status, response);
  }

  /** The executor failed with a defect: the outcome is `error` whatever was pushed. */
  failed(): void {
    this.defect = true;
  }

  /** The executor is done with the request (a stream may still be relaying). */
  done(): void {
    this.executed = true;
    this.maybeEmit();
  }

  private clientLeft(): void {
    if (!this.streaming) return;
    this.outcome = 'cancelled';
    this.streaming = false;
    this.maybeEmit();
  }

  private endStream(): void {
    if (!this.streaming) return;
    this.streaming = false;
    if (this.onAbort !== null) this.inner.signal.removeEventListener('abort', this.onAbort);
    this.maybeEmit();
  }

  private maybeEmit(): void {
    if (!this.executed || this.streaming || this.emitted) return;
    this.emitted = true;
    this.telemetry.emit('genapi_request', {
      service: this.request.service,
      function: this.request.request_type,
      outcome: this.defect ? 'error' : this.outcome,
      durationMs: performance.now() - this.started,
      stream: this.streamed,
    });
  }
}

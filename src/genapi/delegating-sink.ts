import type { RequestTrace, TraceContext } from '../nats/trace-context.js';
import type { RateContext, RequestSink } from './executor.js';
import type { GenApiResponse } from './types.js';

/**
 * A request sink that passes everything on to `inner`: the base of the sinks that watch a request
 * (telemetry, tracing). They override only what they watch, so a member added to `RequestSink`
 * later reaches the client's sink through every wrapper without each one re-listing it.
 */
export abstract class DelegatingSink implements RequestSink {
  constructor(protected readonly inner: RequestSink) {}

  get owner(): object {
    return this.inner.owner;
  }

  get signal(): AbortSignal {
    return this.inner.signal;
  }

  get rateContext(): RateContext | undefined {
    return this.inner.rateContext;
  }

  get clientTrace(): TraceContext | null | undefined {
    return this.inner.clientTrace;
  }

  get trace(): RequestTrace | null | undefined {
    return this.inner.trace;
  }

  get rawResults(): boolean | undefined {
    return this.inner.rawResults;
  }

  push(response: GenApiResponse): void {
    this.inner.push(response);
  }

  reply(status: 'ok' | 'error', response: string): void {
    this.inner.reply(status, response);
  }

  writable(): boolean {
    return this.inner.writable();
  }

  whenWritable(): Promise<void> {
    return this.inner.whenWritable();
  }

  settled(): void {
    this.inner.settled?.();
  }

  streamEnded(): void {
    this.inner.streamEnded?.();
  }
}

import { GatewayError } from '../errors.js';
/** Chunks of a stream function; every write waits until the gateway has granted credit for it. */
export interface StreamWriter {
  /** Sends a chunk (`has_more: true`). Resolves once it is handed to the transport. */
  write(chunk: unknown): Promise<void>;
  /** Sends the final chunk (`has_more: false`) and ends the stream. */
  last(chunk: unknown): Promise<void>;
  /** Ends the stream without a final chunk (the end marker). */
  end(): Promise<void>;
  /** True once ended, cancelled or failed: further writes reject. */
  readonly closed: boolean;
}

export type StreamEvent = 'chunk' | 'last' | 'end' | 'error';

/** The transport side of a stream (NATS messages, or in-process calls). */
export interface StreamIO {
  /** The start reply: the stream is accepted (called at most once, before any event). */
  start(result: unknown): void;
  /** The start failed: no event follows. */
  startError(message: string, code: number): void;
  emit(event: StreamEvent, data: unknown): void;
}

/** A write to a stream that already ended, or that the client cancelled. */
export class StreamClosedError extends GatewayError {
  override readonly name = 'StreamClosedError';
  constructor(message?: string, options?: ErrorOptions) {
    super('ERR_STREAM_CLOSED', message, options);
  }
}

/**
 * Credit-based flow control: the gateway grants credit as its client drains, the writer spends
 * one credit per chunk and waits when it has none, so a slow client slows the worker instead of
 * filling anyone's memory. `startResult` is sent lazily before the first event.
 */
export class CreditStream implements StreamWriter {
  closed = false;
  started = false;
  private credit: number;
  private waiter: { resolve: () => void; reject: (err: Error) => void } | null = null;

  constructor(
    private readonly io: StreamIO,
    initialCredit: number,
    private readonly startResult: unknown,
    /** Waiting longer than this for credit cancels the stream (the gateway is gone). 0: forever. */
    private readonly creditTimeoutMs = 0,
  ) {
    this.credit = initialCredit;
  }

  async write(chunk: unknown): Promise<void> {
    await this.spend();
    this.io.emit('chunk', chunk);
  }

  async last(chunk: unknown): Promise<void> {
    await this.spend();
    this.io.emit('last', chunk);
    this.closed = true;
  }

  end(): Promise<void> {
    // Not async (nothing to await), but a throw still becomes a rejection, as it would there.
    return new Promise((resolve) => {
      if (!this.closed) {
        this.ensureStarted();
        this.closed = true;
        this.io.emit('end', null);
      }
      resolve();
    });
  }

  /** The handler failed: before the start this fails the request, after it the stream. */
  fail(message: string, code = 500): void {
    if (this.closed) return;
    this.closed = true;
    if (this.started) this.io.emit('error', message);
    else {
      this.started = true;
      this.io.startError(message, code);
    }
    this.rejectWaiter(new StreamClosedError(message));
  }

  grant(credit: number): void {
    if (!(credit > 0)) return;
    this.credit += credit;
    const waiter = this.waiter;
    if (waiter && this.credit > 0) {
      this.waiter = null;
      waiter.resolve();
    }
  }

  /** The gateway cancelled (client left, pushed a cancel, or the stream timed out). */
  cancel(reason = 'stream cancelled'): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectWaiter(new StreamClosedError(reason));
  }

  ensureStarted(): void {
    if (this.started) return;
    this.started = true;
    this.io.start(this.startResult);
  }

  private async spend(): Promise<void> {
    if (this.closed) throw new StreamClosedError('stream is closed');
    this.ensureStarted();
    while (this.credit <= 0) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          this.waiter = { resolve, reject };
          if (this.creditTimeoutMs > 0) {
            timer = setTimeout(
              () => this.fail('no credit from the gateway: stream abandoned'),
              this.creditTimeoutMs,
            );
          }
        });
      } finally {
        clearTimeout(timer);
      }
      if (this.closed) throw new StreamClosedError('stream is closed');
    }
    this.credit--;
  }

  private rejectWaiter(err: Error): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(err);
  }
}

/**
 * A stream being relayed from a worker to a client (credit-based flow control, idle timeout,
 * cancel), and the registry of running streams by owner and request_id (client cancel, drain).
 */
import type { Logger } from 'pino';
import type { StreamControl, StreamSink } from '../../bus/types.js';
import { traceLogFields } from '../../nats/trace-otel.js';
import type { TimerEntry, TimerWheel } from '../../util/timer-wheel.js';
import { errorResponse, ERRORS, streamEndResponse, streamResponse } from '../response.js';
import type { GenApiResponse } from '../types.js';
import type { ExecutorStats, RequestSink } from './types.js';

/** What a relayed stream needs from its executor. */
export interface RelayHost {
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  /** "Internal Server Error", with the reason when detail_error is on. */
  internalError(detail: string): string;
  readonly streams: StreamRegistry;
}

/** A stream the gateway is relaying to a client. */
export class RelayedStream implements StreamSink, TimerEntry {
  timerSlot = -1;
  control: StreamControl | null = null;
  private received = 0;
  private granted: number;
  private waitingForDrain = false;
  done = false;
  private lastActivity: number;
  /** Events that arrived before the start message was pushed (they must follow it). */
  private held: (() => void)[] | null = [];
  /** Settles when the relay ends, whatever the reason (its bulkhead slot is held until then). */
  readonly finished: Promise<void>;
  private settleFinished!: () => void;
  private readonly onAbort = () => this.stop(null);

  constructor(
    private readonly host: RelayHost,
    readonly requestId: unknown,
    /** The owner's key for this stream (the request_id as a string). */
    readonly key: string,
    readonly sink: RequestSink,
    private readonly credit: number,
    private readonly idleTimeoutMs: number,
  ) {
    this.granted = credit;
    this.finished = new Promise((resolve) => (this.settleFinished = resolve));
    this.lastActivity = host.wheel.clock();
    sink.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The start message is pushed: held events follow it, the idle timer starts. */
  live(control: StreamControl): void {
    this.control = control;
    const held = this.held ?? [];
    this.held = null;
    this.touch();
    for (const event of held) event();
  }

  chunk(data: unknown): void {
    if (this.done) return;
    if (this.held) {
      this.held.push(() => this.chunk(data));
      return;
    }
    this.touch();
    this.sink.push(streamResponse(this.requestId, data, true));
    this.received++;
    this.topUp();
  }

  last(data: unknown): void {
    if (this.held) this.held.push(() => this.last(data));
    else this.finish(streamResponse(this.requestId, data, false));
  }

  end(): void {
    if (this.held) this.held.push(() => this.end());
    else this.finish(streamEndResponse(this.requestId));
  }

  error(message: string): void {
    if (this.held) this.held.push(() => this.error(message));
    else this.finish(errorResponse(this.requestId, this.host.internalError(message)));
  }

  /** Client cancel: the worker is told to stop, the client gets the end marker. */
  cancel(): void {
    this.stop(streamEndResponse(this.requestId));
  }

  onTimer(now: number): void {
    if (this.done) return;
    // Only time the worker out while it may send: a client that does not drain holds credit back.
    if (this.waitingForDrain || this.granted - this.received <= 0) {
      this.touch();
      return;
    }
    if (now - this.lastActivity >= this.idleTimeoutMs) {
      this.host.logger.warn(
        {
          requestId: this.requestId,
          idleMs: this.idleTimeoutMs,
          ...traceLogFields(this.sink.trace),
        },
        'stream timed out',
      );
      this.stop(errorResponse(this.requestId, ERRORS.streamTimeout));
      return;
    }
    this.host.wheel.schedule(this, this.lastActivity + this.idleTimeoutMs);
  }

  private touch(): void {
    this.lastActivity = this.host.wheel.clock();
    if (!this.done) this.host.wheel.schedule(this, this.lastActivity + this.idleTimeoutMs);
  }

  /** Grants more credit when half is spent, but only while the client's connection drains. */
  private topUp(): void {
    const outstanding = this.granted - this.received;
    if (outstanding > this.credit / 2 || this.waitingForDrain || !this.control) return;
    if (this.sink.writable()) {
      this.grant();
      return;
    }
    this.waitingForDrain = true;
    this.sink
      .whenWritable()
      .then(() => {
        this.waitingForDrain = false;
        if (!this.done) {
          this.grant();
          this.touch();
        }
      })
      .catch((err: unknown) => {
        // Flow control broke (a sink or a control publish failed): end the stream as failed
        // rather than leave the worker waiting for credit that never comes.
        this.waitingForDrain = false;
        this.host.logger.error(
          { err, requestId: this.requestId, ...traceLogFields(this.sink.trace) },
          'stream flow control failed',
        );
        if (!this.done)
          this.stop(
            errorResponse(this.requestId, this.host.internalError('stream flow control failed')),
          );
      });
  }

  private grant(): void {
    const more = this.credit - (this.granted - this.received);
    if (more <= 0) return;
    this.granted += more;
    this.control?.grant(more);
  }

  private finish(final: GenApiResponse): void {
    if (this.done) return;
    this.cleanup();
    this.sink.push(final);
  }

  /** Ends the relay from the gateway side, telling the worker to stop. */
  stop(final: GenApiResponse | null): void {
    if (this.done) return;
    this.cleanup();
    this.control?.cancel();
    if (final) this.sink.push(final);
  }

  private cleanup(): void {
    this.done = true;
    this.settleFinished();
    this.host.wheel.cancel(this);
    this.sink.signal.removeEventListener('abort', this.onAbort);
    this.host.streams.ended(this);
    this.sink.streamEnded?.();
  }
}

/** The streams being relayed, by owner (the channel) and request_id: client cancel and drain. */
export class StreamRegistry {
  private readonly byOwner = new Map<object, Map<string, RelayedStream>>();

  constructor(
    private readonly stats: ExecutorStats,
    /** Told after each stream ends (the executor checks whether it is idle). */
    private readonly onEnded: () => void,
  ) {}

  /** Registers an accepted stream; one already under its request_id for this owner is stopped. */
  add(relay: RelayedStream): void {
    const owner = relay.sink.owner;
    // Stopped before the map is taken: its end drops the owner's map when it was the only stream,
    // and the new one must not go into that dropped map (uncancellable, counted forever).
    this.byOwner.get(owner)?.get(relay.key)?.stop(null);
    let byId = this.byOwner.get(owner);
    if (!byId) {
      byId = new Map();
      this.byOwner.set(owner, byId);
    }
    byId.set(relay.key, relay);
    this.stats.streams++;
  }

  /** Client cancel of a stream by request_id; false when no such stream runs for this owner. */
  cancel(owner: object, requestId: string): boolean {
    const stream = this.byOwner.get(owner)?.get(requestId);
    if (!stream) return false;
    stream.cancel();
    return true;
  }

  /** Ends every stream with `Stream interrupted` (can_retry); returns how many were cut. */
  interruptAll(): number {
    let cut = 0;
    for (const byId of [...this.byOwner.values()]) {
      for (const stream of [...byId.values()]) {
        stream.stop(errorResponse(stream.requestId, ERRORS.streamInterrupted, true));
        cut++;
      }
    }
    return cut;
  }

  /** A stream ended (it calls this from its cleanup). */
  ended(stream: RelayedStream): void {
    const byId = this.byOwner.get(stream.sink.owner);
    if (byId?.get(stream.key) !== stream) return;
    byId.delete(stream.key);
    if (byId.size === 0) this.byOwner.delete(stream.sink.owner);
    this.stats.streams--;
    this.onEnded();
  }
}

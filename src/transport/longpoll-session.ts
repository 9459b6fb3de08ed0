import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TimerEntry } from '../util/timer-wheel.js';
import type { EncodedFrame } from '../wire/serializer.js';
import type { Connection, TransportSession } from './host.js';
import type { LongPollTransport } from './longpoll.js';
import { BacklogWatch, type Backlogged } from './slow-consumer.js';
import { DrainWaiters } from '../util/drain-waiters.js';

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'access-control-allow-origin': '*',
} as const;

/** Answers a LongPoll request with a JSON status body (unless it was answered or went away). */
export function sendStatus(
  res: ServerResponse,
  body: object,
  httpStatus = 200,
  extra: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(httpStatus, {
    ...JSON_HEADERS,
    ...extra,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Sessions live 1.5 windows past their last poll (Phoenix). */
export const EXPIRY_WINDOWS = 1.5;

/**
 * One LongPoll session: a buffer of outgoing text frames, at most one parked GET, and a single
 * wheel deadline that is either the parked GET's window or the session's expiry.
 */
export class LongPollSession<Init> implements Connection, TimerEntry, Backlogged {
  readonly transport = 'longpoll';
  readonly supportsBinary = false;
  readonly prefersBytes = false;
  timerSlot = -1;
  session!: TransportSession;
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private parked: ServerResponse | null = null;
  private parkedAt = 0;
  private lastPollAt: number;
  private flushScheduled = false;
  /** Created on the first backlog over maxBufferedBytes. */
  private watch: BacklogWatch | null = null;
  /** Blocked streams waiting for a poll to take the buffer; created on the first wait. */
  private drainWaiters: DrainWaiters | null = null;
  ended = false;

  constructor(
    readonly id: string,
    readonly token: string,
    private readonly transport_: LongPollTransport<Init>,
  ) {
    this.lastPollAt = transport_.clock();
  }

  get bufferedAmount(): number {
    return this.bufferedBytes;
  }

  whenBufferedAtMost(bytes: number, signal: AbortSignal): Promise<void> {
    if (this.bufferedBytes <= bytes || this.ended) return Promise.resolve();
    return (this.drainWaiters ??= new DrainWaiters()).wait(bytes, signal);
  }

  send(frame: EncodedFrame): void {
    if (this.ended || typeof frame !== 'string') return;
    this.buffer.push(frame);
    // The limit is in bytes, as on WebSocket: a string's length counts UTF-16 units, not bytes.
    const bytes = Buffer.byteLength(frame);
    this.bufferedBytes += bytes;
    this.watch?.wrote(bytes);
    const { options, wheel } = this.transport_.host;
    if (this.bufferedBytes > options.maxBufferedBytes) {
      // A backlog is judged over time (the client may be between two polls), not by one write.
      const watch = (this.watch ??= new BacklogWatch(wheel, options, this));
      if (watch.over(this.bufferedBytes)) return;
    }
    if (this.parked && !this.flushScheduled) {
      // Answer on the next turn so frames produced together leave in one response.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (this.parked && this.buffer.length > 0) this.answerParked(200);
      });
    }
  }

  /** The client does not poll what is queued for it: close the session rather than buffer on. */
  slowConsumer(why: 'grace' | 'hard'): void {
    const { options, stats, logger } = this.transport_.host;
    stats.slowConsumers++;
    logger.warn(
      {
        peer: this.session.peer.address,
        buffered: this.bufferedBytes,
        limit: why === 'hard' ? options.maxBufferedBytesHard : options.maxBufferedBytes,
        graceMs: options.slowConsumerGraceMs,
      },
      why === 'hard'
        ? 'slow consumer: longpoll buffer over maxBufferedBytesHard, session closed'
        : 'slow consumer: longpoll backlog over maxBufferedBytes not polled within slowConsumerGraceMs, session closed',
    );
    this.session.close(this.transport_.host.closeCodes.normal, 'slow consumer');
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.watch?.stop();
    this.buffer = [];
    this.bufferedBytes = 0;
    this.drainWaiters?.releaseAll();
    if (this.parked) {
      const res = this.parked;
      this.parked = null;
      sendStatus(res, { status: 410 });
    }
    this.transport_.forget(this);
  }

  pauseInput(): void {
    // POSTs wait for their acks, which is the backpressure LongPoll needs.
  }

  resumeInput(): void {}

  /** A GET with this session's token. */
  poll(req: IncomingMessage, res: ServerResponse): void {
    this.lastPollAt = this.transport_.clock();
    if (this.parked) {
      // A newer poll replaces a parked one (e.g. the client gave up on it).
      const old = this.parked;
      this.parked = null;
      sendStatus(old, { status: 204, token: this.token, messages: [] });
    }
    if (this.buffer.length > 0) {
      this.respond(res, 200);
      this.scheduleDeadline();
      return;
    }
    this.parked = res;
    this.parkedAt = this.lastPollAt;
    this.scheduleDeadline();
    req.on('close', () => {
      if (this.parked !== res) return;
      this.parked = null;
      this.lastPollAt = this.transport_.clock();
      this.scheduleDeadline();
    });
  }

  onTimer(now: number): void {
    if (this.ended) return;
    const windowMs = this.transport_.windowMs;
    if (this.parked) {
      if (now - this.parkedAt >= windowMs) {
        this.answerParked(this.buffer.length > 0 ? 200 : 204);
        this.lastPollAt = now;
      }
      this.scheduleDeadline();
      return;
    }
    if (now - this.lastPollAt > windowMs * EXPIRY_WINDOWS) {
      this.transport_.host.logger.debug({ session: this.id }, 'longpoll session expired');
      this.session.close(this.transport_.host.closeCodes.normal, 'longpoll session expired');
      return;
    }
    this.scheduleDeadline();
  }

  private scheduleDeadline(): void {
    const windowMs = this.transport_.windowMs;
    const at = this.parked
      ? this.parkedAt + windowMs
      : this.lastPollAt + windowMs * EXPIRY_WINDOWS + 1;
    this.transport_.host.wheel.schedule(this, at);
  }

  private answerParked(status: 200 | 204): void {
    const res = this.parked;
    if (!res) return;
    this.parked = null;
    this.respond(res, status);
  }

  private respond(res: ServerResponse, status: 200 | 204): void {
    const messages = this.buffer;
    this.buffer = [];
    this.bufferedBytes = 0;
    sendStatus(res, { status: messages.length > 0 ? 200 : status, token: this.token, messages });
    this.drainWaiters?.drained(0);
  }
}

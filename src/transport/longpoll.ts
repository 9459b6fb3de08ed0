import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Assigns } from '../channel/types.js';
import { readBody, sendEmpty, sendPlain, STOPPING_REFUSAL } from '../http/responses.js';
import { decodeBase64 } from '../http/subprotocols.js';
import { authorize, originAllowed } from '../socket/handshake.js';
import type { SocketMount } from '../socket/mount.js';
import { CLOSE, type Connection, type Session, type SessionInit } from '../socket/session.js';
import { DrainWaiters } from '../util/drain-waiters.js';
import type { TimerEntry } from '../util/timer-wheel.js';
import type { EncodedFrame } from '../wire/serializer.js';
import { BacklogWatch, type Backlogged } from './slow-consumer.js';

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'access-control-allow-origin': '*',
} as const;

/**
 * The connect params of a new session: a 1.8 client whose session ended still appends the old
 * session token after its own params, so with two `token` params the last one is dropped and an
 * auth token named `token` reaches the connect hook as the client set it.
 */
function withoutSessionToken(query: string): string {
  const params = new URLSearchParams(query);
  const tokens = params.getAll('token');
  if (tokens.length < 2) return query;
  params.delete('token');
  for (const token of tokens.slice(0, -1)) params.append('token', token);
  return params.toString();
}

function sendStatus(
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
const EXPIRY_WINDOWS = 1.5;

/**
 * One LongPoll session: a buffer of outgoing text frames, at most one parked GET, and a single
 * wheel deadline that is either the parked GET's window or the session's expiry.
 */
class LongPollSession<A extends Assigns> implements Connection, TimerEntry, Backlogged {
  readonly transport = 'longpoll';
  readonly supportsBinary = false;
  readonly prefersBytes = false;
  timerSlot = -1;
  session!: Session<A>;
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
    private readonly transport_: LongPollTransport<A>,
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
    const { options, gateway } = this.transport_.mount;
    if (this.bufferedBytes > options.maxBufferedBytes) {
      // A backlog is judged over time (the client may be between two polls), not by one write.
      const watch = (this.watch ??= new BacklogWatch(gateway.wheel, options, this));
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
    const { options, gateway } = this.transport_.mount;
    gateway.stats.slowConsumers++;
    gateway.logger.warn(
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
    this.session.close(CLOSE.normal, 'slow consumer');
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
      this.transport_.mount.gateway.logger.debug({ session: this.id }, 'longpoll session expired');
      this.session.close(CLOSE.normal, 'longpoll session expired');
      return;
    }
    this.scheduleDeadline();
  }

  private scheduleDeadline(): void {
    const windowMs = this.transport_.windowMs;
    const at = this.parked
      ? this.parkedAt + windowMs
      : this.lastPollAt + windowMs * EXPIRY_WINDOWS + 1;
    this.transport_.mount.gateway.wheel.schedule(this, at);
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

/**
 * Serves `<mount>/longpoll` as Phoenix's LongPoll transport does (protocol/phoenix.md §LongPoll):
 * GET without a valid token creates a session (410 + token), GET with one long-polls (200/204),
 * POST publishes ndjson lines (or one frame) and answers once each was dispatched (408 when one
 * takes longer than the window), OPTIONS answers CORS preflights.
 */
export class LongPollTransport<A extends Assigns> {
  readonly path: string;
  readonly windowMs: number;
  private readonly sessions = new Map<string, LongPollSession<A>>();

  constructor(readonly mount: SocketMount<A>) {
    this.path = mount.options.path + mount.options.longpoll!.path;
    this.windowMs = mount.options.longpoll!.windowMs;
  }

  clock(): number {
    return this.mount.gateway.wheel.clock();
  }

  get size(): number {
    return this.sessions.size;
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    if (req.method === 'OPTIONS') {
      sendEmpty(res, 200, {
        'access-control-allow-origin': '*',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '',
        'access-control-allow-methods': 'get, post, options',
        'access-control-max-age': '3600',
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'POST') {
      sendEmpty(res, 400);
      return;
    }
    if (!originAllowed(this.mount, req)) {
      sendStatus(res, { status: 403 });
      return;
    }
    const token = this.tokenOf(req, query);
    const id = this.mount.gateway.tokens.verify(token);
    const lp = id === null ? undefined : this.sessions.get(id);
    if (req.method === 'GET') {
      if (lp) lp.poll(req, res);
      else await this.createSession(req, res, withoutSessionToken(query));
      return;
    }
    if (!lp) {
      req.resume();
      sendStatus(res, { status: 410 });
      return;
    }
    await this.publish(req, res, lp);
  }

  /**
   * The header (1.9 clients) wins over the `token` query param (1.8 clients). A 1.8 client
   * appends the session token after its own params, which may hold a `token` of their own (the
   * usual name of an auth token): the last one is the session's, as Plug reads it.
   */
  private tokenOf(req: IncomingMessage, query: string): string | undefined {
    const header = req.headers['x-phoenix-longpoll-token'];
    if (typeof header === 'string' && header !== '') return header;
    const all = new URLSearchParams(query).getAll('token');
    return all.length === 0 ? undefined : all[all.length - 1];
  }

  /** A new session while the gateway stops: 503 (the JS client retries, as after any server error). */
  private refuseStopping(res: ServerResponse): void {
    sendPlain(res, 503, STOPPING_REFUSAL, { 'access-control-allow-origin': '*' });
  }

  private async createSession(
    req: IncomingMessage,
    res: ServerResponse,
    query: string,
  ): Promise<void> {
    if (this.mount.closed) {
      // Stopping (a drain): no connect hook runs; existing sessions go on polling.
      this.refuseStopping(res);
      return;
    }
    const header = req.headers['x-phoenix-authtoken'];
    const authToken = this.mount.options.authToken && typeof header === 'string' ? header : null;
    const result = await authorize(this.mount, req, 'longpoll', this.path, query, authToken);
    if (!result.ok) {
      this.mount.gateway.logger.info(
        { status: result.status, reason: result.reason, transport: 'longpoll' },
        'connection refused',
      );
      if (result.status >= 500) {
        // Empty body: the JS client retries, as after any server error.
        sendEmpty(res, result.status, { 'access-control-allow-origin': '*', ...result.headers });
      } else {
        // The client understands only 403 in the body; the HTTP status keeps a custom one (429).
        sendStatus(
          res,
          { status: 403 },
          result.status === 403 ? 200 : result.status,
          result.headers,
        );
      }
      return;
    }
    if (this.mount.closed) {
      this.refuseStopping(res);
      return;
    }
    this.open(result.init, res, result.headers);
  }

  private open(
    init: SessionInit<A>,
    res: ServerResponse,
    headers?: Readonly<Record<string, string>>,
  ): void {
    const { id, token } = this.mount.gateway.tokens.issue();
    const lp = new LongPollSession(id, token, this);
    lp.session = this.mount.createSession(lp, init);
    this.sessions.set(id, lp);
    this.mount.gateway.stats.longpollSessions++;
    this.mount.gateway.wheel.schedule(lp, this.clock() + this.windowMs * EXPIRY_WINDOWS + 1);
    sendStatus(res, { status: 410, token, messages: [] }, 200, headers);
  }

  /** @internal called when a LongPoll session ends for any reason. */
  forget(lp: LongPollSession<A>): void {
    this.mount.gateway.wheel.cancel(lp);
    if (this.sessions.delete(lp.id)) this.mount.gateway.stats.longpollSessions--;
  }

  private async publish(
    req: IncomingMessage,
    res: ServerResponse,
    lp: LongPollSession<A>,
  ): Promise<void> {
    const { options } = this.mount;
    const body = await readBody(req, options.longpoll!.maxBodyBytes);
    if (body === null) {
      sendStatus(res, { status: 413 }, 413, { connection: 'close' });
      return;
    }
    const ndjson = (req.headers['content-type'] ?? '').includes('application/x-ndjson');
    const text = body.toString('utf8');
    const lines = ndjson ? text.split(/\r?\n/).slice(0, options.longpoll!.maxBatchLines) : [text];
    for (const line of lines) {
      if (ndjson && line === '') continue;
      const session = lp.session;
      if (Buffer.byteLength(line) > options.maxFrameSize) {
        this.mount.gateway.stats.invalidFrames++;
        session.close(CLOSE.tooLarge, 'frame too large');
        sendStatus(res, { status: 413 }, 413);
        return;
      }
      const binary = ndjson && line[0] !== '[' && line[0] !== '{';
      let pending: Promise<void> | undefined;
      if (binary) {
        const decoded = decodeBase64(line);
        if (decoded === null) {
          this.mount.gateway.stats.invalidFrames++;
          session.close(CLOSE.invalidFrame, 'ndjson line is neither a JSON frame nor base64');
        } else {
          pending = session.receive(decoded, true);
        }
      } else {
        pending = session.receive(line, false);
      }
      if (pending) {
        if (!(await this.acked(pending))) {
          sendStatus(res, { status: 408 });
          return;
        }
      }
      if (session.closed) {
        this.answerClosed(res, session.closeCode);
        return;
      }
    }
    sendStatus(res, { status: 200 });
  }

  /** The POST's answer when its session ended while dispatching it. */
  private answerClosed(res: ServerResponse, code: number | null): void {
    if (code === CLOSE.invalidFrame) sendStatus(res, { status: 400, reason: 'invalid frame' }, 400);
    else sendStatus(res, { status: 410 });
  }

  /** Waits for a dispatch queued behind a pending join, at most one window. */
  private acked(pending: Promise<void>): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), this.windowMs);
      pending.then(
        () => {
          clearTimeout(timer);
          resolve(true);
        },
        (err: unknown) => {
          // The frame was not dispatched: answer as for a frame that was not acked in time.
          clearTimeout(timer);
          this.mount.gateway.logger.error({ err }, 'longpoll frame dispatch failed');
          resolve(false);
        },
      );
    });
  }

  close(): void {
    for (const lp of [...this.sessions.values()])
      lp.session.close(CLOSE.drain, 'server shutting down');
  }
}

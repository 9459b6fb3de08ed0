import type { Logger } from 'pino';
import { ChannelInstance, TERMINATE, type ChannelHost } from '../channel/instance.js';
import type { Broadcast, PubSub } from '../channel/pubsub.js';
import type { ChannelRouter } from '../channel/router.js';
import type { Assigns, PeerAddress, Reply, SocketInfo, TransportName } from '../channel/types.js';
import type { Params } from '../http/query.js';
import type { Presence } from '../presence/presence.js';
import type { TimerEntry, TimerWheel } from '../util/timer-wheel.js';
import { TokenExpiry } from './token-expiry.js';
import { FrameEncodeError, PHX, type InboundMessage, type Ref } from '../wire/message.js';
import type { EncodedFrame, ProtocolVersion, Serializer } from '../wire/serializer.js';
import type { GatewayStats } from './stats.js';
import type { Telemetry } from '../telemetry/events.js';
import type { InboundByteRateOptions, TokenRefresher } from '../config/socket-options.js';
import {
  MESSAGE_POLICY,
  MessageRate,
  type MessageRateOptions,
} from '../ratelimit/message-limit.js';

/** The transport side of a session: a WebSocket, or a LongPoll session. */
export interface Connection {
  readonly transport: TransportName;
  /** False for LongPoll, which cannot carry server → client binary frames. */
  readonly supportsBinary: boolean;
  /** True when text frames are best handed over as UTF-8 bytes (shared by a fan-out). */
  readonly prefersBytes: boolean;
  /** Bytes queued towards the client and not yet sent. */
  readonly bufferedAmount: number;
  /** Resolves once `bufferedAmount` is at most `bytes` (woken by the transport's drain events) or `signal` aborts. */
  whenBufferedAtMost(bytes: number, signal: AbortSignal): Promise<void>;
  send(frame: EncodedFrame, textBytes?: Buffer): void;
  /** Closes the connection; the transport then calls `session.teardown()`. */
  close(code: number, reason: string): void;
  pauseInput(): void;
  resumeInput(): void;
}

/** Close codes the gateway uses (protocol/phoenix.md §Close codes). */
export const CLOSE = {
  normal: 1000,
  disconnect: 1001,
  idleTimeout: 1002,
  invalidFrame: 1011,
  /** An internal failure while handling one of the socket's frames (the same code as Phoenix). */
  internalError: 1011,
  tooLarge: 1009,
  drain: 1012,
  /** Policy violation: a flood of rate-limited messages, or client bytes over inboundByteRate. */
  flood: 1008,
  /**
   * The token the socket connected with expired (protocol/phoenix.md §Close codes). An abnormal
   * close, so Phoenix clients reconnect, with fresh params from their `params` function.
   */
  tokenExpired: 4001,
} as const;

/** Everything a session shares with the other sessions of its socket mount. */
export interface SessionContext<A extends Assigns> {
  readonly router: ChannelRouter<A>;
  readonly pubsub: PubSub;
  readonly presence: Presence;
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  readonly stats: GatewayStats;
  readonly telemetry: Telemetry;
  readonly maxChannels: number;
  readonly joinTimeoutMs: number;
  readonly maxQueuedFrames: number;
  readonly messageRate: Required<MessageRateOptions> | null;
  /** Client bytes per socket, checked before parsing (null: unlimited). */
  readonly inboundByteRate: Required<InboundByteRateOptions> | null;
  /** Largest payload a channel may broadcast. */
  readonly maxBroadcastBytes: number;
  /** Handles `access_token` pushed on the `phoenix` topic (null: not offered). */
  readonly refreshToken: TokenRefresher | null;
  onTeardown(session: Session<A>): void;
}

export interface SessionInit<A extends Assigns> {
  readonly id: string | null;
  readonly assigns: A;
  readonly params: Params;
  readonly peer: PeerAddress;
  readonly serializer: Serializer;
  /** When the connect token expires (epoch ms): the socket is closed then. Null: never. */
  readonly expiresAt?: number | null;
}

const UNMATCHED_TOPIC = { reason: 'unmatched topic' } as const;
/** The event a client pushes on the `phoenix` topic to give its socket a fresh token. */
const ACCESS_TOKEN = 'access_token';
const TOO_MANY_CHANNELS = { reason: 'too many channels joined' } as const;
const JOIN_TIMEOUT = { reason: 'join timeout' } as const;
const EMPTY = {} as const;

const CONNECTION_PREFIX = Math.floor(Math.random() * 36 ** 4).toString(36);
let connections = 0;

function isPromise(value: unknown): value is Promise<Reply> {
  return value instanceof Promise;
}

/** A join whose handler went async: the socket waits for it, up to the join timeout. */
class PendingJoin<A extends Assigns> implements TimerEntry {
  timerSlot = -1;
  private done = false;
  readonly promise: Promise<void>;
  private release!: () => void;

  constructor(
    private readonly session: Session<A>,
    readonly instance: ChannelInstance<A>,
    readonly message: InboundMessage,
    readonly previous: ChannelInstance<A> | undefined,
    /** performance.now() at the join frame, or -1 when no one listens to `channel_joined`. */
    readonly startedAt: number,
  ) {
    this.promise = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  settle(reply: Reply): void {
    if (this.finish())
      this.session.completeJoin(this.instance, this.message, reply, this.previous, this.startedAt);
  }

  onTimer(): void {
    if (this.finish()) this.session.joinTimedOut(this);
  }

  /** The socket closed while the join was pending. */
  abandon(): void {
    if (this.finish()) this.instance.abandon(TERMINATE.closed);
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    this.session.wheel.cancel(this);
    this.session.joinSettled(this);
    this.release();
    return true;
  }
}

/**
 * One client connection, whatever its transport: decodes frames, processes them strictly in
 * order (a pending join holds the frames behind it, as in Phoenix), routes them to channels with
 * join_ref fencing, and encodes everything the channels send.
 */
export class Session<A extends Assigns = Assigns> implements ChannelHost<A>, SocketInfo<A> {
  readonly channels = new Map<string, ChannelInstance<A>>();
  readonly id: string | null;
  readonly assigns: A;
  readonly params: Params;
  readonly peer: PeerAddress;
  readonly serializer: Serializer;
  readonly logger: Logger;
  readonly connectionId = `${CONNECTION_PREFIX}.${(++connections).toString(36)}`;
  closed = false;
  /** The close code when the gateway closed the connection (null: open, or closed by the client). */
  closeCode: number | null = null;
  /** The reason given with `closeCode` (for `socket_closed` telemetry). */
  private closeReason: string | null = null;
  /** Bytes of the frame being dispatched (handlers see it as channel.messageSize). */
  private frameSize = 0;
  private tail: Promise<void> | null = null;
  private queued = 0;
  private paused = false;
  private joining: PendingJoin<A> | null = null;
  /** Created on the first rate-limited message (idle sockets carry none). */
  private rate: MessageRate | null = null;
  /** The inbound byte bucket: bytes left (-1 until the first frame) and when it was last filled. */
  private byteTokens = -1;
  private byteStamp = 0;
  /** Armed while the socket's token has an expiry. */
  private expiry: TokenExpiry | null = null;

  constructor(
    private readonly ctx: SessionContext<A>,
    readonly connection: Connection,
    init: SessionInit<A>,
  ) {
    this.id = init.id;
    this.assigns = init.assigns;
    this.params = init.params;
    this.peer = init.peer;
    this.serializer = init.serializer;
    this.logger = ctx.logger;
    ctx.stats.sockets++;
    if (init.expiresAt != null) this.extendExpiry(init.expiresAt);
  }

  /** Moves the socket's token expiry to `expiresAt` (epoch ms); null: never expires. */
  extendExpiry(expiresAt: number | null): void {
    if (expiresAt === null) {
      this.expiry?.cancel();
      this.expiry = null;
      return;
    }
    this.expiry ??= new TokenExpiry(this, this.ctx.wheel);
    this.expiry.arm(expiresAt);
  }

  /** @internal The token expiry fired. */
  tokenExpired(): void {
    this.ctx.stats.tokenExpired++;
    this.logger.info({ id: this.id, peer: this.peer.address }, 'socket token expired, closing');
    this.close(CLOSE.tokenExpired, 'token expired');
  }

  get info(): SocketInfo<A> {
    return this;
  }

  get transport(): TransportName {
    return this.connection.transport;
  }

  get vsn(): ProtocolVersion {
    return this.serializer.vsn;
  }

  get bufferedAmount(): number {
    return this.connection.bufferedAmount;
  }

  whenBufferedAtMost(bytes: number, signal: AbortSignal): Promise<void> {
    return this.connection.whenBufferedAtMost(bytes, signal);
  }

  get maxBroadcastBytes(): number {
    return this.ctx.maxBroadcastBytes;
  }

  get pubsub(): PubSub {
    return this.ctx.pubsub;
  }

  get telemetry(): Telemetry {
    return this.ctx.telemetry;
  }

  get wheel(): TimerWheel {
    return this.ctx.wheel;
  }

  // ---- inbound ----------------------------------------------------------------------------

  /**
   * Handles one client frame. Returns a promise only when the frame had to wait behind a
   * pending join; it resolves once the frame has been dispatched (LongPoll acks on it). A frame
   * waiting its turn is decoded only then, so even a malformed one keeps its place in line.
   */
  receive(data: Buffer | string, isBinary: boolean): Promise<void> | undefined {
    if (this.closed) return undefined;
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const stats = this.ctx.stats;
    stats.messagesIn++;
    stats.bytesIn += size;
    if (!this.withinByteRate(size)) return undefined;
    if (this.tail !== null) return this.enqueue(data, isBinary);
    const message = this.decode(data, isBinary);
    if (message === null) return undefined;
    const pending = this.guardedDispatch(message);
    return pending ? this.block(pending) : undefined;
  }

  /**
   * The socket's fault boundary: channel callbacks are guarded in ChannelInstance, so an error
   * here is a defect in handling the frame. This socket's state is then unknown: it is closed
   * (1011, as Phoenix does when a socket process crashes) and nothing else is affected.
   */
  private guardedDispatch(message: InboundMessage): Promise<void> | undefined {
    try {
      return this.dispatch(message);
    } catch (err) {
      this.fail(err, message.topic);
      return undefined;
    }
  }

  /** @internal Logs and counts an internal failure, then closes this socket (1011). */
  fail(err: unknown, topic: string | null): void {
    if (this.closed) {
      this.logger.error({ err, id: this.id, peer: this.peer.address, topic }, 'socket failed');
      return;
    }
    this.ctx.stats.internalErrors++;
    this.logger.error(
      { err, id: this.id, peer: this.peer.address, topic },
      'handling a frame failed, closing the socket',
    );
    this.close(CLOSE.internalError, 'internal error');
  }

  /**
   * The inbound byte rate, before anything is parsed: a frame the socket's bucket cannot pay
   * for closes the socket (1008 "byte rate exceeded"), so a client flooding large frames costs
   * its own connection and never the parse time of other clients.
   */
  private withinByteRate(size: number): boolean {
    const rate = this.ctx.inboundByteRate;
    if (rate === null) return true;
    const now = this.ctx.wheel.clock();
    if (this.byteTokens < 0) {
      this.byteTokens = rate.burstBytes;
    } else {
      const refill = ((now - this.byteStamp) * rate.bytesPerSecond) / 1000;
      this.byteTokens = Math.min(rate.burstBytes, this.byteTokens + refill);
    }
    this.byteStamp = now;
    if (size <= this.byteTokens) {
      this.byteTokens -= size;
      return true;
    }
    this.ctx.stats.floods++;
    this.logger.warn(
      { peer: this.peer.address, id: this.id, size, bytesPerSecond: rate.bytesPerSecond },
      'inbound byte rate exceeded, closing the socket',
    );
    this.close(CLOSE.flood, 'byte rate exceeded');
    return false;
  }

  /** Decodes a frame; an undecodable one closes the connection (1011) and gives null. */
  private decode(data: Buffer | string, isBinary: boolean): InboundMessage | null {
    this.frameSize = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    try {
      return this.serializer.decode(data, isBinary);
    } catch (err) {
      this.ctx.stats.invalidFrames++;
      this.logger.warn(
        { err: (err as Error).message, peer: this.peer.address },
        'undecodable frame, closing',
      );
      this.close(CLOSE.invalidFrame, (err as Error).message);
      return null;
    }
  }

  private enqueue(data: Buffer | string, isBinary: boolean): Promise<void> {
    this.queued++;
    if (this.queued >= this.ctx.maxQueuedFrames && !this.paused) {
      this.paused = true;
      this.connection.pauseInput();
    }
    const next = this.tail!.then(() => {
      this.queued--;
      if (this.closed) return undefined;
      const message = this.decode(data, isBinary);
      return message === null ? undefined : this.guardedDispatch(message);
    });
    return this.block(next);
  }

  /**
   * Makes `pending` the tail that later frames wait for. The tail never rejects: a failure closes
   * the socket (1011) and the frames behind it are dropped (the socket is closed), so neither an
   * unhandled rejection nor a queue stuck on a rejected tail can follow.
   */
  private block(pending: Promise<void>): Promise<void> {
    const settled = (): void => {
      if (this.tail !== tail) return;
      this.tail = null;
      if (this.paused) {
        this.paused = false;
        this.connection.resumeInput();
      }
    };
    const tail: Promise<void> = pending.then(settled, (err: unknown) => {
      this.fail(err, null);
      settled();
    });
    this.tail = tail;
    return tail;
  }

  private dispatch(message: InboundMessage): Promise<void> | undefined {
    const { topic, event } = message;
    if (event === PHX.heartbeat && topic === PHX.heartbeatTopic) {
      this.writeReplyFrame(null, message.ref, topic, 'ok', EMPTY);
      return undefined;
    }
    if (event === ACCESS_TOKEN && topic === PHX.heartbeatTopic && this.ctx.refreshToken !== null)
      return this.withinRate(message) ? this.refreshToken(message) : undefined;
    // Heartbeats and leaves are never limited: liveness and clean-up must always work.
    if (event !== PHX.leave && !this.withinRate(message)) return undefined;
    if (event === PHX.join) return this.join(message);
    const channel = this.channels.get(topic);
    if (event === PHX.leave) {
      if (!channel) this.writeReplyFrame(message.joinRef, message.ref, topic, 'ok', EMPTY);
      else if (this.fenced(channel, message)) channel.handleLeave(message.ref);
      return undefined;
    }
    if (!channel) {
      this.writeReplyFrame(null, message.ref, topic, 'error', UNMATCHED_TOPIC);
    } else if (this.fenced(channel, message)) {
      channel.handleMessage(event, message.payload, message.ref, this.frameSize);
    }
    return undefined;
  }

  /**
   * The per-socket message rate: an excess message is answered `{"reason":"rate_limited", ...}`
   * and dropped; a flood of them closes the socket (1008 "message flood").
   */
  private withinRate(message: InboundMessage): boolean {
    const options = this.ctx.messageRate;
    if (options === null) return true;
    const rate = (this.rate ??= new MessageRate(options));
    const verdict = rate.check(this.ctx.wheel.clock());
    if (verdict === 'ok') return true;
    this.ctx.stats.rateLimitedMessages++;
    if (verdict === 'flood') {
      this.ctx.stats.floods++;
      this.logger.warn(
        { peer: this.peer.address, id: this.id },
        'message flood, closing the socket',
      );
      this.close(CLOSE.flood, 'message flood');
      return false;
    }
    const { decision } = rate;
    const joinRef =
      message.event === PHX.join
        ? message.joinRef
        : (this.channels.get(message.topic)?.joinRef ?? null);
    this.writeReplyFrame(joinRef, message.ref, message.topic, 'error', {
      reason: 'rate_limited',
      policy: MESSAGE_POLICY,
      limit: decision.limit,
      window_ms: decision.windowMs,
      remaining: decision.remaining,
      reset_ms: decision.resetMs,
      retry_after_ms: decision.retryAfterMs,
    });
    return false;
  }

  /** A message reaches a channel only with a null join_ref or exactly the stored one. */
  private fenced(channel: ChannelInstance<A>, message: InboundMessage): boolean {
    if (message.joinRef === null || message.joinRef === channel.storedJoinRef) return true;
    this.logger.debug(
      { topic: message.topic, joinRef: message.joinRef },
      'stale join_ref, message dropped',
    );
    return false;
  }

  // ---- join -------------------------------------------------------------------------------

  /**
   * A new token pushed by the client: checked like the connect's, it moves the socket's expiry.
   * Frames behind it wait (as behind a join), so a message sent after a refresh is never judged
   * under the old expiry.
   */
  private async refreshToken(message: InboundMessage): Promise<void> {
    const token = (message.payload as { access_token?: unknown } | null)?.access_token;
    let verdict: { expiresAt: number | null } | { reason: string };
    if (typeof token !== 'string' || token === '') verdict = { reason: 'access_token required' };
    else {
      try {
        verdict = await this.ctx.refreshToken!(token, this.assigns);
      } catch (err) {
        this.logger.error({ err, id: this.id }, 'token refresh failed');
        verdict = { reason: 'refresh failed' };
      }
    }
    if (this.closed) return;
    if ('reason' in verdict) {
      this.writeReplyFrame(null, message.ref, message.topic, 'error', { reason: verdict.reason });
      return;
    }
    this.extendExpiry(verdict.expiresAt);
    this.writeReplyFrame(null, message.ref, message.topic, 'ok', EMPTY);
  }

  private join(message: InboundMessage): Promise<void> | undefined {
    const { topic } = message;
    const previous = this.channels.get(topic);
    // Duplicate join: the old channel goes first (so it does not count against the limit);
    // its phx_close follows the new join's reply.
    if (previous) previous.shutdown(TERMINATE.duplicateJoin, null);
    const handler = this.ctx.router.match(topic);
    const startedAt = this.ctx.telemetry.has('channel_joined') ? performance.now() : -1;
    if (!handler) {
      this.writeReplyFrame(null, message.ref, topic, 'error', UNMATCHED_TOPIC);
      if (previous) this.writeControl(previous, PHX.close, EMPTY);
      if (startedAt >= 0) this.joinRefused(topic, UNMATCHED_TOPIC.reason, startedAt);
      return undefined;
    }
    if (this.channels.size >= this.ctx.maxChannels) {
      this.writeReplyFrame(message.joinRef, message.ref, topic, 'error', TOO_MANY_CHANNELS);
      if (previous) this.writeControl(previous, PHX.close, EMPTY);
      if (startedAt >= 0) this.joinRefused(topic, TOO_MANY_CHANNELS.reason, startedAt);
      return undefined;
    }
    const instance = new ChannelInstance<A>(topic, handler, this, message.joinRef);
    const outcome = instance.runJoin(message.payload, message.ref);
    if (!isPromise(outcome)) {
      this.completeJoin(instance, message, outcome, previous, startedAt);
      return undefined;
    }
    const pending = new PendingJoin(this, instance, message, previous, startedAt);
    this.joining = pending;
    this.ctx.wheel.schedule(pending, this.ctx.wheel.clock() + this.ctx.joinTimeoutMs);
    // runJoin turns a failing join() into its error reply, so a rejection here is a defect in
    // completing the join: the socket's state is unknown, so it goes (1011).
    outcome.then((reply) => pending.settle(reply)).catch((err: unknown) => this.fail(err, topic));
    return pending.promise;
  }

  /** @internal Writes the join reply and, on success, makes the channel live. */
  completeJoin(
    instance: ChannelInstance<A>,
    message: InboundMessage,
    reply: Reply,
    previous: ChannelInstance<A> | undefined,
    startedAt: number,
  ): void {
    if (this.closed) {
      instance.abandon(TERMINATE.closed);
      return;
    }
    if (startedAt >= 0) this.joinReplied(instance.topic, reply, startedAt);
    const joined = reply.status === 'ok';
    if (joined) {
      this.channels.set(instance.topic, instance);
      this.ctx.stats.channels++;
      if (this.connection.transport === 'longpoll') this.ctx.stats.longpollChannels++;
    } else {
      instance.discard();
    }
    this.writeReplyFrame(
      message.joinRef,
      message.ref,
      instance.topic,
      reply.status,
      reply.response,
    );
    if (previous) this.writeControl(previous, PHX.close, EMPTY);
    if (joined) instance.activate();
  }

  /** @internal */
  joinTimedOut(pending: PendingJoin<A>): void {
    const { instance, message, previous } = pending;
    instance.abandon(TERMINATE.joinTimeout);
    this.logger.warn(
      { topic: instance.topic, timeoutMs: this.ctx.joinTimeoutMs },
      'channel join timed out',
    );
    this.writeReplyFrame(message.joinRef, message.ref, instance.topic, 'error', JOIN_TIMEOUT);
    if (previous) this.writeControl(previous, PHX.close, EMPTY);
    if (pending.startedAt >= 0)
      this.joinRefused(instance.topic, JOIN_TIMEOUT.reason, pending.startedAt);
  }

  /** `channel_joined` for a join's reply; an error reply's `reason` is the event's. */
  private joinReplied(topic: string, reply: Reply, startedAt: number): void {
    if (reply.status === 'ok') {
      this.ctx.telemetry.emit('channel_joined', {
        topic,
        result: 'ok',
        durationMs: performance.now() - startedAt,
        transport: this.connection.transport,
      });
      return;
    }
    const reason = (reply.response as { reason?: unknown } | null)?.reason;
    this.joinRefused(topic, typeof reason === 'string' ? reason : reply.status, startedAt);
  }

  private joinRefused(topic: string, reason: string, startedAt: number): void {
    this.ctx.telemetry.emit('channel_joined', {
      topic,
      result: 'error',
      reason,
      durationMs: performance.now() - startedAt,
      transport: this.connection.transport,
    });
  }

  /** @internal */
  joinSettled(pending: PendingJoin<A>): void {
    if (this.joining === pending) this.joining = null;
  }

  // ---- outbound (ChannelHost) --------------------------------------------------------------

  writePush(channel: ChannelInstance<A>, event: string, payload: unknown): void {
    if (this.closed) return;
    let frame: EncodedFrame;
    try {
      frame = this.serializer.encodeMessage(channel.joinRef, null, channel.topic, event, payload);
    } catch (err) {
      this.dropped(err, channel.topic, event);
      return;
    }
    this.send(frame, channel.topic, event);
  }

  writeReply(channel: ChannelInstance<A>, ref: Ref, status: string, response: unknown): void {
    this.writeReplyFrame(channel.joinRef, ref, channel.topic, status, response);
  }

  writeControl(
    channel: ChannelInstance<A>,
    event: 'phx_close' | 'phx_error',
    payload: object,
  ): void {
    if (this.closed) return;
    const ref = channel.storedJoinRef;
    this.send(
      this.serializer.encodeMessage(ref, ref, channel.topic, event, payload),
      channel.topic,
      event,
    );
  }

  writeBroadcast(broadcast: Broadcast): void {
    if (this.closed) return;
    let frame: EncodedFrame;
    try {
      frame = broadcast.frame(this.serializer);
    } catch (err) {
      this.dropped(err, broadcast.topic, broadcast.event);
      return;
    }
    if (typeof frame === 'string' && this.connection.prefersBytes) {
      const bytes = broadcast.textBytes(this.serializer, frame);
      this.ctx.stats.messagesOut++;
      this.ctx.stats.bytesOut += bytes.length;
      this.connection.send(frame, bytes);
    } else {
      this.send(frame, broadcast.topic, broadcast.event);
    }
  }

  detach(channel: ChannelInstance<A>): void {
    if (this.channels.get(channel.topic) === channel) {
      this.channels.delete(channel.topic);
      this.ctx.stats.channels--;
      if (this.connection.transport === 'longpoll') this.ctx.stats.longpollChannels--;
      if (this.ctx.telemetry.has('channel_left'))
        this.ctx.telemetry.emit('channel_left', { topic: channel.topic });
    }
    this.ctx.pubsub.unsubscribe(channel.topic, channel);
    this.ctx.presence.untrackAll(channel);
  }

  private writeReplyFrame(
    joinRef: Ref,
    ref: Ref,
    topic: string,
    status: string,
    response: unknown,
  ): void {
    if (this.closed) return;
    let frame: EncodedFrame;
    try {
      frame = this.serializer.encodeReply(joinRef, ref, topic, status, response);
    } catch (err) {
      this.dropped(err, topic, PHX.reply);
      return;
    }
    this.send(frame, topic, PHX.reply);
  }

  private send(frame: EncodedFrame, topic: string, event: string): void {
    if (typeof frame !== 'string' && !this.connection.supportsBinary) {
      this.dropped(
        new FrameEncodeError(`${this.transport} cannot carry server binary frames`),
        topic,
        event,
      );
      return;
    }
    const stats = this.ctx.stats;
    stats.messagesOut++;
    stats.bytesOut += typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    this.connection.send(frame);
  }

  private dropped(err: unknown, topic: string, event: string): void {
    this.ctx.stats.droppedFrames++;
    this.logger.warn(
      { err: (err as Error).message, topic, event },
      'frame not sent: it cannot be encoded for this client',
    );
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** Closes the connection (code and reason go to the client) and ends every channel. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closeCode = code;
    this.closeReason = reason;
    this.connection.close(code, reason);
    this.teardown();
  }

  /**
   * The connection is gone: end every channel without writing anything. Idempotent, and it never
   * throws (transports call it from their close events): one channel failing to end does not
   * keep the others, the gauges or the registry from being cleaned up.
   */
  teardown(): void {
    if (this.closed) return;
    this.closed = true;
    this.expiry?.cancel();
    try {
      this.joining?.abandon();
    } catch (err) {
      this.logger.error({ err, id: this.id, peer: this.peer.address }, 'abandoning a join failed');
    }
    for (const channel of [...this.channels.values()]) {
      try {
        channel.shutdown(TERMINATE.closed, null);
      } catch (err) {
        this.logger.error(
          { err, id: this.id, peer: this.peer.address, topic: channel.topic },
          'ending a channel failed',
        );
      }
    }
    this.ctx.stats.sockets--;
    this.ctx.onTeardown(this);
    if (this.ctx.telemetry.has('socket_closed')) {
      const transport = this.connection.transport;
      this.ctx.telemetry.emit(
        'socket_closed',
        this.closeCode === null
          ? { transport }
          : { transport, code: this.closeCode, reason: this.closeReason ?? '' },
      );
    }
  }

  /** @internal A channel callback threw or rejected: logged with the socket, and counted. */
  channelError(channel: ChannelInstance<A>, err: unknown, message: string): void {
    this.ctx.stats.channelErrors++;
    this.logger.error({ err, topic: channel.topic, id: this.id, peer: this.peer.address }, message);
  }
}

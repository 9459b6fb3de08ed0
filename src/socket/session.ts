import type { Logger } from 'pino';
import { TERMINATE, type ChannelHost, type ChannelInstance } from '../channel/instance.js';
import type { Broadcast, PubSub } from '../channel/pubsub.js';
import type { Assigns, PeerAddress, SocketInfo, TransportName } from '../channel/types.js';
import type { Params } from '../http/query.js';
import type { MessageRate } from '../ratelimit/message-limit.js';
import type { Telemetry } from '../telemetry/events.js';
import type { Connection, TransportSession } from '../transport/host.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import { FrameEncodeError, PHX, type InboundMessage, type Ref } from '../wire/message.js';
import type { EncodedFrame, ProtocolVersion, Serializer } from '../wire/serializer.js';
import { CLOSE } from './close-codes.js';
import { decodeFrame, dispatchFrame, withinByteRate } from './inbound.js';
import type { PendingJoin } from './join.js';
import type { SessionContext, SessionInit } from './session-context.js';
import { TokenExpiry } from './token-expiry.js';

// Close codes and the session's context live in their own files; importers find them here too.
export { CLOSE } from './close-codes.js';
export type { SessionContext, SessionInit } from './session-context.js';

const CONNECTION_PREFIX = Math.floor(Math.random() * 36 ** 4).toString(36);
let connections = 0;

/**
 * One client connection, whatever its transport: decodes frames, processes them strictly in
 * order (a pending join holds the frames behind it, as in Phoenix), routes them to channels with
 * join_ref fencing, and encodes everything the channels send. Decoding and dispatch are in
 * inbound.ts, joins in join.ts, token refresh in token-refresh.ts; this file keeps the frame
 * queue, the outbound writes and the lifecycle.
 */
export class Session<A extends Assigns = Assigns>
  implements ChannelHost<A>, SocketInfo<A>, TransportSession
{
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
  /** @internal Bytes of the frame being dispatched (handlers see it as channel.messageSize). */
  frameSize = 0;
  private tail: Promise<void> | null = null;
  private queued = 0;
  private paused = false;
  /** @internal The join the socket's frames wait for. */
  joining: PendingJoin<A> | null = null;
  /** @internal Created on the first rate-limited message (idle sockets carry none). */
  rate: MessageRate | null = null;
  /** @internal The inbound byte bucket: bytes left (-1 until the first frame). */
  byteTokens = -1;
  /** @internal When the inbound byte bucket was last filled. */
  byteStamp = 0;
  /** Armed while the socket's token has an expiry. */
  private expiry: TokenExpiry | null = null;

  /** @internal What the session shares with its mount (read by inbound.ts and join.ts too). */
  readonly ctx: SessionContext<A>;

  constructor(
    ctx: SessionContext<A>,
    readonly connection: Connection,
    init: SessionInit<A>,
  ) {
    this.ctx = ctx;
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
    if (!withinByteRate(this, size)) return undefined;
    if (this.tail !== null) return this.enqueue(data, isBinary);
    const message = decodeFrame(this, data, isBinary);
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
      return dispatchFrame(this, message);
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

  private enqueue(data: Buffer | string, isBinary: boolean): Promise<void> {
    this.queued++;
    if (this.queued >= this.ctx.maxQueuedFrames && !this.paused) {
      this.paused = true;
      this.connection.pauseInput();
    }
    const next = this.tail!.then(() => {
      this.queued--;
      if (this.closed) return undefined;
      const message = decodeFrame(this, data, isBinary);
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

  /** @internal */
  writeReplyFrame(joinRef: Ref, ref: Ref, topic: string, status: string, response: unknown): void {
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

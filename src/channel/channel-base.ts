/**
 * The half of a channel instance that joins it, sends from it and ends it: the Channel API
 * handlers call (push, broadcast, reply, assigns, signal), the join, and `terminate`. The mailbox
 * that runs the handler's callbacks in order is the other half, ChannelInstance (instance.ts).
 */
import { setMaxListeners } from 'node:events';
import { InvalidArgumentError } from '../errors.js';
import type { Ref } from '../wire/message.js';
import { broadcastTooLarge, payloadOver } from './broadcast-size.js';
import { isReply, isThenable } from './callback-results.js';
import type { ChannelHost } from './host.js';
import type { Broadcast, Subscriber } from './pubsub.js';
import type {
  Assigns,
  Channel,
  ChannelHandler,
  Reply,
  ReplyRef,
  SocketInfo,
  StopReason,
  TerminateReason,
} from './types.js';

export const JOINING = 0;
export const JOINED = 1;
export const CLOSING = 2;
export const CLOSED = 3;
export type State = typeof JOINING | typeof JOINED | typeof CLOSING | typeof CLOSED;

export const TERMINATE = {
  left: { kind: 'left' },
  closed: { kind: 'closed' },
  duplicateJoin: { kind: 'duplicate_join' },
  joinTimeout: { kind: 'join_timeout' },
} as const satisfies Record<string, TerminateReason>;

export const JOIN_CRASHED: Reply = { status: 'error', response: { reason: 'join crashed' } };
export const EMPTY = {} as const;

/**
 * The reason every channel signal aborts with: one shared AbortError (\`abort()\` without a reason
 * builds a new DOMException, with its stack trace, for each channel that ends).
 */
export const CHANNEL_ENDED = new DOMException('The channel ended', 'AbortError');

/**
 * One joined topic on one socket, without its mailbox (ChannelInstance adds it): the state every
 * part of a channel reads, what a handler calls on its channel, the join and `terminate`.
 */
export abstract class ChannelBase<A extends Assigns = Assigns> implements Channel<A>, Subscriber {
  ref: Ref = null;
  messageSize = 0;
  protected state: State = JOINING;
  /** Pushes and broadcasts made inside join(), released by `activate` after the join reply. */
  protected deferred: (() => void)[] | null = null;
  protected controller: AbortController | null = null;
  private ownAssigns: A | null = null;
  private abandonedFor: TerminateReason | null = null;

  constructor(
    readonly topic: string,
    readonly handler: ChannelHandler<A>,
    protected readonly host: ChannelHost<A>,
    /** The join_ref as the client sent it; phx_close/phx_error carry this one. */
    readonly storedJoinRef: Ref,
  ) {}

  /** The channel's own join_ref: the join's join_ref, or its ref when the client sent null. */
  joinRef: Ref = null;

  get socket(): SocketInfo<A> {
    return this.host.info;
  }

  get assigns(): Readonly<A> {
    return this.ownAssigns ?? this.host.info.assigns;
  }

  get joined(): boolean {
    return this.state === JOINED;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      // Many in-flight requests may listen at once (gen_api): not a leak, so no warning.
      setMaxListeners(0, this.controller.signal);
      if (this.state >= CLOSING) this.controller.abort(CHANNEL_ENDED);
    }
    return this.controller.signal;
  }

  assign(values: Partial<A>): void {
    this.ownAssigns = { ...this.assigns, ...values };
  }

  push(event: string, payload: unknown = EMPTY): void {
    if (this.state === JOINING) {
      (this.deferred ??= []).push(() => this.push(event, payload));
      return;
    }
    if (this.state === CLOSED) {
      this.host.logger.debug({ topic: this.topic, event }, 'push on a closed channel dropped');
      return;
    }
    this.host.writePush(this, event, payload);
  }

  broadcast(event: string, payload: unknown = EMPTY): void {
    this.checkBroadcastSize(event, payload);
    if (this.state === JOINING) {
      (this.deferred ??= []).push(() => this.broadcast(event, payload));
      return;
    }
    this.host.pubsub.broadcast(this.topic, event, payload, null);
  }

  broadcastFrom(event: string, payload: unknown = EMPTY): void {
    this.checkBroadcastSize(event, payload);
    if (this.state === JOINING) {
      (this.deferred ??= []).push(() => this.broadcastFrom(event, payload));
      return;
    }
    this.host.pubsub.broadcast(this.topic, event, payload, this);
  }

  /**
   * A broadcast over maxBroadcastBytes throws at the caller before anything is sent: a huge
   * fan-out would cost every subscriber's connection, and the caller is the one to tell.
   */
  private checkBroadcastSize(event: string, payload: unknown): void {
    const limit = this.host.maxBroadcastBytes;
    if (payloadOver(payload, limit)) {
      this.host.logger.warn(
        { topic: this.topic, event, limit },
        'broadcast over maxBroadcastBytes refused',
      );
      throw broadcastTooLarge(this.topic, event, limit);
    }
  }

  replyRef(): ReplyRef {
    return { ref: this.ref, joinRef: this.joinRef };
  }

  reply(target: ReplyRef, answer: Reply): void {
    if (this.state !== JOINED && this.state !== CLOSING) return;
    this.host.writeReply(this, target.ref, answer.status, answer.response);
  }

  abstract stop(reason?: StopReason, reply?: Reply): void;

  /** A broadcast on the topic reached this channel (the mailbox decides what to do with it). */
  abstract deliver(broadcast: Broadcast): void;

  // ---- join -------------------------------------------------------------------------------

  /**
   * Runs the handler's join. Returns the reply to send (or a promise of it); a crash becomes
   * `join crashed`. A join that settles after it was abandoned (timeout, socket gone) and
   * succeeded gets `terminate` so its resources are released.
   */
  runJoin(payload: unknown, ref: Ref): Reply | Promise<Reply> {
    this.joinRef = this.storedJoinRef ?? ref;
    this.ref = ref;
    let result: unknown;
    try {
      result = this.handler.join(this.topic, payload, this);
    } catch (err) {
      return this.joinCrashed(err);
    }
    if (!isThenable(result)) return this.joinOutcome(result);
    return Promise.resolve(result).then(
      (value) => {
        const outcome = this.joinOutcome(value);
        if (this.abandonedFor !== null && outcome.status === 'ok')
          this.runTerminate(this.abandonedFor);
        return outcome;
      },
      (err: unknown) => this.joinCrashed(err),
    );
  }

  /** The join did not complete (timeout or socket closed): forget the channel. */
  abandon(reason: TerminateReason): void {
    this.abandonedFor = reason;
    this.state = CLOSED;
    this.deferred = null;
    this.controller?.abort(CHANNEL_ENDED);
  }

  /** The join was refused: drop anything it held back. */
  discard(): void {
    this.state = CLOSED;
    this.deferred = null;
  }

  private joinOutcome(value: unknown): Reply {
    if (value === undefined || value === null) return { status: 'ok', response: EMPTY };
    if (isReply(value))
      return value.response === undefined ? { status: value.status, response: EMPTY } : value;
    return this.joinCrashed(
      new InvalidArgumentError('join() must return ok(...), error(...) or nothing'),
    );
  }

  private joinCrashed(err: unknown): Reply {
    this.host.channelError(this, err, 'channel join crashed');
    return JOIN_CRASHED;
  }

  /** Runs `terminate`; its throw or rejection is logged and counted, and the teardown goes on. */
  protected runTerminate(reason: TerminateReason): void {
    const handler = this.handler;
    // An abandoned join stays CLOSED while its terminate runs: the client was already told the
    // join failed, so nothing it pushes or replies may reach the client.
    const done = (): void => {
      this.state = CLOSED;
    };
    const failed = (err: unknown): void => {
      this.state = CLOSED;
      this.host.channelError(this, err, 'channel terminate() failed');
    };
    try {
      if (!handler.terminate) {
        done();
        return;
      }
      const result = handler.terminate(reason, this);
      if (isThenable(result)) Promise.resolve(result).then(done, failed);
      else done();
    } catch (err) {
      failed(err);
    }
  }
}

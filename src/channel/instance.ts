import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../errors.js';
import type { Ref } from '../wire/message.js';
import type { Broadcast, PubSub, Subscriber } from './pubsub.js';
import { broadcastTooLarge, payloadOver } from './broadcast-size.js';
import type { Telemetry } from '../telemetry/events.js';
import {
  isGracefulStop,
  type Assigns,
  type Channel,
  type ChannelHandler,
  type Reply,
  type ReplyRef,
  type SocketInfo,
  type Stop,
  type StopReason,
  type TerminateReason,
} from './types.js';

/** What a channel needs from the socket session that owns it. */
export interface ChannelHost<A extends Assigns> {
  readonly info: SocketInfo<A>;
  readonly pubsub: PubSub;
  readonly logger: Logger;
  /** The gateway's telemetry (`channel_handled_in`). */
  readonly telemetry: Telemetry;
  /** Largest payload `broadcast()` accepts (the socket's maxBroadcastBytes). */
  readonly maxBroadcastBytes: number;
  writePush(channel: ChannelInstance<A>, event: string, payload: unknown): void;
  writeReply(channel: ChannelInstance<A>, ref: Ref, status: string, response: unknown): void;
  writeBroadcast(broadcast: Broadcast): void;
  /** phx_close / phx_error: both ref slots carry the join_ref the transport stored. */
  writeControl(
    channel: ChannelInstance<A>,
    event: 'phx_close' | 'phx_error',
    payload: object,
  ): void;
  /** Forgets the channel: session map, topic subscription, presence entries. */
  detach(channel: ChannelInstance<A>): void;
  /** A callback of `channel` threw or rejected: log it with the socket's context and count it. */
  channelError(channel: ChannelInstance<A>, err: unknown, message: string): void;
}

const JOINING = 0;
const JOINED = 1;
const CLOSING = 2;
const CLOSED = 3;
type State = typeof JOINING | typeof JOINED | typeof CLOSING | typeof CLOSED;

const IN = 0;
const OUT = 1;
const LEAVE = 2;
const STOP = 3;
const AFTER_JOIN = 4;

type MailItem =
  | {
      readonly kind: typeof IN;
      readonly event: string;
      readonly payload: unknown;
      readonly ref: Ref;
      readonly size: number;
    }
  | { readonly kind: typeof OUT; readonly event: string; readonly payload: unknown }
  | { readonly kind: typeof LEAVE; readonly ref: Ref }
  | { readonly kind: typeof STOP; readonly reason: StopReason; readonly reply: Reply | undefined }
  | { readonly kind: typeof AFTER_JOIN };

export const TERMINATE = {
  left: { kind: 'left' },
  closed: { kind: 'closed' },
  duplicateJoin: { kind: 'duplicate_join' },
  joinTimeout: { kind: 'join_timeout' },
} as const satisfies Record<string, TerminateReason>;

export const JOIN_CRASHED: Reply = { status: 'error', response: { reason: 'join crashed' } };
const CHANNEL_CRASH = { reason: 'channel_crash' } as const;
const EMPTY = {} as const;

const interceptCache = new WeakMap<object, ReadonlySet<string>>();
function interceptsOf(handler: ChannelHandler<never>): ReadonlySet<string> | null {
  if (!handler.intercept || handler.intercept.length === 0) return null;
  let set = interceptCache.get(handler);
  if (!set) {
    set = new Set(handler.intercept);
    interceptCache.set(handler, set);
  }
  return set;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function isReply(value: unknown): value is Reply {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { status?: unknown }).status === 'string'
  );
}

function isAbortError(err: unknown): boolean {
  return (
    err !== null && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError'
  );
}

function isStop(value: unknown): value is Stop {
  return value !== null && typeof value === 'object' && 'stop' in value;
}

/** A stop reason for the log: strings as they are, errors as `Name: message`, others as JSON. */
function describeReason(reason: StopReason): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return String(reason);
  try {
    return JSON.stringify(reason);
  } catch {
    return Object.prototype.toString.call(reason);
  }
}

/**
 * The reason every channel signal aborts with: one shared AbortError (\`abort()\` without a reason
 * builds a new DOMException, with its stack trace, for each channel that ends).
 */
const CHANNEL_ENDED = new DOMException('The channel ended', 'AbortError');

/**
 * One joined topic on one socket: the Phoenix channel process, without the process. Its mailbox
 * keeps the channel's messages in order; a handler that returns a promise holds only this
 * channel's mailbox. Errors thrown by handlers end here and crash this channel alone.
 */
export class ChannelInstance<A extends Assigns = Assigns> implements Channel<A>, Subscriber {
  ref: Ref = null;
  messageSize = 0;
  private state: State = JOINING;
  private busy = false;
  private mailbox: MailItem[] | null = null;
  private ownAssigns: A | null = null;
  private deferred: (() => void)[] | null = null;
  private controller: AbortController | null = null;
  private abandonedFor: TerminateReason | null = null;
  private readonly intercepts: ReadonlySet<string> | null;

  constructor(
    readonly topic: string,
    readonly handler: ChannelHandler<A>,
    private readonly host: ChannelHost<A>,
    /** The join_ref as the client sent it; phx_close/phx_error carry this one. */
    readonly storedJoinRef: Ref,
  ) {
    this.intercepts = interceptsOf(handler);
  }

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

  stop(reason: StopReason = 'normal', reply?: Reply): void {
    this.dispatch({ kind: STOP, reason, reply });
  }

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

  /** After the ok join reply is written: subscribe, release held pushes, run afterJoin. */
  activate(): void {
    if (this.state !== JOINING) return;
    this.state = JOINED;
    this.host.pubsub.subscribe(this.topic, this);
    const held = this.deferred;
    this.deferred = null;
    if (held) {
      // Pushes and broadcasts join() made: one that fails crashes this channel, as it would have
      // inside join().
      for (const action of held) {
        try {
          action();
        } catch (err) {
          this.crash(err);
          return;
        }
      }
    }
    if (this.handler.afterJoin) this.dispatch({ kind: AFTER_JOIN });
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

  // ---- inbound ----------------------------------------------------------------------------

  /** A client message for this channel (join_ref already checked); `size` is its frame's bytes. */
  handleMessage(event: string, payload: unknown, ref: Ref, size: number): void {
    if (this.busy) {
      (this.mailbox ??= []).push({ kind: IN, event, payload, ref, size });
      return;
    }
    if (this.state !== JOINED) return;
    this.busy = true;
    const pending = this.handleIn(event, payload, ref, size);
    if (pending) this.resumeAfter(pending);
    else this.drain();
  }

  handleLeave(ref: Ref): void {
    this.dispatch({ kind: LEAVE, ref });
  }

  /** Fastlane, unless this channel intercepts the event (then handleOut, in mailbox order). */
  deliver(broadcast: Broadcast): void {
    if (this.state !== JOINED) return;
    if (this.intercepts?.has(broadcast.event)) {
      this.dispatch({ kind: OUT, event: broadcast.event, payload: broadcast.payload });
    } else {
      this.host.writeBroadcast(broadcast);
    }
  }

  private dispatch(item: MailItem): void {
    if (this.busy) {
      (this.mailbox ??= []).push(item);
      return;
    }
    if (this.state !== JOINED) return;
    this.busy = true;
    const pending = this.execute(item);
    if (pending) this.resumeAfter(pending);
    else this.drain();
  }

  /** Runs queued items until one goes async (it resumes here when it settles) or none remain. */
  private drain(): void {
    let next: MailItem | undefined;
    while (this.state === JOINED && (next = this.mailbox?.shift()) !== undefined) {
      const pending = this.execute(next);
      if (pending) {
        this.resumeAfter(pending);
        return;
      }
    }
    this.busy = false;
    if (this.state !== JOINED) this.mailbox = null;
  }

  /**
   * Drains the mailbox once an async handler settled. `invoke` already turns a handler's
   * rejection into a crash, so a rejection here is a defect of ours (applying the result, or the
   * crash itself): it crashes the channel too, so the client is told and may rejoin.
   */
  private resumeAfter(pending: Promise<void>): void {
    pending
      .then(() => this.drain())
      .catch((err: unknown) => {
        this.busy = false;
        if (this.state === JOINED) this.crash(err);
        else this.host.logger.error({ err, topic: this.topic }, 'channel mailbox failed');
      });
  }

  /** Executes one item; returns a promise only when the handler went async. Never rejects. */
  private execute(item: MailItem): Promise<void> | undefined {
    switch (item.kind) {
      case IN:
        return this.handleIn(item.event, item.payload, item.ref, item.size);
      case OUT:
        return this.invoke(
          () => this.runHandleOut(item.event, item.payload),
          (result) => this.applyOut(result),
        );
      case LEAVE:
        this.host.writeReply(this, item.ref, 'ok', EMPTY);
        this.shutdown(TERMINATE.left, 'phx_close');
        return undefined;
      case STOP:
        this.applyStop(item.reason, item.reply, null);
        return undefined;
      case AFTER_JOIN:
        return this.invoke(
          () => this.handler.afterJoin!(this),
          () => undefined,
        );
    }
  }

  private handleIn(
    event: string,
    payload: unknown,
    ref: Ref,
    size: number,
  ): Promise<void> | undefined {
    this.ref = ref;
    this.messageSize = size;
    if (this.host.telemetry.has('channel_handled_in'))
      return this.timedHandleIn(event, payload, ref);
    return this.runHandleIn(event, payload, ref);
  }

  /** handleIn, then `channel_handled_in` once it (and an async handler's promise) settled. */
  private timedHandleIn(event: string, payload: unknown, ref: Ref): Promise<void> | undefined {
    const started = performance.now();
    const pending = this.runHandleIn(event, payload, ref);
    const emit = (): void =>
      this.host.telemetry.emit('channel_handled_in', {
        topic: this.topic,
        event,
        durationMs: performance.now() - started,
      });
    if (pending === undefined) {
      emit();
      return undefined;
    }
    return pending.then(emit);
  }

  private runHandleIn(event: string, payload: unknown, ref: Ref): Promise<void> | undefined {
    const handler = this.handler;
    return this.invoke(
      () => {
        if (!handler.handleIn)
          throw new InvalidArgumentError(
            `channel ${this.topic} has no handleIn() for event ${JSON.stringify(event)}`,
          );
        return handler.handleIn(event, payload, this);
      },
      (result) => this.applyIn(result, ref),
    );
  }

  private runHandleOut(event: string, payload: unknown): unknown {
    if (this.handler.handleOut) return this.handler.handleOut(event, payload, this);
    this.host.writePush(this, event, payload);
    return undefined;
  }

  /**
   * Calls a handler; sync results are applied at once, async ones when they settle. This is the
   * channel's fault boundary: a throw or a rejection, in the handler or in applying its result,
   * crashes this channel only (phx_error), never its socket or the process.
   */
  private invoke(call: () => unknown, apply: (result: unknown) => void): Promise<void> | undefined {
    let result: unknown;
    try {
      result = call();
      if (!isThenable(result)) {
        apply(result);
        return undefined;
      }
    } catch (err) {
      this.crash(err);
      return undefined;
    }
    return Promise.resolve(result).then(
      (value) => {
        if (this.state === JOINED) apply(value);
      },
      (err: unknown) => this.crash(err),
    );
  }

  private applyIn(result: unknown, ref: Ref): void {
    if (result === undefined || result === null) return;
    if (isStop(result)) {
      this.applyStop(result.stop, result.reply, ref);
    } else if (isReply(result)) {
      this.host.writeReply(
        this,
        ref,
        result.status,
        result.response === undefined ? EMPTY : result.response,
      );
    } else {
      this.crash(new InvalidArgumentError('handleIn() must return a reply, stop(...) or nothing'));
    }
  }

  private applyOut(result: unknown): void {
    if (isStop(result)) this.applyStop(result.stop, result.reply, null);
  }

  private applyStop(reason: StopReason, reply: Reply | undefined, ref: Ref): void {
    if (this.state !== JOINED) return;
    if (reply)
      this.host.writeReply(
        this,
        ref,
        reply.status,
        reply.response === undefined ? EMPTY : reply.response,
      );
    const graceful = isGracefulStop(reason);
    if (!graceful)
      this.host.logger.warn(
        { topic: this.topic, reason: describeReason(reason) },
        'channel stopped abnormally',
      );
    this.shutdown({ kind: 'stop', reason }, graceful ? 'phx_close' : 'phx_error');
  }

  private crash(err: unknown): void {
    if (this.state !== JOINED) {
      // A callback that failed after the channel ended: nothing left to end. Work aborted by the
      // channel's own signal is the expected way for it to stop, not an error.
      if (isAbortError(err))
        this.host.logger.debug({ topic: this.topic }, 'channel callback aborted after its end');
      else this.host.channelError(this, err, 'channel callback failed after the channel ended');
      return;
    }
    this.host.channelError(this, err, 'channel crashed');
    this.shutdown({ kind: 'crash', error: err }, 'phx_error');
  }

  // ---- termination ------------------------------------------------------------------------

  /**
   * Ends the channel. Graceful ends write phx_close before `terminate` (its pushes follow the
   * close, as in Phoenix); crashes run `terminate` first and then write phx_error.
   */
  shutdown(reason: TerminateReason, frame: 'phx_close' | 'phx_error' | null): void {
    if (this.state === CLOSING || this.state === CLOSED) return;
    this.state = CLOSING;
    this.mailbox = null;
    try {
      this.host.detach(this);
    } catch (err) {
      // Presence or pubsub failed to let go: terminate must still run and the client be told.
      this.host.logger.error({ err, topic: this.topic }, 'detaching a channel failed');
    }
    this.controller?.abort(CHANNEL_ENDED);
    if (frame === 'phx_close') this.host.writeControl(this, 'phx_close', EMPTY);
    this.runTerminate(reason);
    if (frame === 'phx_error') this.host.writeControl(this, 'phx_error', CHANNEL_CRASH);
  }

  /** Runs `terminate`; its throw or rejection is logged and counted, and the teardown goes on. */
  private runTerminate(reason: TerminateReason): void {
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

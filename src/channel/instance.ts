/**
 * A channel's mailbox: the handler's callbacks (handleIn, handleOut for intercepted events,
 * afterJoin) run one at a time, in order, and their results become replies, stops or crashes.
 * The join, the Channel API and `terminate` are ChannelBase (channel-base.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import type { Ref } from '../wire/message.js';
import { describeReason, isAbortError, isReply, isStop, isThenable } from './callback-results.js';
import {
  CHANNEL_ENDED,
  CLOSED,
  CLOSING,
  ChannelBase,
  EMPTY,
  JOINED,
  JOINING,
  TERMINATE,
} from './channel-base.js';
import type { ChannelHost } from './host.js';
import { interceptsOf } from './intercepts.js';
import type { Broadcast } from './pubsub.js';
import {
  isGracefulStop,
  type Assigns,
  type ChannelHandler,
  type Reply,
  type StopReason,
  type TerminateReason,
} from './types.js';

export { JOIN_CRASHED, TERMINATE } from './channel-base.js';
export type { ChannelHost } from './host.js';

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

const CHANNEL_CRASH = { reason: 'channel_crash' } as const;

/**
 * One joined topic on one socket: the Phoenix channel process, without the process. Its mailbox
 * keeps the channel's messages in order; a handler that returns a promise holds only this
 * channel's mailbox. Errors thrown by handlers end here and crash this channel alone.
 */
export class ChannelInstance<A extends Assigns = Assigns> extends ChannelBase<A> {
  private busy = false;
  private mailbox: MailItem[] | null = null;
  private readonly intercepts: ReadonlySet<string> | null;

  constructor(topic: string, handler: ChannelHandler<A>, host: ChannelHost<A>, storedJoinRef: Ref) {
    super(topic, handler, host, storedJoinRef);
    this.intercepts = interceptsOf(handler);
  }

  stop(reason: StopReason = 'normal', reply?: Reply): void {
    this.dispatch({ kind: STOP, reason, reply });
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
}
